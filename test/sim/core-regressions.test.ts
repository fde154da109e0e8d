// Regressions: core bugs the simulator found, replayed on every run now that they are
// fixed. Seeds of the random simulation are tied to the simulator's version (here:
// commit 8bd6a2b of test/sim) and to the core's use of its rng; if a change moves the
// bug off this seed, the test still passes, so the scenario tests carry the lesson too.

import { describe, expect, it } from 'vitest'
import { runSimulation } from './simulation.ts'

describe('core bugs found by the simulator (fixed)', () => {
  // A recovering leader waits forever for a chosen record that only a wiped replica had.
  // Replay: SIM_TRACE=/tmp/t1094.txt SEED=1094 npx vitest run test/sim/sim.test.ts
  // - t594/t595: leader 2 (ballot 12.2) gets slot 227 accepted by replica 0 and itself and
  //   applies it (commit 228). Replica 0 accepted 227@12.2 but knows commit 227 only.
  // - t597-t600: replica 1 wins ballot 13.1 with promises from {1, 2}; replica 2's promise
  //   says commit=228, acc=[], chosen=0 (the range from 214 is older than its window), so
  //   replica 1 must catch up to 228 before it proposes (recoveryCommitTarget 228). It
  //   ignores replica 0's promise (acc=[227@12.2]): "not a candidate for it".
  // - t605: replica 2 loses its disk. Nobody alive knows slot 227 as chosen; its value sits
  //   in replica 0's accepted list. Replica 1 stays leader (replica 0 acks its heartbeats),
  //   stays `recovering`, and sends catchupRequest [227,228) forever; replica 2 rejoins as
  //   a learner with floor 227 and cannot vote until slot 227 is known chosen.
  // - Liveness phase: 1500 ticks with a healed network, commit stuck at 227 everywhere,
  //   45 client ops queued at the leader.
  // Fixed: a leader whose recovery makes no progress for two election timeouts runs
  // phase 1 again with a higher ballot. The suggestion was, in the spirit of Paxos: when the recovery target cannot be reached (the promiser
  // that reported it came back under a new incarnation, or catch-up made no progress for a
  // while), run phase 1 again (a new ballot, or re-prepare from commitSlot): a majority of
  // promises then reveals any value chosen in [commitSlot, target) through accepted lists.
  it('recovering leader stuck on a commit index reported by a replica that then lost its disk (simulation, seed 1094)', () => {
    expect(() => runSimulation({ seed: 1094 })).not.toThrow()
  })
})
