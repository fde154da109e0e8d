// Every v1 route, in JSON (data as base64) and in msgpack (data as bin), against the fake replica.

import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { decode } from '@msgpack/msgpack'
import { MSGPACK, answer, b64, harness, isMsgpackAnswer, msgpack } from './helpers.ts'
import type { Harness } from './helpers.ts'

let h: Harness
beforeEach(() => {
  h = harness()
})
afterEach(async () => {
  await h.app.close()
})

async function appendJson(entries: { streams: string[]; data: string }[], extra: Record<string, unknown> = {}): Promise<number[]> {
  const res = await h.app.inject({ method: 'POST', url: '/v1/append', payload: { entries, ...extra } })
  expect(res.statusCode, res.body).toBe(200)
  return answer(res)['positions'] as number[]
}

describe('POST /v1/append', () => {
  it('JSON: base64 data in, positions out, bytes stored exactly', async () => {
    const res = await h.app.inject({
      method: 'POST',
      url: '/v1/append',
      payload: { entries: [{ streams: ['users'], data: b64('hello') }, { streams: ['users', 'orders'], data: '' }] },
    })
    expect(res.statusCode).toBe(200)
    expect(res.headers['content-type']).toMatch(/^application\/json/)
    expect(res.json()).toEqual({ positions: [0, 1] })
    expect(Buffer.from(h.replica.entries[0]!.data).toString()).toBe('hello')
    expect(h.replica.entries[1]!.streams).toEqual(['users', 'orders'])
    expect(h.replica.entries[1]!.data.byteLength).toBe(0)
  })

  it('msgpack: bin data in, msgpack answer out (no accept header)', async () => {
    const data = new Uint8Array([0, 1, 2, 255])
    const res = await h.app.inject({
      method: 'POST',
      url: '/v1/append',
      headers: { 'content-type': MSGPACK },
      payload: msgpack({ entries: [{ streams: ['a:b/c-d.e_f'], data }] }),
    })
    expect(res.statusCode).toBe(200)
    expect(isMsgpackAnswer(res)).toBe(true)
    expect(decode(res.rawPayload)).toEqual({ positions: [0] })
    expect([...h.replica.entries[0]!.data]).toEqual([0, 1, 2, 255])
  })

  it('msgpack body, accept: application/json → JSON answer', async () => {
    const res = await h.app.inject({
      method: 'POST',
      url: '/v1/append',
      headers: { 'content-type': MSGPACK, accept: 'application/json' },
      payload: msgpack({ entries: [{ streams: ['a'], data: new Uint8Array([1]) }] }),
    })
    expect(res.statusCode).toBe(200)
    expect(res.json()).toEqual({ positions: [0] })
  })

  it('JSON body, accept: application/msgpack → msgpack answer', async () => {
    const res = await h.app.inject({
      method: 'POST',
      url: '/v1/append',
      headers: { accept: MSGPACK },
      payload: { entries: [{ streams: ['a'], data: b64('x') }] },
    })
    expect(isMsgpackAnswer(res)).toBe(true)
    expect(decode(res.rawPayload)).toEqual({ positions: [0] })
  })

  it('application/x-msgpack bodies are msgpack too', async () => {
    const res = await h.app.inject({
      method: 'POST',
      url: '/v1/append',
      headers: { 'content-type': 'application/x-msgpack' },
      payload: msgpack({ entries: [{ streams: ['a'], data: new Uint8Array([7]) }] }),
    })
    expect(res.statusCode).toBe(200)
    expect(answer(res)).toEqual({ positions: [0] })
  })

  it('passes clientId and seq through (exactly-once retries answer the original positions)', async () => {
    const first = await appendJson([{ streams: ['a'], data: b64('1') }], { clientId: 'c1', seq: 0 })
    await appendJson([{ streams: ['a'], data: b64('2') }])
    const retry = await appendJson([{ streams: ['a'], data: b64('1') }], { clientId: 'c1', seq: 0 })
    expect(retry).toEqual(first)
    expect(h.replica.entries).toHaveLength(2)
    const call = h.replica.calls.find((c) => c.method === 'append')!
    expect(call.args[0]).toMatchObject({ clientId: 'c1', seq: 0 })
  })

  it('accepts a 1 MiB entry in JSON and in msgpack (the limit is inclusive)', async () => {
    const big = new Uint8Array(1 << 20).fill(9)
    const j = await h.app.inject({ method: 'POST', url: '/v1/append', payload: { entries: [{ streams: ['a'], data: b64(big) }] } })
    expect(j.statusCode, j.body).toBe(200)
    const m = await h.app.inject({
      method: 'POST',
      url: '/v1/append',
      headers: { 'content-type': MSGPACK },
      payload: msgpack({ entries: [{ streams: ['a'], data: big }] }),
    })
    expect(m.statusCode).toBe(200)
    expect(h.replica.entries[1]!.data.byteLength).toBe(1 << 20)
  })
})

