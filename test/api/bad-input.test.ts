// Every kind of bad input answers the catalog's status and code in the catalog's shape,
// reaches the replica never, and leaves the server serving.

import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { InjectOptions } from 'fastify'
import { MSGPACK, b64, expectError, expectServes, harness, msgpack } from './helpers.ts'
import type { Harness } from './helpers.ts'

let h: Harness
beforeAll(() => {
  h = harness({ appendEntriesMax: 50, entryStreamsMax: 4, queryStreamsMax: 3 })
})
afterAll(async () => {
  await h.app.close()
})

interface Case {
  readonly name: string
  readonly req: InjectOptions
  readonly status: number
  readonly code: string
  /** Expected error details (a subset). */
  readonly details?: Readonly<Record<string, unknown>>
}

const entry = (over: Record<string, unknown> = {}): Record<string, unknown> => ({ streams: ['a'], data: b64('x'), ...over })
const appendJson = (body: unknown): InjectOptions => ({
  method: 'POST',
  url: '/v1/append',
  headers: { 'content-type': 'application/json' },
  payload: typeof body === 'string' ? body : JSON.stringify(body),
})
const appendMsgpack = (body: unknown): InjectOptions => ({
  method: 'POST',
  url: '/v1/append',
  headers: { 'content-type': MSGPACK },
  payload: Buffer.isBuffer(body) ? body : msgpack(body),
})
const get = (url: string): InjectOptions => ({ method: 'GET', url })
const trim = (body: unknown, name = 's'): InjectOptions => ({
  method: 'POST',
  url: `/v1/streams/${name}/trim`,
  headers: { 'content-type': 'application/json' },
  payload: JSON.stringify(body),
})

const bad = (name: string, req: InjectOptions, details?: Record<string, unknown>): Case => ({ name, req, status: 400, code: 'bad_request', details })
const big = (name: string, req: InjectOptions, details?: Record<string, unknown>): Case => ({ name, req, status: 413, code: 'too_large', details })

