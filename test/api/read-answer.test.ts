// Read answers written directly (log-server/api/read-answer.ts): byte for byte what the
// library makes of the same object, whatever the numbers, sizes and streams.
import { encode } from '@msgpack/msgpack'
import fc from 'fast-check'
import { describe, expect, test } from 'vitest'
import { encodeReadAnswer } from '../../log-server/api/read-answer.ts'
import type { ApiEntry } from '../../log-server/api/replica-api.ts'

const viaLibrary = (entries: readonly ApiEntry[], next: number): Uint8Array =>
  encode({ entries: entries.map((e) => ({ position: e.position, streams: e.streams, data: e.data, ts: e.ts })), next }, { ignoreUndefined: true })

const number = fc.oneof(
  fc.integer({ min: -40, max: 300 }),
  fc.constantFrom(0x7f, 0x80, 0xff, 0x100, 0xffff, 0x10000, 0xffffffff, 0x100000000, -0x20, -0x21, -0x80, -0x81, -0x8000, -0x8001, -0x80000000, -0x80000001),
  fc.maxSafeInteger(),
  fc.double({ noNaN: true }),
)
const streamList = fc.array(fc.oneof(fc.constantFrom('obj/a', 'obj/b'), fc.string({ maxLength: 40 }), fc.string({ unit: 'grapheme', maxLength: 10 })), { minLength: 1, maxLength: 3 })

describe('read answers, written directly', () => {
  test('equal to the library encoding of the same answer', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ position: number, streams: fc.nat(3), data: fc.uint8Array({ maxLength: 300 }), ts: fc.option(number, { nil: undefined }) }), { maxLength: 40 }),
        fc.array(streamList, { minLength: 4, maxLength: 4 }),
        number,
        (raw, lists, next) => {
          // Entries share streams arrays (as stores hand them out) or carry their own.
          const entries = raw.map((r) => ({ position: r.position, streams: r.streams === 3 ? [...lists[3]!] : lists[r.streams]!, data: r.data, ts: r.ts }) as ApiEntry)
          expect(new Uint8Array(encodeReadAnswer(entries, next))).toEqual(viaLibrary(entries, next))
        },
      ),
      { numRuns: 500 },
    )
  })

  test('large data, many entries, Buffers', () => {
    const streams = ['obj/x']
    const entries: ApiEntry[] = [
      { position: 1, streams, data: new Uint8Array(70_000).fill(7), ts: 5 },
      { position: 2, streams, data: Buffer.alloc(300, 1), ts: 5 },
      ...Array.from({ length: 70_000 }, (_, i) => ({ position: 3 + i, streams, data: Uint8Array.of(i & 0xff), ts: 6 })),
    ]
    expect(Buffer.compare(encodeReadAnswer(entries, 70_003), viaLibrary(entries, 70_003))).toBe(0) // (toEqual is slow on MBs)
    expect(new Uint8Array(encodeReadAnswer([], 0))).toEqual(viaLibrary([], 0))
  })
})
