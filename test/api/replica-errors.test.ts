// What the replica throws becomes the catalog's answer: its status, its code, its details
// (the leader URL of not_leader), and for anything unexpected a generic 500 that is logged
// and never crashes the server.

import { Writable } from 'node:stream'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { buildServer } from '../../log-server/api/server.ts'
import { ERROR_CODES, QuipuError } from '../../log-server/errors.ts'
import type { ErrorCode } from '../../log-server/errors.ts'
import { FakeReplica } from './fake-replica.ts'
import { MSGPACK, b64, expectError, expectServes, harness, msgpack } from './helpers.ts'
import type { Harness } from './helpers.ts'

let h: Harness
beforeEach(() => {
  h = harness()
})
afterEach(async () => {
  await h.app.close()
})

const appendReq = { method: 'POST' as const, url: '/v1/append', payload: { entries: [{ streams: ['a'], data: b64('x') }] } }

describe('catalog errors from the replica', () => {
  it.each(Object.keys(ERROR_CODES) as ErrorCode[])('%s → its status, code, message and details', async (code) => {
    h.replica.failNext('readLog', new QuipuError(code, `replica says ${code}`, { hint: 7 }))
    const res = await h.app.inject({ method: 'GET', url: '/v1/log' })
    const error = expectError(res, ERROR_CODES[code], code)
    expect(error['message']).toBe(`replica says ${code}`)
    expect(error['hint']).toBe(7)
    await expectServes(h.app)
  })

  it('421 not_leader carries the leader URL in the body and in x-quipu-leader', async () => {
    h.replica.failNext('append', new QuipuError('not_leader', 'not the leader', { leader: 'http://127.0.0.1:7002' }))
    const res = await h.app.inject(appendReq)
    const error = expectError(res, 421, 'not_leader')
    expect(error['leader']).toBe('http://127.0.0.1:7002')
    expect(res.headers['x-quipu-leader']).toBe('http://127.0.0.1:7002')
    await expectServes(h.app)
  })

  it('421 with an unknown leader: leader null in the body, no header', async () => {
    h.replica.failNext('append', new QuipuError('not_leader', 'no leader known', { leader: null }))
    const res = await h.app.inject(appendReq)
    expect(expectError(res, 421, 'not_leader')['leader']).toBeNull()
    expect(res.headers['x-quipu-leader']).toBeUndefined()
  })

  it('421 in msgpack for a msgpack client', async () => {
    h.replica.failNext('append', new QuipuError('not_leader', 'not the leader', { leader: 'http://l:1' }))
    const res = await h.app.inject({
      method: 'POST',
      url: '/v1/append',
      headers: { 'content-type': MSGPACK },
      payload: msgpack({ entries: [{ streams: ['a'], data: new Uint8Array(1) }] }),
    })
    expect(res.headers['content-type']).toBe(MSGPACK)
    expect(expectError(res, 421, 'not_leader')['leader']).toBe('http://l:1')
  })

  it('a leader URL that cannot be a header value stays out of the headers', async () => {
    h.replica.failNext('append', new QuipuError('not_leader', 'x', { leader: 'http://a\r\nset-cookie: x' }))
    const res = await h.app.inject(appendReq)
    expectError(res, 421, 'not_leader')
    expect(res.headers['x-quipu-leader']).toBeUndefined()
    expect(res.headers['set-cookie']).toBeUndefined()
  })

  it('503 unavailable and 429 overloaded say retry-after', async () => {
    h.replica.failNext('tail', new QuipuError('unavailable', 'no quorum'))
    const a = await h.app.inject({ method: 'GET', url: '/v1/tail' })
    expectError(a, 503, 'unavailable')
    expect(a.headers['retry-after']).toBe('1')
    h.replica.failNext('append', new QuipuError('overloaded', 'queue full'))
    const b = await h.app.inject(appendReq)
    expectError(b, 429, 'overloaded')
    expect(b.headers['retry-after']).toBe('1')
  })

  it('details cannot override code or message, and unencodable details are dropped', async () => {
    h.replica.failNext('readLog', new QuipuError('trimmed', 'gone', { code: 'ok', message: 'fine', big: 10n, position: 3 }))
    const res = await h.app.inject({ method: 'GET', url: '/v1/log' })
    const error = expectError(res, 410, 'trimmed')
    expect(error).toEqual({ code: 'trimmed', message: 'gone', position: 3 })
  })

  it('an Error whose code is a catalog code maps like a QuipuError', async () => {
    h.replica.failNext('append', Object.assign(new Error('lost the race'), { code: 'conflict' }))
    expectError(await h.app.inject(appendReq), 409, 'conflict')
  })
})

describe('unexpected failures → 500 internal, logged, server keeps serving', () => {
  function capturingServer(): { app: ReturnType<typeof buildServer>; replica: FakeReplica; logs: string[] } {
    const logs: string[] = []
    const stream = new Writable({
      write(chunk: Buffer, _enc, cb) {
        logs.push(chunk.toString())
        cb()
      },
    })
    const replica = new FakeReplica()
    return { app: buildServer({ replica, logger: { level: 'error', stream } }), replica, logs }
  }

  it.each([
    ['a TypeError', new TypeError('cannot read properties of undefined (secret internals)')],
    ['a thrown string', 'boom'],
    ['a thrown null', null],
    ['an Error with a non-catalog code', Object.assign(new Error('disk on fire'), { code: 'EIO' })],
  ])('%s from append', async (_name, thrown) => {
    const s = capturingServer()
    s.replica.failNext('append', thrown)
    const res = await s.app.inject(appendReq)
    const error = expectError(res, 500, 'internal')
    expect(error['message']).toBe('internal error')
    expect(res.body).not.toMatch(/secret|disk on fire|boom/)
    expect(s.logs.join('')).toMatch(/unexpected error/)
    await expectServes(s.app)
    await s.app.close()
  })

  it('a synchronous throw from status()', async () => {
    h.replica.failNext('status', new RangeError('bad state'))
    expectError(await h.app.inject({ method: 'GET', url: '/v1/status' }), 500, 'internal')
    expect((await h.app.inject({ method: 'GET', url: '/v1/status' })).statusCode).toBe(200)
  })

  it('a status that cannot be encoded (a bigint) → 500, not a crash', async () => {
    h.replica.statusValue = { ...h.replica.statusValue, weird: 1n }
    expectError(await h.app.inject({ method: 'GET', url: '/v1/status' }), 500, 'internal')
    await expectServes(h.app)
  })
})