const cases: Case[] = [
  // Malformed bodies.
  bad('malformed msgpack (reserved byte)', appendMsgpack(Buffer.from([0xc1]))),
  bad('truncated msgpack', appendMsgpack(msgpack({ entries: [entry()] }).subarray(0, 5))),
  bad('msgpack with trailing bytes', appendMsgpack(Buffer.concat([msgpack({ entries: [] }), Buffer.from([0x01])]))),
  bad('empty msgpack body', appendMsgpack(Buffer.alloc(0))),
  bad('msgpack __proto__ key', appendMsgpack(Buffer.from([0x81, 0xa9, ...Buffer.from('__proto__'), 0x01]))),
  bad('malformed JSON', appendJson('{"entries": [')),
  bad('empty JSON body', appendJson('')),
  bad('JSON __proto__ key', appendJson('{"entries":[{"streams":["a"],"data":""}],"__proto__":{"x":1}}')),
  bad('unsupported content-type', { method: 'POST', url: '/v1/append', headers: { 'content-type': 'text/plain' }, payload: 'hello' }),
  bad('no body at all', { method: 'POST', url: '/v1/append' }),
  // Wrong shapes.
  bad('body is an array', appendJson([entry()])),
  bad('body is a string', appendJson('"entries"')),
  bad('msgpack body is a number', appendMsgpack(7)),
  bad('entries missing', appendJson({})),
  bad('entries not an array', appendJson({ entries: entry() })),
  bad('entries empty', appendJson({ entries: [] })),
  bad('entry not an object', appendJson({ entries: ['x'] })),
  bad('streams missing', appendJson({ entries: [{ data: b64('x') }] })),
  bad('streams empty', appendJson({ entries: [entry({ streams: [] })] })),
  bad('streams a string, not an array', appendJson({ entries: [entry({ streams: 'a' })] })),
  bad('stream name with a space', appendJson({ entries: [entry({ streams: ['a b'] })] })),
  bad('empty stream name', appendJson({ entries: [entry({ streams: [''] })] })),
  bad('201-byte stream name', appendJson({ entries: [entry({ streams: ['x'.repeat(201)] })] })),
  bad('non-ASCII stream name', appendJson({ entries: [entry({ streams: ['café'] })] })),
  bad('stream name a number', appendJson({ entries: [entry({ streams: [1] })] })),
  bad('stream named twice', appendJson({ entries: [entry({ streams: ['a', 'a'] })] }), { index: 0 }),
  bad('too many streams in one entry', appendJson({ entries: [entry({ streams: ['a', 'b', 'c', 'd', 'e'] })] })),
  bad('data missing', appendJson({ entries: [{ streams: ['a'] }] })),
  bad('data not base64 (bad characters)', appendJson({ entries: [entry({ data: '!!!!' })] }), { index: 0 }),
  bad('data base64 without padding', appendJson({ entries: [entry({ data: 'YQ' })] }), { index: 0 }),
  bad('data base64 with whitespace', appendJson({ entries: [entry({ data: 'YW Jj' })] }), { index: 0 }),
  bad('data base64url alphabet', appendJson({ entries: [entry({ data: '-_-_' })] }), { index: 0 }),
  bad('data non-canonical base64 (stray bits)', appendJson({ entries: [entry({ data: 'YR==' })] }), { index: 0 }),
  bad('data a number', appendJson({ entries: [entry(), entry({ data: 5 })] }), { index: 1 }),
  bad('data a string in a msgpack body', appendMsgpack({ entries: [{ streams: ['a'], data: 'YQ==' }] }), { index: 0 }),
  bad('data an array in a msgpack body', appendMsgpack({ entries: [{ streams: ['a'], data: [1, 2] }] }), { index: 0 }),
  bad('clientId empty', appendJson({ entries: [entry()], clientId: '', seq: 1 })),
  bad('clientId 129 characters', appendJson({ entries: [entry()], clientId: 'c'.repeat(129), seq: 1 })),
  bad('clientId a number', appendJson({ entries: [entry()], clientId: 5, seq: 1 })),
  bad('seq negative', appendJson({ entries: [entry()], clientId: 'c', seq: -1 })),
  bad('seq fractional', appendJson({ entries: [entry()], clientId: 'c', seq: 1.5 })),
  bad('seq a string', appendJson({ entries: [entry()], clientId: 'c', seq: '1' })),
  bad('seq above 2^53 - 1', appendJson({ entries: [entry()], clientId: 'c', seq: 2 ** 53 })),
  bad('seq without clientId', appendJson({ entries: [entry()], seq: 1 })),
  bad('clientId without seq', appendJson({ entries: [entry()], clientId: 'c' })),
  bad('msgpack seq a uint64 beyond 2^53', appendMsgpack({ entries: [{ streams: ['a'], data: new Uint8Array(1) }], clientId: 'c', seq: 2 ** 60 })),
  // Sizes.
  big('entry over 1 MiB (JSON)', appendJson({ entries: [entry(), entry({ data: b64(new Uint8Array((1 << 20) + 1)) })] }), { index: 1, limit: 1 << 20 }),
  big('entry over 1 MiB (msgpack)', appendMsgpack({ entries: [{ streams: ['a'], data: new Uint8Array((1 << 20) + 1) }] }), { index: 0 }),
  big('too many entries', appendJson({ entries: Array.from({ length: 51 }, () => entry()) }), { limit: 50 }),
  big('body over 4 MiB (JSON)', appendJson({ entries: [entry({ data: 'A'.repeat(4 << 20) })] }), { limit: 4 << 20 }),
  big('body over 4 MiB (msgpack)', appendMsgpack({ entries: [{ streams: ['a'], data: new Uint8Array(4 << 20) }] })),
  // Query strings.
  ...['1.5', '-1', 'abc', '1e3', '', '01', '0x10', '%201', '+1', '99999999999999999', '9007199254740992'].map((v) =>
    bad(`from=${JSON.stringify(v)}`, get(`/v1/log?from=${v}`)),
  ),
  bad('to=-5', get('/v1/log?to=-5')),
  bad('limit=2.0', get('/v1/streams/a?limit=2.0')),
  bad('limit=0', get('/v1/log?limit=0')),
  bad('to below from', get('/v1/log?from=5&to=4')),
  bad('from given twice', get('/v1/log?from=1&from=2')),
  bad('streams with an empty name', get('/v1/tail?streams=a,,b')),
  bad('streams with a bad name', get('/v1/tail?streams=a%20b')),
  bad('too many streams in a query', get('/v1/tail?streams=a,b,c,d')),
  bad('streams given twice', get('/v1/tail?streams=a&streams=b')),
  // Path parameters.
  bad('stream path name with a space', get('/v1/streams/a%20b')),
  bad('stream path name too long', get(`/v1/streams/${'x'.repeat(201)}`)),
  bad('stream path name malformed percent-encoding', get('/v1/streams/%E0%A4%A')),
  bad('path parameter over 1024 characters', get(`/v1/streams/${'x'.repeat(1100)}`)),
  // Trim bodies.
  bad('trim without before', trim({})),
  bad('trim before negative', trim({ before: -1 })),
  bad('trim before fractional', trim({ before: 1.5 })),
  bad('trim before a string', trim({ before: '3' })),
  bad('trim a bad stream name', trim({ before: 1 }, 'a%20b')),
  // Routes.
  { name: 'unknown route', req: get('/v1/nope'), status: 404, code: 'not_found' },
  { name: 'wrong method', req: get('/v1/append'), status: 404, code: 'not_found' },
  { name: 'unversioned path', req: get('/log'), status: 404, code: 'not_found' },
  { name: 'HEAD is not served', req: { method: 'HEAD', url: '/v1/status' }, status: 404, code: 'not_found' },
]

