// The pure parts of the shell: format negotiation, strict base64, JSON with base64 bytes,
// query integers, limits validation, frame splitting and the push session's bounds.

import { decode } from '@msgpack/msgpack'
import fc from 'fast-check'
import type { FastifyBaseLogger } from 'fastify'
import { describe, expect, it } from 'vitest'
import { DEFAULT_HTTP_LIMITS, validateHttpLimits } from '../../log-server/api/limits.ts'
import { capReadBytes } from '../../log-server/api/log-routes.ts'
import { encodeReadAnswer } from '../../log-server/api/read-answer.ts'
import type { ApiEntry, ReplicaApi, Subscription } from '../../log-server/api/replica-api.ts'
import { PushSession, splitFrames, wireFrame } from '../../log-server/api/subscribe.ts'
import type { PushFrame, PushSink } from '../../log-server/api/subscribe.ts'
import { QUERY_INT_RE, STREAM_NAME_RE, isStreamName, parseQueryInt } from '../../log-server/api/validate.ts'
import { decodeBase64Strict, encodeJson, negotiateFormat } from '../../log-server/api/wire.ts'
import type { ErrorBody } from '../../log-server/api/http-errors.ts'

describe('negotiateFormat', () => {
  const cases: [string | undefined, string | undefined, 'json' | 'msgpack'][] = [
    [undefined, undefined, 'json'],
    [undefined, 'application/json', 'json'],
    [undefined, 'application/msgpack', 'msgpack'],
    ['', 'application/msgpack', 'msgpack'],
    ['*/*', 'application/msgpack', 'msgpack'],
    ['*/*', undefined, 'json'],
    ['application/msgpack', undefined, 'msgpack'],
    ['application/x-msgpack', undefined, 'msgpack'],
    ['application/json', 'application/msgpack', 'json'],
    ['application/msgpack, application/json', undefined, 'msgpack'],
    ['application/json, application/msgpack', 'application/msgpack', 'json'],
    ['application/json;q=1, application/msgpack;q=0.5', undefined, 'json'],
    ['application/json;q=0.5, application/msgpack', undefined, 'msgpack'],
    ['application/msgpack, */*;q=0.1', undefined, 'msgpack'],
    ['application/msgpack;q=0.2, */*', undefined, 'json'],
    ['application/msgpack, */*', undefined, 'msgpack'],
    ['application/json, */*', 'application/msgpack', 'json'],
    ['text/html', 'application/msgpack', 'msgpack'],
    ['text/html', undefined, 'json'],
    ['APPLICATION/MSGPACK', undefined, 'msgpack'],
    ['application/msgpack;q=0', undefined, 'json'],
    ['application/msgpack;q=garbage', undefined, 'json'],
  ]
  it.each(cases)('accept %j, content-type %j → %s', (accept, contentType, expected) => {
    expect(negotiateFormat(accept, contentType)).toBe(expected)
  })
})

describe('strict base64', () => {
  it('round-trips any bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        const decoded = decodeBase64Strict(Buffer.from(bytes).toString('base64'))
        expect(decoded).toBeDefined()
        expect([...decoded!]).toEqual([...bytes])
      }),
    )
  })

  it('accepts a string only when it is the canonical encoding of its bytes', () => {
    fc.assert(
      fc.property(fc.string({ unit: fc.constantFrom(...'AB+/=a9 -_\n'.split('')), maxLength: 16 }), (s) => {
        const decoded = decodeBase64Strict(s)
        if (decoded !== undefined) expect(decoded.toString('base64')).toBe(s)
      }),
    )
  })

  it.each(['YQ', 'YR==', 'Y Q==', 'YQ==\n', '-_8=', '====', 'Y===', '=YQ='])('rejects %j', (s) => {
    expect(decodeBase64Strict(s)).toBeUndefined()
  })
})

