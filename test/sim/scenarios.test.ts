// Scenario tests that read like the paper (etcd-io/raft's raft_test.go style): a
// hand-driven network (cut, isolate, drop, filter, heal, deliverAll), the real core,
// and the simulator's checkers watching every record and message throughout. Each test
// names the claim it covers:
//   [PMS] Lamport, "Paxos Made Simple" (2001): P1a, P2c, the majority-quorum argument;
//   [PML] Chandra et al., "Paxos Made Live" (2007): catch-up before voting again;
//   [RSO] Michael et al., "Recovering Shared Objects Without Stable Storage" (2017).

import { describe, expect, it } from 'vitest'
import { compareBallots, type Message, type Op, type ProposalResult, type ReplicaId, type RequestId } from '../../log-server/paxos/types.ts'
import { ScenarioCluster, appendOp } from './scenario-cluster.ts'

function others(c: ScenarioCluster, id: ReplicaId): ReplicaId[] {
  return c.hosts.map((h) => h.id).filter((r) => r !== id)
}

/** Propose at `id`, deliver everything, and return the answer (which must have come). */
function commit(c: ScenarioCluster, id: ReplicaId, op: Op): Extract<ProposalResult, { ok: true }> {
  const rid = c.propose(id, op)
  c.deliverAll()
  const r = c.result(rid)
  if (r === undefined || !r.ok) throw new Error(`append at ${id} not acknowledged: ${JSON.stringify(r)}`)
  return r
}

/**
 * A client that keeps retrying the same op (same clientId and seq: exactly-once) at the
 * current leader, ticking the cluster, until it is acknowledged.
 */
function appendUntilAcked(c: ScenarioCluster, op: Op, maxTicks = 600): Extract<ProposalResult, { ok: true }> {
  let rid: RequestId | null = null
  let target: ReplicaId = 0
  for (let t = 0; t < maxTicks; t++) {
    const r = rid === null ? undefined : c.result(rid)
    if (r !== undefined && r.ok) return r
    if (rid === null || r !== undefined || t % 40 === 39) {
      target = c.leader() ?? (target + 1) % c.n
      if (c.hosts[target]!.up) rid = c.propose(target, op)
    }
    c.tick()
    c.deliverAll()
  }
  throw new Error(`not acknowledged within ${maxTicks} ticks\n${c.describe()}`)
}

function slotOfAccept(msgs: readonly Message[]): number {
  const a = msgs.find((m) => m.type === 'accept')
  if (a === undefined || a.type !== 'accept') throw new Error('no accept in flight')
  return a.slot
}

function opsOf(c: ScenarioCluster, id: ReplicaId, slot: number): readonly Op[] {
  const r = c.record(id, slot)
  if (r === undefined) throw new Error(`replica ${id} has no record for slot ${slot}`)
  return r.value.ops
}