describe('GET /v1/tail', () => {
  it('answers the tail and each named stream\'s last position (-1 when none)', async () => {
    await appendJson([
      { streams: ['a'], data: '' },
      { streams: ['b', 'a'], data: '' },
      { streams: ['c'], data: '' },
    ])
    const res = await h.app.inject({ method: 'GET', url: '/v1/tail?streams=a,b,zz' })
    expect(res.statusCode).toBe(200)
    expect(res.json()).toEqual({ tail: 3, streams: { a: 1, b: 1, zz: -1 } })
  })

  it('without streams: just the tail; in msgpack on accept', async () => {
    const res = await h.app.inject({ method: 'GET', url: '/v1/tail', headers: { accept: MSGPACK } })
    expect(isMsgpackAnswer(res)).toBe(true)
    expect(answer(res)).toEqual({ tail: 0, streams: {} })
    expect(h.replica.calls.at(-1)!.args[0]).toBeUndefined()
  })

  it('decodes percent-encoded names', async () => {
    await appendJson([{ streams: ['x/y'], data: '' }])
    const res = await h.app.inject({ method: 'GET', url: '/v1/tail?streams=x%2Fy' })
    expect(res.json()).toEqual({ tail: 1, streams: { 'x/y': 0 } })
  })
})

describe('GET /v1/log', () => {
  beforeEach(async () => {
    for (let i = 0; i < 5; i++) await appendJson([{ streams: [i % 2 === 0 ? 'even' : 'odd'], data: b64(`e${i}`) }])
  })

  it('JSON: entries with position, streams, base64 data, ts; and next', async () => {
    const res = await h.app.inject({ method: 'GET', url: '/v1/log?from=1&to=3' })
    expect(res.statusCode).toBe(200)
    const body = res.json() as { entries: { position: number; streams: string[]; data: string; ts: number }[]; next: number }
    expect(body.entries.map((e) => e.position)).toEqual([1, 2])
    expect(body.entries[0]).toEqual({ position: 1, streams: ['odd'], data: b64('e1'), ts: h.replica.entries[1]!.ts })
    expect(body.next).toBe(3)
  })

  it('msgpack: data as bin', async () => {
    const res = await h.app.inject({ method: 'GET', url: '/v1/log', headers: { accept: MSGPACK } })
    const body = answer(res) as { entries: { data: Uint8Array }[]; next: number }
    expect(body.entries).toHaveLength(5)
    expect(body.entries[4]!.data).toBeInstanceOf(Uint8Array)
    expect(Buffer.from(body.entries[4]!.data).toString()).toBe('e4')
    expect(body.next).toBe(5)
  })

  it('defaults: from 0, limit 1000; a limit pages with next', async () => {
    await h.app.inject({ method: 'GET', url: '/v1/log' })
    expect(h.replica.calls.at(-1)!.args[0]).toEqual({ from: 0, limit: 1000 })
    const page = (await h.app.inject({ method: 'GET', url: '/v1/log?limit=2' })).json() as { entries: unknown[]; next: number }
    expect(page.entries).toHaveLength(2)
    expect(page.next).toBe(2)
  })

  it('a limit above the maximum is lowered to it', async () => {
    const small = harness({ readLimitMax: 3, readLimitDefault: 2 })
    await small.app.inject({ method: 'GET', url: '/v1/log?limit=9999' })
    expect(small.replica.calls.at(-1)!.args[0]).toEqual({ from: 0, limit: 3 })
    await small.app.close()
  })

  it('an answer past readBytesMax is cut short, next after the last entry sent', async () => {
    const small = harness({ readBytesMax: 10 })
    for (let i = 0; i < 3; i++) {
      await small.app.inject({ method: 'POST', url: '/v1/append', payload: { entries: [{ streams: ['a'], data: b64('12345678') }] } })
    }
    const body = (await small.app.inject({ method: 'GET', url: '/v1/log' })).json() as { entries: unknown[]; next: number }
    expect(body.entries).toHaveLength(1)
    expect(body.next).toBe(1)
    await small.app.close()
  })

  it('from = to answers nothing', async () => {
    const body = (await h.app.inject({ method: 'GET', url: '/v1/log?from=2&to=2' })).json()
    expect(body).toEqual({ entries: [], next: 2 })
  })
})