describe('encodeJson', () => {
  it('writes Uint8Array and Buffer values as base64, everything else as JSON does', () => {
    const out = encodeJson({ a: new Uint8Array([1, 2, 3]), b: Buffer.from('hi'), c: [1, 'x', null], d: { e: new Uint8Array(0) } })
    expect(JSON.parse(out)).toEqual({ a: 'AQID', b: 'aGk=', c: [1, 'x', null], d: { e: '' } })
  })
})

describe('query integers and stream names', () => {
  it('parseQueryInt accepts exactly the canonical non-negative safe integers', () => {
    fc.assert(
      fc.property(fc.maxSafeNat(), (n) => {
        expect(parseQueryInt(String(n), 'from')).toBe(n)
      }),
    )
    fc.assert(
      fc.property(fc.string({ maxLength: 20 }), (s) => {
        let parsed: number | undefined
        try {
          parsed = parseQueryInt(s, 'from')
        } catch {
          return
        }
        expect(QUERY_INT_RE.test(s)).toBe(true)
        expect(String(parsed)).toBe(s)
      }),
    )
  })

  it('stream names: 1-200 of [A-Za-z0-9._:/-]', () => {
    expect(isStreamName('a')).toBe(true)
    expect(isStreamName('users/eu-1:shard_2.v3')).toBe(true)
    expect(isStreamName('x'.repeat(200))).toBe(true)
    expect(isStreamName('x'.repeat(201))).toBe(false)
    for (const bad of ['', ' ', 'a,b', 'a b', 'é', 'a\n', 'a%2F', '*', 'a?b']) expect(isStreamName(bad)).toBe(false)
    expect(STREAM_NAME_RE.test('a')).toBe(true)
  })
})

describe('validateHttpLimits', () => {
  it('fills in the defaults', () => {
    expect(validateHttpLimits()).toEqual(DEFAULT_HTTP_LIMITS)
    expect(validateHttpLimits({ readLimitMax: 50, readLimitDefault: 10 }).readLimitMax).toBe(50)
  })

  it.each([
    [{ bodyBytesMax: 0 }, /bodyBytesMax/],
    [{ entryBytesMax: -1 }, /entryBytesMax/],
    [{ readLimitMax: 1.5 }, /readLimitMax/],
    [{ appendEntriesMax: Number.NaN }, /appendEntriesMax/],
    [{ readLimitDefault: 20, readLimitMax: 10 }, /readLimitDefault/],
    [{ entryBytesMax: 10, bodyBytesMax: 5 }, /entryBytesMax/],
    [{ nonsense: 1 } as object, /unknown limit nonsense/],
  ])('rejects %j', (partial, message) => {
    expect(() => validateHttpLimits(partial)).toThrow(message)
  })
})

const entryAt = (position: number, bytes = 1): ApiEntry => ({ position, streams: ['s'], data: new Uint8Array(bytes), ts: 0 })

describe('splitFrames', () => {
  it('covers the batch exactly, within bounds, with increasing resumable nexts', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.nat(1000), { maxLength: 40 }).map((ps) => ps.sort((a, b) => a - b)),
        fc.array(fc.nat(50), { minLength: 40, maxLength: 40 }),
        fc.integer({ min: 1, max: 8 }),
        fc.integer({ min: 1, max: 100 }),
        (positions, sizes, entriesMax, bytesMax) => {
          const entries = positions.map((p, i) => entryAt(p, sizes[i]!))
          const next = (positions[positions.length - 1] ?? 0) + 5
          const frames = splitFrames(entries, next, entriesMax, bytesMax)
          expect(frames.flatMap((f) => f.entries.map((e) => e.position))).toEqual(positions)
          expect(frames[frames.length - 1]!.next).toBe(next)
          for (const f of frames) {
            expect(f.entries.length).toBeLessThanOrEqual(entriesMax)
            const bytes = f.entries.reduce((n, e) => n + e.data.byteLength, 0)
            if (f.entries.length > 1) expect(bytes).toBeLessThanOrEqual(bytesMax)
            const last = f.entries[f.entries.length - 1]
            if (last !== undefined) expect(f.next).toBeGreaterThan(last.position)
          }
          for (let i = 1; i < frames.length; i++) {
            // A resumed subscription starting at the previous frame's next begins with this frame's entries.
            expect(frames[i]!.entries[0]!.position).toBeGreaterThanOrEqual(frames[i - 1]!.next)
          }
        },
      ),
    )
  })

  it('an empty batch is one empty frame carrying next', () => {
    expect(splitFrames([], 7, 10, 10)).toEqual([{ entries: [], next: 7 }])
  })

  it('only the contract fields go out, in msgpack and in JSON', () => {
    const e = { ...entryAt(1), secret: 'x' } as ApiEntry
    const [frame] = splitFrames([e], 2, 10, 10)
    expect(Object.keys((decode(encodeReadAnswer(frame!.entries, frame!.next)) as { entries: object[] }).entries[0]!)).toEqual(['position', 'streams', 'data', 'ts'])
    expect(Object.keys(wireFrame(frame!).entries[0]!)).toEqual(['position', 'streams', 'data', 'ts'])
  })
})

