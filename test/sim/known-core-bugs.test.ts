// Reproductions of core bugs the simulator found, kept runnable until they are fixed.
// They are skipped by default (they fail today); run them with
//   SIM_KNOWN_BUGS=1 npx vitest run test/sim/known-core-bugs.test.ts
// When a fix lands, they should pass: then drop the skip (or the file).
//
// Seeds of the random simulation are tied to the simulator's version; each entry names
// what the checker said and how to read the trace.

import { describe, expect, it } from 'vitest'
import type { ReplicaId } from '../../log-server/paxos/types.ts'
import { ScenarioCluster, appendOp } from './scenario-cluster.ts'
import { runSimulation } from './simulation.ts'

const enabled = process.env.SIM_KNOWN_BUGS === '1'

describe.skipIf(!enabled)('known core bugs (SIM_KNOWN_BUGS=1)', () => {
  // Catch-up has no back-off: on an empty catchupReply (the peer lacks the slot) the
  // replica re-sends the same catchupRequest at once, to the same peer (the round-robin
  // choice is tickCount % peers, and the tick has not moved). On an instant network
  // that is an unbounded message loop; on a real one a request per round trip to a
  // peer that cannot help.
  it('catch-up storm: a learner re-asks a peer that lacks the slot without waiting (scenario, seed 217)', () => {
    const c = new ScenarioCluster({ replicas: 3, seed: 217 })
    const L = c.bootstrap()
    for (let i = 1; i <= 12; i++) {
      c.propose(L, appendOp('a', i))
      c.deliverAll()
    }
    const [A, B] = c.hosts.map((h) => h.id).filter((r) => r !== L) as [ReplicaId, ReplicaId]
    c.wipe(A)
    c.crash(B)
    c.propose(L, appendOp('x', 1))
    c.run(60)
    c.start(B)
    // Throws "deliverAll: more than 100000 messages without a tick": catchupRequest 0->1 [12,13) forever.
    expect(() => c.runUntil(() => c.status(A).voting, 'A votes again', 600)).not.toThrow()
  })

  // A recovering leader must learn every slot below the highest commitSlot its promisers
  // reported before it proposes. When the promise carries no records (the range is older
  // than the promiser's in-memory window: recentChosenMax 8 on these seeds), it asks
  // peers round-robin by tickCount % peers; it re-asks as soon as the (empty) reply
  // arrives, so with a constant round trip of 2 ticks it always asks the same peer, one
  // that is as far behind as itself, and never the one that has the slots (whose
  // heartbeatAcks even say so: commit=N). The leader stays `recovering` forever: inflight
  // 0, queue growing, clients never answered; the liveness checker fires.
  // Trace of seed 295 (SIM_TRACE=/tmp/t295.txt SEED=295 npx vitest run test/sim/sim.test.ts):
  // t988 replica 1 promises ballot 30.2 to replica 2 with commit=204, chosen=0 (the
  // prepare asked from a slot older than replica 1's in-memory window); replica 2 (the
  // new leader, commit 164) asks replica 1 for [164,168) once at t1000, then from t1001
  // to the end asks replica 0 (commit 168, as far behind as itself) for [168,172) every
  // 2 ticks, 1502 times, getting records=0; replica 1, whose heartbeatAcks say commit=204,
  // is not asked again. Seeds 411 (5 replicas), 1343, 1802 and 1930 are the same stall.
  // (Seeds are tied to the simulator's version: commit 8e3a80c.)
  for (const seed of [295, 411, 1343, 1802, 1930]) {
    it(`recovering leader stalls asking the wrong peer for catch-up (simulation, seed ${seed})`, () => {
      expect(() => runSimulation({ seed })).not.toThrow()
    })
  }
})