// Each scenario runs with the leader fsyncing before it sends accept requests, and with
// earlyAccepts (requests first, its own vote counted once the driver reports the fsync).
describe.each([{ earlyAccepts: false }, { earlyAccepts: true }])('Paxos scenarios (earlyAccepts: $earlyAccepts)', ({ earlyAccepts }) => {
  it('isolated leader cannot commit (a value is chosen only by a majority of acceptors [PMS §2.2]), nor answer a linearizable tail', () => {
    const c = new ScenarioCluster({ replicas: 3, seed: 11, config: { earlyAccepts } })
    const L = c.bootstrap()
    commit(c, L, appendOp('a', 1))
    const commitBefore = c.status(L).commitSlot

    c.isolate(L)
    const rid = c.propose(L, appendOp('x', 1))
    const read = c.readIndex(L)
    c.run(5, [L])
    expect(c.status(L).commitSlot).toBe(commitBefore)
    expect(c.result(rid)?.ok).not.toBe(true)
    expect(c.reads.get(read)?.ok).not.toBe(true)
    expect(c.log.storedAppend('x', 1)).toBeUndefined()

    // The majority side elects a leader of its own and commits.
    const [A, B] = others(c, L) as [ReplicaId, ReplicaId]
    c.runUntil(() => c.status(A).role === 'leader' || c.status(B).role === 'leader', 'a leader on the majority side', 500, [A, B])
    const M = c.status(A).role === 'leader' ? A : B
    commit(c, M, appendOp('y', 1))
    // Meanwhile the isolated leader gave up: no quorum heard within an election timeout.
    c.run(30, [L])
    expect(c.status(L).role).not.toBe('leader')
    expect(c.result(rid)?.ok).not.toBe(true)

    c.heal()
    c.converge()
    expect(c.log.storedAppend('x', 1)).toBeUndefined()
    expect(c.log.storedAppend('y', 1)).toBeDefined()
  })

  it('minority cannot commit (any two majorities intersect [PMS §2.2]): 2 of 5 cut off', () => {
    const c = new ScenarioCluster({ replicas: 5, seed: 12, config: { earlyAccepts } })
    const L = c.bootstrap()
    commit(c, L, appendOp('a', 1))
    const [A, ...majority] = others(c, L) as [ReplicaId, ...ReplicaId[]]
    for (const a of [L, A]) for (const b of majority) c.cut(a, b)

    const rid = c.propose(L, appendOp('x', 1))
    c.run(5, [L, A])
    expect(c.result(rid)?.ok).not.toBe(true)
    expect(c.log.storedAppend('x', 1)).toBeUndefined()
    // Both minority replicas accepted x, yet it is not chosen: 2 is not a majority of 5.
    expect(c.sent.some((m) => m.type === 'accepted' && m.from === A)).toBe(true)

    c.runUntil(() => majority.some((r) => c.status(r).role === 'leader'), 'a leader among the majority', 500, majority)
    const M = majority.find((r) => c.status(r).role === 'leader')!
    commit(c, M, appendOp('y', 1))

    c.heal()
    c.converge()
    expect(c.log.storedAppend('x', 1)).toBeUndefined()
    expect(c.log.storedAppend('y', 1)).toBeDefined()
  })

  it('dueling proposers converge (one value per slot whatever the competition [PMS P2c]; progress needs one distinguished proposer [PMS §2.4])', () => {
    const c = new ScenarioCluster({ replicas: 3, seed: 13, config: { earlyAccepts } })
    const L = c.bootstrap()
    commit(c, L, appendOp('a', 1))
    c.crash(L)
    const [A, B] = others(c, L) as [ReplicaId, ReplicaId]
    // Both followers time out and campaign before either hears the other.
    for (let t = 0; t < 100 && !(c.status(A).role === 'candidate' && c.status(B).role === 'candidate'); t++) c.tick([A, B])
    expect(c.status(A).role).toBe('candidate')
    expect(c.status(B).role).toBe('candidate')
    const prepares = c.inFlight.filter((m) => m.type === 'prepare')
    expect(new Set(prepares.map((m) => m.from))).toEqual(new Set([A, B]))

    // Candidates take no appends; a lossy network keeps them dueling for a while.
    expect(c.result(c.propose(A, appendOp('x', 1)))).toMatchObject({ ok: false, code: 'not_leader' })
    expect(c.result(c.propose(B, appendOp('y', 1)))).toMatchObject({ ok: false, code: 'not_leader' })
    c.drop(0.3)
    c.run(40)
    c.heal()
    // Clients retry the same (clientId, seq) at whoever leads until acknowledged.
    const ax = appendUntilAcked(c, appendOp('x', 1))
    const ay = appendUntilAcked(c, appendOp('y', 1))
    c.start(L)
    c.converge()
    expect(c.log.storedAppend('x', 1)?.first).toBe(ax.outcome.kind === 'dup' ? ax.outcome.first : ax.firstPosition)
    expect(c.log.storedAppend('y', 1)?.first).toBe(ay.outcome.kind === 'dup' ? ay.outcome.first : ay.firstPosition)
    // More than one ballot was tried for leadership: they did duel.
    const ballots = new Set(c.sent.filter((m) => m.type === 'prepare' && (m.from === A || m.from === B)).map((m) => (m.type === 'prepare' ? `${m.ballot.round}.${m.ballot.replica}` : '')))
    expect(ballots.size).toBeGreaterThan(1)
  })

  it('leader crashes mid-accept and the new leader recovers the value (a value accepted by a majority is proposed by every higher ballot [PMS P2c])', () => {
    const c = new ScenarioCluster({ replicas: 3, seed: 14, config: { earlyAccepts } })
    const L = c.bootstrap()
    commit(c, L, appendOp('a', 1))
    const [A, B] = others(c, L) as [ReplicaId, ReplicaId]

    const rid = c.propose(L, appendOp('x', 1, 2))
    const slot = slotOfAccept(c.inFlight)
    // The accept reaches A only; A's answer never reaches L; then L crashes.
    c.take((m) => m.type === 'accept' && m.to === B)
    expect(c.deliverOnly((m) => m.type === 'accept' && m.to === A)).toBe(1)
    c.take((m) => m.type === 'accepted' && m.to === L)
    c.crash(L)
    // x is now chosen (L and A accepted it: 2 of 3), though no replica knows it.
    expect(c.hosts[A]!.disk.load(4096)!.accepted.map((a) => a.slot)).toContain(slot)

    // B must lead (A's prepares are lost), so B can only learn x from A's promise.
    c.filter((m) => m.type === 'prepare' && m.from === A)
    c.runUntil(() => c.status(B).role === 'leader' && c.status(B).commitSlot > slot, 'B leads and recovers the slot', 600)
    const promiseFromA = c.sent.find((m) => m.type === 'promise' && m.from === A && m.to === B)
    expect(promiseFromA?.type === 'promise' && promiseFromA.accepted.some((a) => a.slot === slot)).toBe(true)
    expect(opsOf(c, B, slot)).toEqual([appendOp('x', 1, 2)])

    c.heal()
    c.start(L)
    c.converge()
    for (const h of c.hosts) expect(opsOf(c, h.id, slot)).toEqual([appendOp('x', 1, 2)])
    expect(c.result(rid)).toBeUndefined() // its leader crashed before answering; a retry would be a dup
    const retry = appendUntilAcked(c, appendOp('x', 1, 2))
    expect(retry.outcome).toEqual({ kind: 'dup', first: c.log.storedAppend('x', 1)!.first })
  })

  it('gap filled with no-op (a new leader fills slots with no accepted value, and positions skip nothing)', () => {
    const c = new ScenarioCluster({ replicas: 3, seed: 15, config: { earlyAccepts, batchEntriesMax: 1 } })
    const L = c.bootstrap()
    commit(c, L, appendOp('a', 1))
    const [A, B] = others(c, L) as [ReplicaId, ReplicaId]
    const tailBefore = c.status(L).nextPosition

    // Slot s: x's accepts are all lost. Slot s+1: y is accepted by A only.
    c.propose(L, appendOp('x', 1))
    const s = slotOfAccept(c.take((m) => m.type === 'accept'))
    c.propose(L, appendOp('y', 1))
    const ys = c.take((m) => m.type === 'accept')
    expect(slotOfAccept(ys)).toBe(s + 1)
    for (const m of ys) if (m.to === A) c.inject(m)
    c.deliverOnly((m) => m.type === 'accept' && m.to === A)
    c.take((m) => m.to === L)
    c.crash(L)

    // B leads; its phase 1 finds y at s+1 (from A) and nothing at s.
    c.filter((m) => m.type === 'prepare' && m.from === A)
    c.runUntil(() => c.status(B).role === 'leader' && c.status(B).commitSlot >= s + 2, 'B leads and fills the gap', 600)
    expect(opsOf(c, B, s)).toEqual([]) // the no-op
    expect(opsOf(c, B, s + 1)).toEqual([appendOp('y', 1)])
    expect(c.record(B, s)!.firstPosition).toBe(tailBefore)
    expect(c.record(B, s + 1)!.firstPosition).toBe(tailBefore) // a no-op takes no position
    expect(c.log.storedAppend('y', 1)?.first).toBe(tailBefore)

    c.heal()
    c.start(L)
    c.converge()
    for (const h of c.hosts) {
      expect(opsOf(c, h.id, s)).toEqual([])
      expect(h.live.applied.nextPosition).toBe(tailBefore + 1)
    }
    expect(c.log.storedAppend('x', 1)).toBeUndefined()
  })

  it('restart keeps promises (an acceptor never accepts below a ballot it promised, even after a crash [PMS P1a, stable storage §2.3])', () => {
    const c = new ScenarioCluster({ replicas: 3, seed: 16, config: { earlyAccepts } })
    const L = c.bootstrap()
    commit(c, L, appendOp('a', 1))
    const [A, B] = others(c, L) as [ReplicaId, ReplicaId]
    const b1 = c.status(L).ballot

    // An accept of ballot b1 to A is held back (a slow network).
    const rid = c.propose(L, appendOp('x', 1))
    const held = c.take((m) => m.type === 'accept' && m.from === L)
    const toA = held.find((m) => m.to === A)!
    // L is cut off; A and B move on to a higher ballot b2.
    c.isolate(L)
    c.runUntil(() => c.leader() !== L && c.leader() !== null && compareBallots(c.status(A).promised, b1) > 0, 'A promised a higher ballot', 600, [A, B])
    const b2 = c.status(A).promised

    c.restart(A)
    expect(compareBallots(c.status(A).promised, b2)).toBeGreaterThanOrEqual(0)
    const before = c.sent.length
    c.inject(toA)
    c.deliverOnly((m) => m === toA)
    const answers = c.sent.slice(before).filter((m) => m.from === A && m.to === L)
    expect(answers.some((m) => m.type === 'accepted')).toBe(false)
    const nack = answers.find((m) => m.type === 'nack')
    expect(nack?.type === 'nack' && compareBallots(nack.promised, b2) >= 0).toBe(true)

    c.heal()
    c.converge()
    // L learns of b2 and steps down without an answer for x. (x stays accepted at L, so a
    // later leader may still choose it, in its slot: that is Paxos, and the checkers agree.)
    expect(c.result(rid)?.ok).not.toBe(true)
  })

  it('wiped replica rejoins as a non-voting learner and votes only after catching up [RSO crash vectors; PML §5.1]', () => {
    const c = new ScenarioCluster({ replicas: 3, seed: 17, config: { earlyAccepts } })
    const L = c.bootstrap()
    for (let i = 1; i <= 12; i++) commit(c, L, appendOp('a', i))
    const [A, B] = others(c, L) as [ReplicaId, ReplicaId]
    const oldIncarnation = c.status(A).incarnation
    const commitAtWipe = c.status(L).commitSlot

    // A loses its disk while B is down: L and a replica with no memory are not a majority.
    c.wipe(A)
    c.crash(B)
    const rx = c.propose(L, appendOp('x', 1))
    c.run(60)
    expect(c.status(A).voting).toBe(false)
    expect(c.log.storedAppend('x', 1)).toBeUndefined()
    expect(c.result(rx)?.ok).not.toBe(true)

    expect(c.roles.get(A)).toEqual(['joining'])

    // B returns: A rejoins under a new incarnation, learns as a non-voter, and only then votes.
    c.start(B)
    c.runUntil(() => c.status(A).voting, 'A votes again', 600)
    expect(c.roles.get(A)).toEqual(['joining', 'learner', 'follower'])
    expect(c.status(A).incarnation).toBeGreaterThan(oldIncarnation)
    // When it first voted it knew every slot chosen before it lost its disk.
    expect(c.votingSince.get(A)).toBeGreaterThanOrEqual(commitAtWipe)
    expect(c.nonVoterVotes).toEqual([])

    // Now A's vote counts: with B down again, L and A commit.
    appendUntilAcked(c, appendOp('x', 1))
    c.crash(B)
    const leader = c.leader()!
    expect(leader).not.toBe(B)
    commit(c, leader, appendOp('y', 1))
    c.start(B)
    c.converge()
    expect(c.nonVoterVotes).toEqual([])
  })

  it('a catching-up replica does not flood a peer that lacks the slots it needs (regression: catch-up storm, core da12e03)', () => {
    // Found by the simulator: a learner re-sent its catchupRequest as soon as an empty
    // reply came back, so an instant network looped forever within one tick.
    const c = new ScenarioCluster({ replicas: 3, seed: 217, config: { earlyAccepts } })
    const L = c.bootstrap()
    for (let i = 1; i <= 12; i++) commit(c, L, appendOp('a', i))
    const [A, B] = others(c, L) as [ReplicaId, ReplicaId]
    c.wipe(A)
    c.crash(B)
    c.propose(L, appendOp('x', 1))
    c.run(60)
    c.start(B)
    c.runUntil(() => c.status(A).voting, 'A votes again', 600)
    c.converge()
    // Bounded: at most a few catch-up requests per tick on average.
    const requests = c.sent.filter((m) => m.type === 'catchupRequest').length
    expect(requests).toBeLessThan(4 * c.ticks)
  })

  it('duplicate append yields original positions on every replica (exactly-once; deterministic application)', () => {
    const c = new ScenarioCluster({ replicas: 3, seed: 18, config: { earlyAccepts } })
    const L = c.bootstrap()
    const first = commit(c, L, appendOp('c1', 1, 2))
    expect(first.outcome).toEqual({ kind: 'new' })
    const p = first.firstPosition
    commit(c, L, appendOp('c2', 1, 3))

    // A retry after the answer: the original positions, nothing stored again.
    const tail = c.status(L).nextPosition
    const again = commit(c, L, appendOp('c1', 1, 2))
    expect(again.outcome).toEqual({ kind: 'dup', first: p })
    expect(c.status(L).nextPosition).toBe(tail)

    // Two copies in flight at once both reach the log: the second applies as a dup.
    const ra = c.propose(L, appendOp('c1', 2, 1))
    const rb = c.propose(L, appendOp('c1', 2, 1))
    c.deliverAll()
    const a = c.result(ra)!
    const b = c.result(rb)!
    expect(a.ok && b.ok).toBe(true)
    if (!a.ok || !b.ok) return
    expect(a.outcome).toEqual({ kind: 'new' })
    expect(b.outcome).toEqual({ kind: 'dup', first: a.firstPosition })
    c.run(3)
    // Every replica holds the same records: c1#2 once as new, once as a dup naming its position.
    for (const h of c.hosts) {
      const outcomes = [...new Set([a.slot, b.slot])].sort((x, y) => x - y).flatMap((slot) => {
        const r = c.record(h.id, slot)!
        return r.value.ops.flatMap((op, i) => (op.kind === 'append' && op.clientId === 'c1' && op.seq === 2 ? [r.outcomes[i]] : []))
      })
      expect(outcomes).toEqual([{ kind: 'new' }, { kind: 'dup', first: a.firstPosition }])
    }

    // After a leader change, a retry at the new leader still gets the original positions.
    c.crash(L)
    c.runUntil(() => c.leader() !== null && c.leader() !== L, 'a new leader', 600)
    const M = c.leader()!
    const late = commit(c, M, appendOp('c1', 1, 2))
    expect(late.outcome).toEqual({ kind: 'dup', first: p })
    c.start(L)
    c.converge()
    const tails = new Set(c.hosts.map((h) => h.live.applied.nextPosition))
    expect(tails).toEqual(new Set([p + 2 + 3 + 1]))
    for (const h of c.hosts) {
      const seqs = h.live.applied.sessions.get('c1')?.seqs ?? []
      expect(seqs.find((x) => x.seq === 1)?.first).toBe(p)
      expect(seqs.find((x) => x.seq === 2)?.first).toBe(a.firstPosition)
    }
  })
})