describe('capReadBytes', () => {
  it('cuts after the last entry that fits, always keeps one, next follows it', () => {
    const result = { entries: [entryAt(3, 6), entryAt(5, 6), entryAt(9, 6)], next: 12 }
    expect(capReadBytes(result, 100)).toBe(result)
    expect(capReadBytes(result, 12)).toEqual({ entries: result.entries.slice(0, 2), next: 6 })
    expect(capReadBytes(result, 1)).toEqual({ entries: result.entries.slice(0, 1), next: 4 })
  })
})

describe('PushSession', () => {
  function setup(buffered: () => number): {
    session: PushSession
    frames: PushFrame[]
    failures: { body: ErrorBody; status: number }[]
    push: (entries: readonly ApiEntry[], next: number) => void
    closedSubs: () => number
  } {
    const frames: PushFrame[] = []
    const failures: { body: ErrorBody; status: number }[] = []
    let onEntries: ((entries: readonly ApiEntry[], next: number) => void) | undefined
    let closed = 0
    const replica = {
      subscribe(_streams: readonly string[], _from: number, cb: (entries: readonly ApiEntry[], next: number) => void): Subscription {
        onEntries = cb
        return { close: () => closed++ }
      },
    } as unknown as ReplicaApi
    const sink: PushSink = {
      frame: (f) => frames.push(f),
      fail: (body, status) => failures.push({ body, status }),
      end: () => {},
      bufferedBytes: buffered,
    }
    const limits = validateHttpLimits({ subscriptionBufferedBytesMax: 100 })
    const log = { error: () => {}, warn: () => {} } as unknown as FastifyBaseLogger
    const session = new PushSession(replica, ['s'], 3, sink, limits, log, () => {})
    expect(session.start()).toBeUndefined()
    return { session, frames, failures, push: (e, n) => onEntries!(e, n), closedSubs: () => closed }
  }

  it('opens with { entries: [], next: from } and forwards batches', () => {
    const t = setup(() => 0)
    t.push([entryAt(3), entryAt(4)], 5)
    expect(t.frames).toEqual([{ entries: [], next: 3 }, { entries: [entryAt(3), entryAt(4)], next: 5 }])
    expect(t.session.lastNext).toBe(5)
  })

  it('a subscriber too far behind gets overloaded (429) with its resume point, and the replica subscription closes', () => {
    let buffered = 0
    const t = setup(() => buffered)
    t.push([entryAt(3)], 4)
    buffered = 101
    t.push([entryAt(4)], 5)
    expect(t.failures).toHaveLength(1)
    expect(t.failures[0]!.status).toBe(429)
    expect(t.failures[0]!.body.error).toMatchObject({ code: 'overloaded', next: 5 })
    expect(t.closedSubs()).toBe(1)
    // Nothing after the failure.
    t.push([entryAt(5)], 6)
    expect(t.frames[t.frames.length - 1]!.next).toBe(5)
    expect(t.session.isClosed).toBe(true)
  })
})