describe('bad input → catalog error, and the server keeps serving', () => {
  it.each(cases)('$name → $status $code', async (c) => {
    const before = h.replica.calls.filter((x) => x.method !== 'tail' && x.method !== 'append').length
    const appendsBefore = h.replica.entries.length
    const res = await h.app.inject(c.req)
    if (c.req.method === 'HEAD') {
      // A HEAD answer has no body to decode.
      expect(res.statusCode).toBe(c.status)
    } else {
      const error = expectError(res, c.status, c.code)
      if (c.details !== undefined) expect(error).toMatchObject(c.details)
    }
    // The replica saw nothing of it.
    expect(h.replica.entries.length).toBe(appendsBefore)
    expect(h.replica.calls.filter((x) => x.method !== 'tail' && x.method !== 'append').length).toBe(before)
    await expectServes(h.app)
  })

  it('an error answer takes the msgpack format when the request was msgpack', async () => {
    const res = await h.app.inject(appendMsgpack({ entries: [] }))
    expect(res.headers['content-type']).toBe(MSGPACK)
    expectError(res, 400, 'bad_request')
  })

  it('an error answer takes the accept header over the body format', async () => {
    const res = await h.app.inject({ ...appendMsgpack({ entries: [] }), headers: { 'content-type': MSGPACK, accept: 'application/json' } })
    expect(res.headers['content-type']).toMatch(/^application\/json/)
    expectError(res, 400, 'bad_request')
  })

  it('query integers at the edges are accepted: 0 and 2^53 - 1', async () => {
    expect((await h.app.inject(get('/v1/log?from=0'))).statusCode).toBe(200)
    expect((await h.app.inject(get('/v1/log?from=9007199254740991'))).statusCode).toBe(200)
  })

  it('error messages that echo the request are clipped', async () => {
    const res = await h.app.inject(get(`/v1/streams/${'x'.repeat(5000)}`))
    const error = expectError(res, 400, 'bad_request')
    expect((error['message'] as string).length).toBeLessThanOrEqual(301)
  })

  it('a 200-character stream name is accepted', async () => {
    const name = 'n'.repeat(200)
    const res = await h.app.inject({ method: 'POST', url: '/v1/append', payload: { entries: [entry({ streams: [name] })] } })
    expect(res.statusCode, res.body).toBe(200)
    expect((await h.app.inject(get(`/v1/streams/${name}`))).statusCode).toBe(200)
  })
})
