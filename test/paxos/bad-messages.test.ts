// Claim 9 of the core: a bad or stale message is ignored (with a reason), never crashes
// a replica. Random garbage, shaped like messages or not, goes to a leader and a follower
// of a working cluster; none may throw, and the cluster must still commit afterwards.
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import type { Message } from '../../log-server/paxos/types.ts'
import { MiniCluster, append } from './harness.ts'

const TYPES = ['prepare', 'promise', 'accept', 'accepted', 'nack', 'heartbeat', 'heartbeatAck', 'catchupRequest', 'catchupReply', 'joinProbe', 'joinInfo', 'join', 'joinAck', 'bogus']

const junk = fc.oneof(
  fc.constant(null),
  fc.constant(undefined),
  fc.integer({ min: -5, max: 10 }),
  fc.double(),
  fc.string({ maxLength: 5 }),
  fc.boolean(),
  fc.constant(new Uint8Array([1, 2])),
  fc.array(fc.integer({ min: -2, max: 5 }), { maxLength: 6 }),
  fc.record({ round: fc.integer({ min: -2, max: 100 }), replica: fc.integer({ min: -2, max: 4 }) }),
)

const shaped = fc.record(
  {
    type: fc.constantFrom(...TYPES),
    from: fc.integer({ min: -1, max: 3 }),
    to: fc.integer({ min: -1, max: 3 }),
    inc: fc.oneof(fc.integer({ min: 0, max: 3 }), junk),
    vec: fc.oneof(fc.constant([1, 1, 1]), fc.array(fc.integer({ min: 0, max: 4 }), { maxLength: 4 }), junk),
    ballot: junk,
    promised: junk,
    slot: junk,
    fromSlot: junk,
    toSlot: junk,
    commitSlot: junk,
    readId: junk,
    attempt: junk,
    incarnation: junk,
    knownIncarnation: junk,
    maxSlot: junk,
    value: fc.oneof(junk, fc.record({ ts: junk, ops: fc.oneof(junk, fc.array(fc.record({ kind: fc.constantFrom('append', 'trim', 'x'), entries: fc.oneof(junk, fc.array(fc.record({ streams: junk, data: junk }), { maxLength: 2 })), stream: junk, before: junk }), { maxLength: 2 })) })),
    accepted: fc.oneof(junk, fc.array(fc.record({ slot: junk, ballot: junk, value: junk }), { maxLength: 2 })),
    chosen: fc.oneof(junk, fc.array(fc.record({ slot: junk, value: junk }), { maxLength: 2 })),
    records: fc.oneof(junk, fc.array(fc.record({ slot: junk, value: junk }), { maxLength: 2 })),
  },
  { requiredKeys: ['type', 'from', 'to'] },
)

describe('bad and stale messages', () => {
  it('never make a replica throw; the cluster keeps committing', () => {
    const c = new MiniCluster(3, 5)
    const l = c.elect()
    const f = (l + 1) % 3
    fc.assert(
      fc.property(fc.array(fc.oneof(shaped, junk), { minLength: 1, maxLength: 20 }), (msgs) => {
        for (const raw of msgs) {
          for (const to of [l, f]) {
            const m = (typeof raw === 'object' && raw !== null && !(raw instanceof Uint8Array) && !Array.isArray(raw) ? { ...raw, to } : raw) as unknown as Message
            const out = c.cores[to]!.step(m)
            // Only what a correct peer could have sent may have an effect; garbage is reported.
            if (typeof raw !== 'object' || raw === null) expect(out.ignored.length).toBeGreaterThan(0)
          }
        }
      }),
      { numRuns: 300, seed: 42 },
    )
    // A stale but well-formed message: an accept from an old ballot is refused (nack).
    const stale = { type: 'accept', from: f, to: l, inc: 1, vec: [1, 1, 1], ballot: { round: 0, replica: f }, slot: 0, value: { ts: 0, ops: [] }, commitSlot: 0 } as unknown as Message
    expect(() => c.cores[l]!.step(stale)).not.toThrow()
    c.queue.length = 0
    c.tick(40)
    const leader = c.leader()!
    const id = c.propose(leader, append('s', 'after the garbage'))
    c.deliverAll()
    c.tick(3)
    expect(c.results.get(id)).toMatchObject({ ok: true })
  })
})
