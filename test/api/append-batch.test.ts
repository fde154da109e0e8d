// POST /v1/append/batch: many independent appends (a client's concurrent transaction
// commits) in one request. Each item keeps its own answer: a malformed or conflicting item
// fails alone; when every item fails alike with a retryable error the request fails with
// it (so clients follow the leader); bounds answer 413/400.

import { afterEach, describe, expect, it } from 'vitest'
import { decode } from '@msgpack/msgpack'
import { buildServer } from '../../log-server/api/server.ts'
import type { AppendRequest } from '../../log-server/api/replica-api.ts'
import { QuipuError } from '../../log-server/errors.ts'
import { FakeReplica } from './fake-replica.ts'
import { MSGPACK, answer, b64, expectError, expectServes, msgpack } from './helpers.ts'

/** Fails an append whose first entry's data names the failure ("conflict", "not_leader"). */
class ScriptedReplica extends FakeReplica {
  notLeader = false
  override async append(req: AppendRequest): Promise<{ readonly positions: number[] }> {
    const tag = Buffer.from(req.entries[0]!.data).toString()
    if (this.notLeader) throw new QuipuError('not_leader', 'not the leader', { leader: 'http://127.0.0.1:7002' })
    if (tag === 'conflict') throw new QuipuError('conflict', 'a/k was written at position 3, after the version read (1)', { conflict: { stream: 'a', key: 'k', version: 1, position: 3 } })
    if (tag === 'boom') throw new Error('unexpected')
    return super.append(req)
  }
}

const apps: ReturnType<typeof buildServer>[] = []
function server(replica = new ScriptedReplica()): { app: ReturnType<typeof buildServer>; replica: ScriptedReplica } {
  const app = buildServer({ replica, limits: { appendBatchMax: 4 } })
  apps.push(app)
  return { app, replica }
}
afterEach(async () => {
  await Promise.all(apps.splice(0).map((a) => a.close()))
})

const item = (tag: string, seq: number): Record<string, unknown> => ({
  entries: [{ streams: ['a'], data: b64(tag), keys: ['k'] }],
  clientId: 'c',
  seq,
  reads: [{ stream: 'a', key: 'k', version: 1 }],
})

describe('POST /v1/append/batch', () => {
  it('answers one result per item, in order: positions, or that item\'s own error', async () => {
    const { app, replica } = server()
    const res = await app.inject({
      method: 'POST',
      url: '/v1/append/batch',
      payload: { appends: [item('x', 1), item('conflict', 2), { entries: [{ streams: ['bad stream'], data: b64('y') }] }, item('z', 3)] },
    })
    expect(res.statusCode, res.body).toBe(200)
    const results = answer(res)['results'] as Record<string, unknown>[]
    expect(results).toHaveLength(4)
    expect(results[0]).toEqual({ positions: [0] })
    expect(results[1]).toMatchObject({ error: { code: 'conflict', conflict: { stream: 'a', key: 'k', version: 1, position: 3 } } })
    expect(results[2]).toMatchObject({ error: { code: 'bad_request' } })
    expect(results[3]).toEqual({ positions: [1] })
    // The failed items entered nothing; each good item kept its reads and session.
    expect(replica.entries.map((e) => Buffer.from(e.data).toString())).toEqual(['x', 'z'])
    const appended = replica.calls.filter((c) => c.method === 'append').map((c) => c.args[0] as AppendRequest)
    expect(appended.map((r) => r.seq)).toEqual([1, 3])
    expect(appended[0]!.reads).toEqual([{ stream: 'a', key: 'k', version: 1 }])
  })

  it('msgpack in, msgpack out; a retried item is answered from its session', async () => {
    const { app } = server()
    const body = msgpack({ appends: [{ entries: [{ streams: ['a'], data: new Uint8Array([1]) }], clientId: 'c', seq: 7 }] })
    const first = await app.inject({ method: 'POST', url: '/v1/append/batch', headers: { 'content-type': MSGPACK, accept: MSGPACK }, payload: body })
    const again = await app.inject({ method: 'POST', url: '/v1/append/batch', headers: { 'content-type': MSGPACK, accept: MSGPACK }, payload: body })
    expect(first.statusCode).toBe(200)
    expect(decode(first.rawPayload)).toEqual({ results: [{ positions: [0] }] })
    expect(decode(again.rawPayload)).toEqual({ results: [{ positions: [0] }] })
  })

  it('an unexpected failure of one item is `internal` for that item only', async () => {
    const { app } = server()
    const res = await app.inject({ method: 'POST', url: '/v1/append/batch', payload: { appends: [item('boom', 1), item('ok', 2)] } })
    expect(res.statusCode).toBe(200)
    const results = answer(res)['results'] as Record<string, unknown>[]
    expect(results[0]).toMatchObject({ error: { code: 'internal', message: 'internal error' } })
    expect(results[1]).toEqual({ positions: [0] })
  })

  it('every item refused alike by a non-leader: 421 for the whole request, with the leader', async () => {
    const { app, replica } = server()
    replica.notLeader = true
    const res = await app.inject({ method: 'POST', url: '/v1/append/batch', payload: { appends: [item('x', 1), item('y', 2)] } })
    const err = expectError(res, 421, 'not_leader')
    expect(err['leader']).toBe('http://127.0.0.1:7002')
    expect(res.headers['x-quipu-leader']).toBe('http://127.0.0.1:7002')
  })

  it.each([
    ['no appends', {}, 400, 'bad_request'],
    ['empty appends', { appends: [] }, 400, 'bad_request'],
    ['appends not an array', { appends: { entries: [] } }, 400, 'bad_request'],
    ['more than appendBatchMax', { appends: [1, 2, 3, 4, 5].map((s) => item('x', s)) }, 413, 'too_large'],
  ])('%s: %i %s, and nothing is appended', async (_name, payload, status, code) => {
    const { app, replica } = server()
    expectError(await app.inject({ method: 'POST', url: '/v1/append/batch', payload }), status, code)
    expect(replica.entries).toHaveLength(0)
    await expectServes(app)
  })
})