describe('GET /v1/streams/:name', () => {
  beforeEach(async () => {
    for (let i = 0; i < 6; i++) await appendJson([{ streams: [i % 3 === 0 ? 'a/b:c' : 'other'], data: b64(`e${i}`) }])
  })

  it('that stream\'s entries only (names with / percent-encoded)', async () => {
    const res = await h.app.inject({ method: 'GET', url: '/v1/streams/a%2Fb%3Ac' })
    expect(res.statusCode, res.body).toBe(200)
    const body = res.json() as { entries: { position: number; data: string }[]; next: number }
    expect(body.entries.map((e) => e.position)).toEqual([0, 3])
    expect(body.entries[1]!.data).toBe(b64('e3'))
    expect(body.next).toBe(6)
    expect(h.replica.calls.at(-1)!.args).toEqual(['a/b:c', { from: 0, limit: 1000 }])
  })

  it('msgpack, with from/to/limit', async () => {
    const res = await h.app.inject({ method: 'GET', url: '/v1/streams/other?from=1&to=5&limit=2', headers: { accept: MSGPACK } })
    const body = answer(res) as { entries: { position: number; data: Uint8Array }[]; next: number }
    expect(body.entries.map((e) => e.position)).toEqual([1, 2])
    expect(body.next).toBe(3)
  })
})

describe('POST /v1/streams/:name/trim', () => {
  it('JSON and msgpack; reads below the trim point answer 410 trimmed', async () => {
    for (let i = 0; i < 4; i++) await appendJson([{ streams: ['s'], data: '' }])
    const j = await h.app.inject({ method: 'POST', url: '/v1/streams/s/trim', payload: { before: 2 } })
    expect(j.statusCode).toBe(200)
    expect(j.json()).toEqual({ trimmedBefore: 2 })
    const m = await h.app.inject({
      method: 'POST',
      url: '/v1/streams/s/trim',
      headers: { 'content-type': MSGPACK },
      payload: msgpack({ before: 3 }),
    })
    expect(answer(m)).toEqual({ trimmedBefore: 3 })
    const below = await h.app.inject({ method: 'GET', url: '/v1/streams/s?from=1' })
    expect(below.statusCode).toBe(410)
    expect(below.json().error.code).toBe('trimmed')
    const log = await h.app.inject({ method: 'GET', url: '/v1/log?from=0' })
    expect(log.statusCode).toBe(410)
    const above = await h.app.inject({ method: 'GET', url: '/v1/streams/s?from=3' })
    expect(above.statusCode).toBe(200)
  })
})

describe('GET /v1/status', () => {
  it('is JSON even when msgpack is preferred', async () => {
    const res = await h.app.inject({ method: 'GET', url: '/v1/status', headers: { accept: MSGPACK } })
    expect(res.statusCode).toBe(200)
    expect(res.headers['content-type']).toMatch(/^application\/json/)
    const body = res.json()
    expect(body).toMatchObject({ id: 1, role: 'leader', leader: 'http://127.0.0.1:7001', ballot: '1.1', commitPosition: 0 })
    expect(body.peers).toHaveLength(1)
  })
})
