// A slot value is encoded at most once per replica (log-server/value-bytes.ts): the accept
// and chosen records splice in the bytes the transport encoded or received. Those records
// must be byte for byte what framing the whole structure gives, whichever came first.
import fc from 'fast-check'
import { describe, expect, test } from 'vitest'
import { frame, frameAccept, frameRecord } from '../../log-server/storage/level-codec.ts'
import { FRAME_HEADER_BYTES, MessageEncoder, decodeBody } from '../../log-server/transport/codec.ts'
import { valueBytes } from '../../log-server/value-bytes.ts'
import type { ChosenRecord, Op, Outcome, SlotValue } from '../../log-server/paxos/types.ts'

const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record(
    {
      kind: fc.constant('append' as const),
      clientId: fc.string({ minLength: 1, maxLength: 20 }),
      seq: fc.nat(),
      entries: fc.array(fc.record({ streams: fc.array(fc.string({ minLength: 1, maxLength: 12 }), { minLength: 1, maxLength: 3 }), data: fc.uint8Array({ maxLength: 300 }), keys: fc.array(fc.string({ maxLength: 8 }), { maxLength: 3 }) }, { requiredKeys: ['streams', 'data'] }), { minLength: 1, maxLength: 5 }),
      refused: fc.array(fc.record({ index: fc.nat(100), conflict: fc.record({ stream: fc.string({ maxLength: 8 }), key: fc.string({ maxLength: 8 }), version: fc.integer({ min: -1, max: 1e9 }), position: fc.integer({ min: -1, max: 1e9 }) }) }), { minLength: 1, maxLength: 2 }),
    },
    { requiredKeys: ['kind', 'entries'] },
  ),
  fc.record({ kind: fc.constant('trim' as const), stream: fc.string({ minLength: 1, maxLength: 12 }), before: fc.nat() }),
)
const value: fc.Arbitrary<SlotValue> = fc.record({ ts: fc.nat(), ops: fc.array(op, { maxLength: 6 }) })
const outcome: fc.Arbitrary<Outcome> = fc.oneof(fc.constant({ kind: 'new' as const }), fc.record({ kind: fc.constant('dup' as const), first: fc.nat() }))

/** As a follower gets it: through a peer frame, decoded (its bytes remembered). */
function received(v: SlotValue): SlotValue {
  const enc = new MessageEncoder()
  const f = enc.encodeFrame({ type: 'accept', from: 0, to: 1, inc: 1, vec: [1, 1, 1], ballot: { round: 1, replica: 0 }, slot: 3, value: v, commitSlot: 0 })
  return (decodeBody(f.subarray(FRAME_HEADER_BYTES)) as { value: SlotValue }).value
}

describe('slot value bytes, shared by transport and storage', () => {
  test('accept and chosen records equal framing the whole structure: fresh values, sent ones, received ones', () => {
    fc.assert(
      fc.property(value, fc.nat(), fc.nat(), fc.array(outcome, { maxLength: 6 }), fc.boolean(), (v, slot, first, outcomes, viaWire) => {
        const val = viaWire ? received(v) : v
        const ballot = { round: 3, replica: 1 }
        const record: ChosenRecord = { slot, value: val, firstPosition: first, ts: v.ts, outcomes }
        // Storage first (the bytes get encoded here), or after the transport (reused).
        if (!viaWire && slot % 2 === 0) new MessageEncoder().encodeFrame({ type: 'accept', from: 0, to: 1, inc: 1, vec: [1, 1, 1], ballot, slot, value: val, commitSlot: 0 })
        expect(Buffer.from(frameAccept(ballot, val)).equals(Buffer.from(frame([[ballot.round, ballot.replica], val])))).toBe(true)
        expect(Buffer.from(frameRecord(record)).equals(Buffer.from(frame(record)))).toBe(true)
      }),
      { numRuns: 200 },
    )
  })

  test('a received value keeps the bytes it came in (no new encoding), a local one is encoded once', () => {
    const v: SlotValue = { ts: 5, ops: [{ kind: 'append', entries: [{ streams: ['s'], data: new Uint8Array([1, 2]) }] }] }
    const got = received(v)
    const b = valueBytes(got)
    expect(valueBytes(got)).toBe(b)
    const op0 = got.ops[0]!
    if (op0.kind !== 'append') throw new Error('expected an append')
    const d = op0.entries[0]!.data
    expect(b.buffer).toBe(d.buffer) // a view of the frame it arrived in
    expect(valueBytes(v)).toBe(valueBytes(v))
  })
})
