// The read path's in-place walk of slot records (log-server/storage/record-reader.ts)
// against the general decoding (msgpack decode + storedEntries): same entries, same
// streams and data, for any record the core can write; anything else is a
// RecordShapeError (the store then decodes the general way).
import { encode } from '@msgpack/msgpack'
import fc from 'fast-check'
import { describe, expect, test } from 'vitest'
import type { ChosenRecord, Op, Outcome } from '../../log-server/paxos/types.ts'
import { storedEntries } from '../../log-server/storage/entries.ts'
import { checkedPayload, frame, unframe } from '../../log-server/storage/level-codec.ts'
import { RecordEntries, RecordShapeError } from '../../log-server/storage/record-reader.ts'

const stream = fc.oneof(fc.constantFrom('obj/a', 'obj/b', 'ci/a'), fc.string({ minLength: 1, maxLength: 30 }), fc.string({ unit: 'grapheme', minLength: 1, maxLength: 8 }), fc.string({ minLength: 200, maxLength: 300 }))
const entry = fc.record(
  { streams: fc.array(stream, { minLength: 1, maxLength: 3 }), data: fc.uint8Array({ maxLength: 70_000 / 64 }), keys: fc.array(fc.string({ maxLength: 5 }), { maxLength: 3 }) },
  { requiredKeys: ['streams', 'data'] },
)
const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record(
    {
      kind: fc.constant('append' as const),
      clientId: fc.uuid(),
      seq: fc.nat(),
      entries: fc.array(entry, { maxLength: 6 }),
      reads: fc.array(fc.record({ stream, key: fc.string(), version: fc.integer({ min: -1, max: 1e6 }) }), { maxLength: 2 }),
    },
    { requiredKeys: ['kind', 'entries'] },
  ),
  fc.record({ kind: fc.constant('trim' as const), stream, before: fc.nat() }),
)
const outcome: fc.Arbitrary<Outcome> = fc.oneof(
  fc.constant({ kind: 'new' as const }),
  fc.record({ kind: fc.constant('dup' as const), first: fc.nat() }),
  fc.record({ kind: fc.constant('rejected' as const), code: fc.constantFrom('sequence_too_old', 'conflict') }),
)
const record: fc.Arbitrary<ChosenRecord> = fc
  .record({
    slot: fc.maxSafeNat(),
    ts: fc.oneof(fc.maxSafeNat(), fc.double({ noNaN: true, noDefaultInfinity: true }).map((x) => x + 0)), // (-0 is written as 0)
    valueTs: fc.maxSafeNat(),
    firstPosition: fc.maxSafeNat(),
    ops: fc.array(op, { maxLength: 5 }),
    outcomes: fc.array(outcome, { minLength: 5, maxLength: 5 }),
  })
  .map((r) => ({ slot: r.slot, value: { ts: r.valueTs, ops: r.ops }, firstPosition: r.firstPosition, ts: r.ts, outcomes: r.outcomes.slice(0, r.ops.length) }))

function expectSame(walked: RecordEntries, r: ChosenRecord): void {
  const entries = storedEntries(r)
  expect(walked.slot).toBe(r.slot)
  expect(walked.firstPosition).toBe(r.firstPosition)
  expect(walked.ts).toBe(r.ts)
  expect(walked.count).toBe(entries.length)
  for (let i = 0; i < entries.length; i++) {
    expect(walked.streams(i)).toEqual(entries[i]!.streams)
    expect(walked.data(i)).toEqual(entries[i]!.data)
  }
}

describe('slot records walked in place', () => {
  test('the same stored entries as the general decoding, for any record', () => {
    fc.assert(
      fc.property(record, (r) => {
        const framed = frame(r)
        const decoded = unframe(framed, { what: 'test' }) as ChosenRecord
        expectSame(new RecordEntries(checkedPayload(framed, { what: 'test' })), decoded)
      }),
      { numRuns: 400 },
    )
  })

  test('fields in another order, and fields it does not know, are read the same', () => {
    fc.assert(
      fc.property(record, fc.boolean(), (r, extra) => {
        const reordered = {
          ...(extra ? { future: [1, { x: 'y' }, new Uint8Array(3), -1.5, null] } : {}),
          outcomes: r.outcomes.map((o) => (extra ? { note: 'z', ...o } : o)),
          ts: r.ts,
          value: { ops: r.value.ops.map((o) => (extra && o.kind === 'append' ? { entries: o.entries.map((e) => ({ data: e.data, more: 1, streams: e.streams })), kind: o.kind } : o)), ts: r.value.ts },
          firstPosition: r.firstPosition,
          slot: r.slot,
        }
        const bytes = encode(reordered)
        expectSame(new RecordEntries(bytes), r)
      }),
      { numRuns: 200 },
    )
  })

  test('views, not copies; consecutive entries on the same streams share one frozen array', () => {
    const r: ChosenRecord = {
      slot: 3,
      value: { ts: 1, ops: [{ kind: 'append', entries: [{ streams: ['s'], data: Uint8Array.of(1) }, { streams: ['s'], data: Uint8Array.of(2) }, { streams: ['t', 's'], data: Uint8Array.of(3) }] }] },
      firstPosition: 10,
      ts: 5,
      outcomes: [{ kind: 'new' }],
    }
    const payload = checkedPayload(frame(r), { what: 'test' })
    const w = new RecordEntries(payload)
    expect(w.data(0).buffer).toBe(payload.buffer)
    expect(w.data(0)).not.toBeInstanceOf(Buffer)
    expect(w.streams(1)).toBe(w.streams(0))
    expect(Object.isFrozen(w.streams(0))).toBe(true)
    expect(w.streams(2)).toEqual(['t', 's'])
  })

  test('what is not a slot record is a RecordShapeError, never a wrong answer', () => {
    fc.assert(
      fc.property(record, fc.nat(), fc.integer({ min: 1, max: 255 }), (r, at, xor) => {
        const bytes = encode(r)
        const damaged = bytes.slice()
        damaged[at % damaged.length]! ^= xor
        let walked: RecordEntries
        try {
          walked = new RecordEntries(damaged)
        } catch (err) {
          expect(err).toBeInstanceOf(RecordShapeError)
          return
        }
        // Damage the walk cannot see (a byte inside data, a name, a number) reads like the
        // general decoding of the same bytes would (the checksum catches it before, in a store).
        expect(walked.count).toBeGreaterThanOrEqual(0)
      }),
      { numRuns: 300 },
    )
    for (const other of [1, 'x', [], {}, { slot: 1 }, { slot: 1, firstPosition: 0, ts: 0, value: { ts: 0, ops: [] }, outcomes: [{ kind: 'new' }] }]) {
      expect(() => new RecordEntries(encode(other))).toThrow(RecordShapeError)
    }
  })
})
