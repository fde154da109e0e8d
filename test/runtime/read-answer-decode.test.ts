// The HTTP client's fast path for read answers (FastDecoder.decodeReadAnswer): equal to
// what the library decodes, entry by entry; anything else is left to the library (null).
import { decode, encode } from '@msgpack/msgpack'
import fc from 'fast-check'
import { describe, expect, test } from 'vitest'
import { FastDecoder } from '../../object-runtime/fast-decode.ts'

const streamName = fc.oneof(fc.constantFrom('obj/a', 'obj/b', 'ci/x'), fc.string({ unit: 'grapheme', minLength: 1, maxLength: 40 }), fc.string({ minLength: 100, maxLength: 200 }))
const wireEntry = fc.record(
  {
    position: fc.maxSafeNat(),
    streams: fc.array(streamName, { minLength: 1, maxLength: 3 }),
    data: fc.uint8Array({ maxLength: 300 }),
    ts: fc.oneof(fc.maxSafeNat(), fc.double({ noNaN: true })),
  },
  { requiredKeys: ['position', 'streams', 'data'] },
)
const answer = fc.record({ entries: fc.array(wireEntry, { maxLength: 20 }), next: fc.maxSafeNat() })

/** What the client made of an answer before: the library's decoding, fields copied as the client copies them. */
function viaLibrary(bytes: Uint8Array): unknown {
  const r = decode(bytes) as { entries: { position: number; streams: string[]; data: Uint8Array; ts?: number }[]; next: number }
  return {
    entries: r.entries.map((e) => (e.ts === undefined ? { position: e.position, streams: e.streams, data: e.data } : { position: e.position, streams: e.streams, data: e.data, ts: e.ts })),
    next: r.next,
  }
}

describe('read answers: the fast path', () => {
  test('decodes any read answer as the library does (fields in any order)', () => {
    const fast = new FastDecoder()
    fc.assert(
      fc.property(answer, fc.boolean(), (a, nextFirst) => {
        const bytes = encode(nextFirst ? { next: a.next, entries: a.entries } : a, { ignoreUndefined: true })
        expect(fast.decodeReadAnswer(bytes)).toEqual(viaLibrary(bytes))
      }),
      { numRuns: 300 },
    )
  })

  test('the layout servers write (runs of entries on the same streams, log times in ms) decodes as the library does', () => {
    const fast = new FastDecoder()
    const position = fc.oneof(fc.integer({ min: 0, max: 300 }), fc.constantFrom(0x7f, 0x80, 0xff, 0x100, 0xffff, 0x10000, 0xffffffff, 2 ** 32, 2 ** 40), fc.maxSafeNat())
    const ts = fc.oneof(fc.integer({ min: 2 ** 32, max: Number.MAX_SAFE_INTEGER }), fc.constantFrom(1_763_000_000_000, 0, 5), fc.double({ noNaN: true }))
    fc.assert(
      fc.property(
        fc.array(fc.tuple(position, fc.nat(2), fc.oneof(fc.uint8Array({ maxLength: 40 }), fc.uint8Array({ minLength: 250, maxLength: 300 })), fc.option(ts, { nil: undefined })), { maxLength: 30 }),
        fc.array(fc.array(streamName, { minLength: 1, maxLength: 2 }), { minLength: 3, maxLength: 3 }),
        (raw, lists) => {
          // Long runs on one streams list, as a stream read gives.
          const entries = raw.map(([p, k, data, t]) => ({ position: p, streams: lists[k === 2 && p % 7 === 0 ? 1 : 0]!, data, ts: t }))
          const bytes = encode({ entries, next: 7 }, { ignoreUndefined: true })
          expect(fast.decodeReadAnswer(bytes)).toEqual(viaLibrary(bytes))
        },
      ),
      { numRuns: 300 },
    )
  })

  test('data are views of the answer (no copy); entries on the same streams share one frozen array', () => {
    const bytes = encode({
      entries: [
        { position: 5, streams: ['obj/a'], data: Uint8Array.of(1, 2), ts: 7 },
        { position: 6, streams: ['obj/a'], data: Uint8Array.of(3), ts: 7 },
        { position: 9, streams: ['obj/a', 'obj/b'], data: Uint8Array.of(), ts: 8 },
        { position: 10, streams: ['obj/a'], data: Uint8Array.of(4), ts: 8 },
      ],
      next: 11,
    })
    const r = new FastDecoder().decodeReadAnswer(bytes)!
    expect(r.next).toBe(11)
    expect(r.entries.map((e) => e.position)).toEqual([5, 6, 9, 10])
    expect(r.entries[0]!.data.buffer).toBe(bytes.buffer)
    expect([...r.entries[0]!.data]).toEqual([1, 2])
    expect(r.entries[1]!.streams).toBe(r.entries[0]!.streams)
    expect(r.entries[2]!.streams).toEqual(['obj/a', 'obj/b'])
    expect(r.entries[3]!.streams).toEqual(['obj/a'])
    expect(Object.isFrozen(r.entries[0]!.streams)).toBe(true)
  })

  test('anything but a read answer is left to the library (null)', () => {
    const fast = new FastDecoder()
    const entry = { position: 1, streams: ['s'], data: Uint8Array.of(1), ts: 2 }
    for (const other of [
      { error: { code: 'trimmed', message: 'gone' } },
      { entries: [entry] }, // no next
      { next: 3 }, // no entries
      { entries: [entry], next: 3, more: true }, // a field this path does not know
      { entries: [{ ...entry, keys: ['k'] }], next: 3 },
      { entries: [{ ...entry, position: -1 }], next: 3 },
      { entries: [{ ...entry, position: 1.5 }], next: 3 },
      { entries: [{ ...entry, data: 'text' }], next: 3 },
      { entries: [{ ...entry, streams: 's' }], next: 3 },
      { entries: [{ ...entry, streams: [1] }], next: 3 },
      { entries: [{ position: 1, streams: ['s'] }], next: 3 }, // no data
      { entries: {}, next: 3 },
      [entry],
      'entries',
    ]) {
      expect(fast.decodeReadAnswer(encode(other))).toBeNull()
    }
  })
})
