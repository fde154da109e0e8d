// POST /v1/append with `reads` (conditional append) and entry `keys`: parsing in JSON and
// msgpack, bounds, omitted fields stay omitted, and a replica's conflict answers 409 with
// the details in `error.conflict`.

import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { decode } from '@msgpack/msgpack'
import { QuipuError } from '../../log-server/errors.ts'
import { MSGPACK, answer, b64, harness, msgpack } from './helpers.ts'
import type { Harness } from './helpers.ts'

let h: Harness
beforeEach(() => {
  h = harness({ entryKeysMax: 4, appendReadsMax: 3 })
})
afterEach(async () => {
  await h.app.close()
})

function lastAppend(): Record<string, unknown> {
  const calls = h.replica.calls.filter((c) => c.method === 'append')
  return calls[calls.length - 1]!.args[0] as Record<string, unknown>
}

describe('POST /v1/append: conditional appends', () => {
  it('JSON: reads and entry keys reach the replica', async () => {
    const reads = [{ stream: 'a', key: 'k1', version: -1 }, { stream: 'b', key: '*', version: 7 }]
    const res = await h.app.inject({
      method: 'POST',
      url: '/v1/append',
      payload: { entries: [{ streams: ['a', 'b'], data: b64('x'), keys: ['k1', 'k2'] }], clientId: 'c', seq: 1, reads },
    })
    expect(res.statusCode, res.body).toBe(200)
    expect(lastAppend()).toMatchObject({ reads, entries: [{ streams: ['a', 'b'], keys: ['k1', 'k2'] }] })
  })

  it('msgpack: the same fields; absent ones are left out (never undefined/null)', async () => {
    const res = await h.app.inject({
      method: 'POST',
      url: '/v1/append',
      headers: { 'content-type': MSGPACK },
      payload: msgpack({ entries: [{ streams: ['a'], data: new Uint8Array([1]) }] }),
    })
    expect(res.statusCode).toBe(200)
    const req = lastAppend()
    expect('reads' in req).toBe(false)
    expect('keys' in (req['entries'] as Record<string, unknown>[])[0]!).toBe(false)
    const res2 = await h.app.inject({
      method: 'POST',
      url: '/v1/append',
      headers: { 'content-type': MSGPACK },
      payload: msgpack({ entries: [{ streams: ['a'], data: new Uint8Array([1]), keys: ['k'] }], reads: [{ stream: 'a', key: 'k', version: 0 }] }),
    })
    expect(res2.statusCode).toBe(200)
    expect(lastAppend()).toMatchObject({ reads: [{ stream: 'a', key: 'k', version: 0 }] })
  })

  it.each([
    ['version below -1', { reads: [{ stream: 'a', key: 'k', version: -2 }] }],
    ['fractional version', { reads: [{ stream: 'a', key: 'k', version: 1.5 }] }],
    ['string version', { reads: [{ stream: 'a', key: 'k', version: '1' }] }],
    ['empty key', { reads: [{ stream: 'a', key: '', version: 0 }] }],
    ['key of 257 characters', { reads: [{ stream: 'a', key: 'k'.repeat(257), version: 0 }] }],
    ['bad stream', { reads: [{ stream: 'a b', key: 'k', version: 0 }] }],
    ['missing key', { reads: [{ stream: 'a', version: 0 }] }],
    ['reads not an array', { reads: { stream: 'a' } }],
    ['too many reads', { reads: [0, 1, 2, 3].map((i) => ({ stream: 'a', key: `k${i}`, version: 0 })) }],
  ])('400 bad_request: %s', async (_name, extra) => {
    const res = await h.app.inject({ method: 'POST', url: '/v1/append', payload: { entries: [{ streams: ['a'], data: b64('x') }], ...extra } })
    expect(res.statusCode, res.body).toBe(400)
    expect((answer(res)['error'] as Record<string, unknown>)['code']).toBe('bad_request')
  })

  it.each([
    ['keys not an array', 'k'],
    ['a non-string key', [1]],
    ['an empty key', ['']],
    ['too many keys', ['a', 'b', 'c', 'd', 'e']],
  ])('400 bad_request: entry %s', async (_name, keys) => {
    const res = await h.app.inject({ method: 'POST', url: '/v1/append', payload: { entries: [{ streams: ['a'], data: b64('x'), keys }] } })
    expect(res.statusCode, res.body).toBe(400)
  })

  it('a lost condition answers 409 conflict with the details, in JSON and msgpack', async () => {
    const conflict = { stream: 'a', key: 'k', version: 3, position: 9 }
    h.replica.failNext('append', new QuipuError('conflict', 'a/k was written at position 9, after the version read (3)', { conflict }))
    const res = await h.app.inject({
      method: 'POST',
      url: '/v1/append',
      payload: { entries: [{ streams: ['a'], data: b64('x') }], reads: [{ stream: 'a', key: 'k', version: 3 }] },
    })
    expect(res.statusCode).toBe(409)
    expect(answer(res)['error']).toMatchObject({ code: 'conflict', conflict })
    h.replica.failNext('append', new QuipuError('conflict', 'lost', { conflict: { ...conflict, position: -1, watermark: 12 } }))
    const res2 = await h.app.inject({
      method: 'POST',
      url: '/v1/append',
      headers: { 'content-type': MSGPACK },
      payload: msgpack({ entries: [{ streams: ['a'], data: new Uint8Array([1]) }], reads: [{ stream: 'a', key: 'k', version: 3 }] }),
    })
    expect(res2.statusCode).toBe(409)
    expect((decode(res2.rawPayload) as { error: unknown }).error).toMatchObject({ code: 'conflict', conflict: { position: -1, watermark: 12 } })
  })

  it('per-entry reads reach the replica on their entries; bad ones are 400 naming the entry', async () => {
    const reads = [{ stream: 'a', key: 'k1', version: 2 }]
    const res = await h.app.inject({
      method: 'POST',
      url: '/v1/append',
      headers: { 'content-type': MSGPACK },
      payload: msgpack({ entries: [{ streams: ['a'], data: new Uint8Array([1]), reads }, { streams: ['a'], data: new Uint8Array([2]) }], clientId: 'c', seq: 4 }),
    })
    expect(res.statusCode, res.body).toBe(200)
    const req = lastAppend()
    expect('reads' in req).toBe(false)
    const entries = req['entries'] as Record<string, unknown>[]
    expect(entries[0]!['reads']).toEqual(reads)
    expect('reads' in entries[1]!).toBe(false)
    const bad = async (payload: unknown, message: RegExp): Promise<void> => {
      const r = await h.app.inject({ method: 'POST', url: '/v1/append', payload: payload as Record<string, unknown> })
      expect(r.statusCode, r.body).toBe(400)
      expect(answer(r)['error']).toMatchObject({ code: 'bad_request', message: expect.stringMatching(message) as unknown })
    }
    await bad({ entries: [{ streams: ['a'], data: b64('x') }, { streams: ['a'], data: b64('y'), reads: [{ stream: 'a', key: 'k', version: -2 }] }] }, /entries\[1\]\.reads\[0\]\.version must be an integer >= -1, got -2/)
    await bad({ entries: [{ streams: ['a'], data: b64('x'), reads: [{ stream: 'a', key: 'k', version: 1 }] }], reads: [{ stream: 'a', key: 'k', version: 1 }] }, /not both/)
    await bad({ entries: [{ streams: ['a'], data: b64('x'), reads: Array.from({ length: 4 }, (_, i) => ({ stream: 'a', key: `k${i}`, version: 1 })) }] }, /reads/)
    expect(h.replica.calls.filter((c) => c.method === 'append')).toHaveLength(1)
  })

  it('an answer with refused entries carries positions (-1 for each refused one) and the refusals', async () => {
    const refused = [{ index: 1, conflict: { stream: 'a', key: 'k', version: 1, position: 5 } }]
    h.replica.answerNext('append', { positions: [6, -1], refused })
    const res = await h.app.inject({
      method: 'POST',
      url: '/v1/append',
      payload: { entries: [{ streams: ['a'], data: b64('x'), reads: [{ stream: 'a', key: 'j', version: 1 }] }, { streams: ['a'], data: b64('y'), reads: [{ stream: 'a', key: 'k', version: 1 }] }] },
    })
    expect(res.statusCode, res.body).toBe(200)
    expect(answer(res)).toEqual({ positions: [6, -1], refused })
  })
})

describe('parseAppendBody: msgpack data', () => {
  it('copies every entry\'s data out of the request body into one buffer of exactly their bytes', async () => {
    const { parseAppendBody } = await import('../../log-server/api/validate.ts')
    const { validateHttpLimits } = await import('../../log-server/api/limits.ts')
    const body = decode(msgpack({ entries: [{ streams: ['a'], data: new Uint8Array([1, 2, 3]) }, { streams: ['a'], data: new Uint8Array([4]) }], pad: new Uint8Array(1000) })) as Record<string, unknown>
    const raw = (body['entries'] as { data: Uint8Array }[]).map((e) => e.data)
    const req = parseAppendBody(body, true, validateHttpLimits({}))
    const [a, b] = req.entries.map((e) => e.data)
    expect([...a!, ...b!]).toEqual([1, 2, 3, 4])
    expect(a!.buffer).toBe(b!.buffer)
    expect(a!.buffer).not.toBe(raw[0]!.buffer) // not a view of the body
    expect(a!.buffer.byteLength).toBe(4)
  })
})
