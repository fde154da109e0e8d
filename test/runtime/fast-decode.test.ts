import { decode, encode } from '@msgpack/msgpack'
import fc from 'fast-check'
import { describe, expect, test } from 'vitest'
import { encodeReadAnswer } from '../../log-server/api/read-answer.ts'
import { FastDecoder } from '../../object-runtime/fast-decode.ts'

// The fast decoder builds short ASCII strings and small arrays by length (one case per
// length): every length, on both sides of each case, must agree with the library.
describe('FastDecoder by length', () => {
  const fast = new FastDecoder()

  test('ASCII strings of every length 0..300 (also interned, as map keys and names)', () => {
    fc.assert(
      fc.property(fc.nat(300), fc.string({ unit: fc.integer({ min: 0, max: 0x7f }).map((c) => String.fromCharCode(c)), minLength: 300, maxLength: 300 }), (len, text) => {
        const s = text.slice(0, len)
        for (const value of [s, [s, s], { [s || 'k']: s }]) {
          const bytes = encode(value)
          expect(fast.decode(bytes)).toEqual(decode(bytes))
        }
        const header = fast.decodeOpHeader(encode([1, s, 1, s, [s]]))
        expect(header).toMatchObject({ kind: 1, type: s, version: 1, mutator: s, args: [s] })
      }),
      { numRuns: 600 },
    )
  })

  test('arrays of every length 0..40 are whole, in order and frozen; op args likewise', () => {
    for (let n = 0; n <= 40; n++) {
      const value = Array.from({ length: n }, (_, i) => (i % 3 === 0 ? `s${i}` : i % 3 === 1 ? i * 1000 : [i]))
      const bytes = encode(value)
      const got = fast.decode(bytes) as unknown[]
      expect(got).toEqual(value)
      expect(Object.isFrozen(got)).toBe(true)
      const header = fast.decodeOpHeader(encode([1, 'T', 1, 'm', value]))!
      expect(header.args).toEqual(value)
      if (n <= 15) expect(Object.isFrozen(header.args)).toBe(false) // a fixarray: its own path
    }
  })

  test('decodeOpHeader answers one object, overwritten by the next call', () => {
    const a = fast.decodeOpHeader(encode([1, 'QMap', 1, 'set', ['a', 1]]))!
    const { args } = a
    const b = fast.decodeOpHeader(encode([1, 'QMap', 1, 'delete', ['b']]))!
    expect(b).toBe(a)
    expect(b).toMatchObject({ mutator: 'delete', args: ['b'] })
    expect(args).toEqual(['a', 1]) // what was read out before stays
  })

  test('read answers: data are views of the answer bytes, of the same class (Uint8Array or Buffer)', () => {
    const entries = Array.from({ length: 5 }, (_, i) => ({ position: 100 + i, streams: ['obj/a'], data: Uint8Array.from({ length: i * 3 }, (_, j) => i + j), ts: 1_700_000_000_000 }))
    const buf = encodeReadAnswer(entries, 105)
    const plain = new Uint8Array(buf.byteLength + 7).subarray(7)
    plain.set(buf)
    for (const bytes of [plain, buf]) {
      const got = fast.decodeReadAnswer(bytes)!
      expect(got.next).toBe(105)
      expect(got.entries.map((e) => [e.position, e.streams, [...e.data], e.ts])).toEqual(entries.map((e) => [e.position, e.streams, [...e.data], e.ts]))
      for (const e of got.entries) {
        expect(e.data.buffer).toBe(bytes.buffer)
        expect(e.data.constructor).toBe(bytes.constructor)
        expect(e.data.byteOffset).toBeGreaterThanOrEqual(bytes.byteOffset)
        expect(e.data.byteOffset + e.data.byteLength).toBeLessThanOrEqual(bytes.byteOffset + bytes.byteLength)
      }
    }
  })
})
