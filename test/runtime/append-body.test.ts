// The hand-written bodies of appends (object-runtime/append-body.ts): plain or
// conditional, and per-entry conditional; each is byte for byte what @msgpack/msgpack writes for the same object, for any strings
// (ASCII or not, of any length class), data sizes and numbers.
import { encode } from '@msgpack/msgpack'
import fc from 'fast-check'
import { describe, expect, test } from 'vitest'
import { encodeAppendBody, encodeEachBody, type EachEntry } from '../../object-runtime/append-body.ts'

const str = fc.oneof(fc.string({ maxLength: 40 }), fc.string({ unit: 'grapheme', maxLength: 40 }), fc.string({ minLength: 30, maxLength: 300 }))
const version = fc.oneof(fc.constantFrom(-1, 0, 127, 128, 255, 256, 65_535, 65_536, 2 ** 32 - 1, 2 ** 32, Number.MAX_SAFE_INTEGER), fc.nat())
const item: fc.Arbitrary<EachEntry> = fc.record({
  entry: fc.oneof(
    fc.record({ streams: fc.array(str, { minLength: 1, maxLength: 3 }), data: fc.uint8Array({ maxLength: 300 }) }),
    fc.record({ streams: fc.array(str, { minLength: 1, maxLength: 3 }), data: fc.uint8Array({ maxLength: 70_000 }), keys: fc.array(str, { maxLength: 20 }) }),
  ),
  reads: fc.array(fc.record({ stream: str, key: str, version }), { maxLength: 20 }),
})

describe('encodeEachBody', () => {
  test('equals the library encoding of { entries: [{ streams, data, keys?, reads }], clientId, seq }', () => {
    fc.assert(
      fc.property(fc.array(item, { minLength: 1, maxLength: 20 }), str, version, (items, clientId, seq) => {
        const expected = encode({ entries: items.map((i) => ({ ...i.entry, reads: i.reads })), clientId, seq })
        expect(Buffer.from(encodeEachBody(items, clientId, seq)).equals(Buffer.from(expected))).toBe(true)
      }),
      { numRuns: 200 },
    )
  })

  test('arrays and maps past 15 and 65,535 items take the longer headers', () => {
    const items: EachEntry[] = Array.from({ length: 17 }, (_, i) => ({ entry: { streams: ['s'], data: new Uint8Array([i]), keys: Array.from({ length: 16 }, (_, k) => `k${k}`) }, reads: [] }))
    const expected = encode({ entries: items.map((i) => ({ ...i.entry, reads: i.reads })), clientId: 'c', seq: 1 })
    expect(Buffer.from(encodeEachBody(items, 'c', 1)).equals(Buffer.from(expected))).toBe(true)
    const many: EachEntry[] = Array.from({ length: 65_536 }, () => ({ entry: { streams: ['s'], data: new Uint8Array(0) }, reads: [] }))
    const expected2 = encode({ entries: many.map((i) => ({ ...i.entry, reads: i.reads })), clientId: 'c', seq: 2 })
    expect(Buffer.from(encodeEachBody(many, 'c', 2)).equals(Buffer.from(expected2))).toBe(true)
  })

  test('encodeAppendBody equals the library encoding of { entries: [{ streams, data, keys? }], clientId, seq, reads? }', () => {
    fc.assert(
      fc.property(fc.array(item, { minLength: 1, maxLength: 20 }), str, version, fc.option(fc.array(fc.record({ stream: str, key: str, version }), { maxLength: 10 }), { nil: undefined }), (items, clientId, seq, reads) => {
        const entries = items.map((i) => i.entry)
        const expected = encode(reads === undefined ? { entries, clientId, seq } : { entries, clientId, seq, reads })
        expect(Buffer.from(encodeAppendBody(entries, clientId, seq, reads)).equals(Buffer.from(expected))).toBe(true)
      }),
      { numRuns: 200 },
    )
  })
})
