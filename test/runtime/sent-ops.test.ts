import fc from 'fast-check'
import { describe, expect, test } from 'vitest'
import type { DecodedRecord } from '../../object-runtime/op-codec.ts'
import { SentOps } from '../../object-runtime/sent-ops.ts'

const rec = (n: number): DecodedRecord => ({ kind: 'op', type: 'T', version: 1, mutator: 'm', args: [n] })
const bytes = (n: number): Uint8Array => Uint8Array.of(0x95, n & 0xff, n >> 8)

describe('SentOps: records of ops sent, taken by playback instead of a decode', () => {
  test('an entry equal to the oldest op sent takes its record; any other entry takes nothing', () => {
    const sent = new SentOps()
    const a = sent.add(bytes(1), rec(1))
    sent.add(bytes(2), rec(2))
    expect(sent.take(bytes(2))).toBeUndefined() // not the oldest: decoded instead
    expect(sent.take(bytes(1))).toBe(a.record)
    expect(sent.take(bytes(1))).toBeUndefined() // taken once
    expect(sent.take(bytes(2))).toEqual(rec(2))
    expect(sent.size).toBe(0)
  })

  test('an op met out of order leaves with its call; the ones after it are matched again', () => {
    const sent = new SentOps()
    const first = sent.add(bytes(1), rec(1))
    const second = sent.add(bytes(2), rec(2))
    sent.add(bytes(3), rec(3))
    expect(sent.take(bytes(2))).toBeUndefined() // another batch overtook op 1: decoded
    expect(sent.take(bytes(3))).toBeUndefined()
    sent.done(first) // op 1's call ended (its entry was decoded after all)
    sent.done(second)
    expect(sent.take(bytes(3))).toEqual(rec(3)) // in step again
    expect(sent.size).toBe(0)
  })

  test('against a reference: take answers the oldest op not done, iff its bytes are equal; nothing is kept after every call ends', () => {
    type Step = { kind: 'add' } | { kind: 'take'; ofOldest: boolean; n: number } | { kind: 'done'; i: number }
    const step = fc.oneof(
      fc.constant<Step>({ kind: 'add' }),
      fc.record({ kind: fc.constant('take' as const), ofOldest: fc.boolean(), n: fc.integer({ min: 0, max: 300 }) }),
      fc.record({ kind: fc.constant('done' as const), i: fc.nat() }),
    )
    fc.assert(
      fc.property(fc.array(step, { maxLength: 200 }), (steps) => {
        const sent = new SentOps()
        const all: { n: number; op: ReturnType<SentOps['add']>; done: boolean }[] = []
        let next = 0
        for (const s of steps) {
          if (s.kind === 'add') {
            const n = next++ % 7 // equal bytes recur: content, not identity, decides
            all.push({ n, op: sent.add(bytes(n), rec(n)), done: false })
          } else if (s.kind === 'done') {
            if (all.length === 0) continue
            const it = all[s.i % all.length]!
            it.done = true
            sent.done(it.op)
          } else {
            const oldest = all.find((x) => !x.done)
            const n = s.ofOldest && oldest !== undefined ? oldest.n : s.n
            const got = sent.take(bytes(n))
            if (oldest !== undefined && oldest.n === n) {
              expect(got).toBe(oldest.op.record)
              oldest.done = true
            } else {
              expect(got).toBeUndefined()
            }
          }
        }
        for (const x of all) sent.done(x.op)
        expect(sent.size).toBe(0)
      }),
      { numRuns: 300 },
    )
  })
})
