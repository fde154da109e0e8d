// The Multi-Paxos core: a pure state machine in the manner of etcd-io/raft.
//
// Inputs: tick(now), step(message), propose(requestId, op), readIndex(requestId),
// serveCatchup(to, records). Each returns an Output (types.ts) that the driver handles
// in order: persist writes, send messages, deliver chosen/results/reads, serve storage
// reads. The core never touches a socket, a disk, a timer, the clock or Math.random.
//
// Roles
// - joining: empty disk. Probes peers for the incarnation they know it by, announces
//   a new one, and waits until a quorum of OTHER replicas has persisted it (join/joinAck).
// - learner: knows its new incarnation, does not vote; catches up past the highest slot
//   the quorum reported (its "floor"), then becomes a follower and votes.
// - follower / candidate / leader: classic Multi-Paxos with a stable leader.
//
// Why incarnations (crash vectors, after Michael et al., "Recovering Shared Objects
// Without Stable Storage", DISC 2017): a replica that lost its disk forgot its promises
// and accepts. Every message carries the sender's incarnation and its view of everyone's;
// a candidate or leader discards a promise or accept-ack from an incarnation older than
// the newest it has heard of, and a rejoining replica adopts the highest promise a quorum
// of others reports. Because the quorum that persisted the new incarnation intersects
// every quorum that the old self was part of (minus itself), no vote of the forgotten
// self can combine with a vote of the new self to choose two values for one slot. The
// learner waits until it knows every slot the old self may have helped choose (the
// floor) before voting, as Paxos Made Live prescribes.

import { quorum, type CoreConfig } from './config.ts'
import { ConflictTable, type ConflictRecord } from './conflicts.ts'
import type { Rng } from './rng.ts'
import {
  ZERO_BALLOT,
  ballotString,
  compareBallots,
  type AppendOp,
  type AppliedState,
  type Ballot,
  type ChosenRecord,
  type CoreStatus,
  type Entry,
  type Message,
  type Op,
  type Outcome,
  type Output,
  type PersistedState,
  type ProposalErrorCode,
  type ProposalResult,
  type ReadIndexResult,
  type RefusedEntry,
  type ReplicaId,
  type RequestId,
  type Role,
  type SessionSeq,
  type SessionState,
  type SessionUpdate,
  type SlotValue,
  type TrimUpdate,
  type Write,
} from './types.ts'

export class AssertionError extends Error {
  readonly code = 'assertion_failed'
}

/** An invariant: if it does not hold, this replica stops (fail-stop beats divergence). */
export function assert(cond: unknown, msg: string): asserts cond {
  if (!cond) throw new AssertionError(`paxos invariant broken: ${msg}`)
}

const NEW: Outcome = Object.freeze({ kind: 'new' })

export function emptyOutput(): Output {
  return { writes: [], messages: [], chosen: [], results: [], reads: [], storageReads: [], ignored: [], early: [], persistToken: 0 }
}

interface AcceptedSlot {
  readonly ballot: Ballot
  readonly value: SlotValue
}

interface QueuedOp {
  readonly requestId: RequestId
  readonly op: Op
  readonly entries: number
  readonly bytes: number
  /** Conflict records of the keys this op writes, counted as pending until applied. */
  readonly keys: readonly ConflictRecord[]
}

interface InflightSlot {
  /** Conflict records of the keys its ops write, released when the slot is applied. */
  readonly keys: readonly ConflictRecord[]
  readonly value: SlotValue
  /** Replica -> incarnation it acked with (self included). */
  readonly acks: Map<ReplicaId, number>
  /** requestIds by op index (-1 for ops with no waiter, e.g. recovered values). */
  readonly requests: RequestId[]
  sentTick: number
}

interface PromiseInfo {
  readonly inc: number
  readonly commitSlot: number
  readonly accepted: readonly { readonly slot: number; readonly ballot: Ballot; readonly value: SlotValue }[]
}

interface ReadRound {
  readonly id: number
  readonly acks: Set<ReplicaId>
  readonly requests: RequestId[]
}

interface JoinState {
  attempt: number
  /** joinInfo answers: replica -> what it knows. */
  readonly infos: Map<ReplicaId, { knownIncarnation: number }>
  /** Set once we announced a new incarnation. */
  announced: number
  readonly acks: Map<ReplicaId, { promised: Ballot; maxSlot: number; commitSlot: number }>
  elapsed: number
}

function opSize(op: Op): { entries: number; bytes: number } {
  if (op.kind === 'trim') return { entries: 0, bytes: op.stream.length + 16 }
  let bytes = 0
  for (const e of op.entries) {
    bytes += e.data.length
    for (const s of e.streams) bytes += s.length
  }
  return { entries: op.entries.length, bytes }
}

const NO_KEYS: readonly ConflictRecord[] = Object.freeze([])

/** Some entry of the append carries its own reads (per-entry conditions). */
function hasEntryReads(op: AppendOp): boolean {
  for (const e of op.entries) if (e.reads != null && e.reads.length > 0) return true
  return false
}

/**
 * The answer to a retried append (its seq already applied): the original positions and
 * refusals. `sent` = entries of the request, accepted and refused.
 */
function dupResult(requestId: RequestId, dup: Outcome, sent: number, slot: number, ts: number): ProposalResult {
  const refused = dup.kind === 'dup' ? dup.refused : undefined
  const count = sent - (refused?.length ?? 0)
  const firstPosition = dup.kind === 'dup' ? dup.first : -1
  return refused === undefined
    ? { requestId, ok: true, outcome: dup, firstPosition, count, slot, ts }
    : { requestId, ok: true, outcome: dup, firstPosition, count, slot, ts, refused }
}


function valueBytes(v: SlotValue): number {
  let b = 0
  for (const op of v.ops) b += opSize(op).bytes
  return b
}

function maxBallot(a: Ballot, b: Ballot): Ballot {
  return compareBallots(a, b) >= 0 ? a : b
}

export class PaxosCore {
  private readonly cfg: CoreConfig
  private readonly id: ReplicaId
  private readonly n: number
  private readonly q: number
  private readonly rng: Rng
  private now: number
  private tickCount = 0
  private out: Output = emptyOutput()

  // Identity.
  private incarnation: number
  private readonly incs: number[]
  /** A frozen copy of incs, shared by outgoing messages until incs changes. */
  private vec: readonly number[] = []
  private voting: boolean
  private role: Role
  private join: JoinState | null = null
  /** Learner: the slot it must know chosen before it may vote. */
  private floorSlot = -1

  // Acceptor.
  private promised: Ballot
  private readonly accepted = new Map<number, AcceptedSlot>()

  // Learner / applied state.
  private commitSlot: number
  private nextPosition: number
  private lastTs: number
  /** Mutable in memory; snapshotted into a SessionUpdate once per client per slot. */
  private readonly sessions: Map<string, { seqs: SessionSeq[]; lastSlot: number }>
  private readonly trims: Map<string, number>
  private readonly recent = new Map<number, ChosenRecord>()
  /** Values known chosen but not yet applied (a gap before them). */
  private readonly pendingChosen = new Map<number, SlotValue>()
  /** Highest commit index heard of. */
  private knownCommit: number
  private catchupSentTick = -Infinity
  private catchupAwaited = false
  /** The commit index each peer last told us (messages that carry one); -1 unknown. */
  private readonly peerCommit: number[]
  /** Round-robin cursor for catch-up when no peer is known to be ahead. */
  private catchupCursor = 0

  // Leadership.
  private maxRoundSeen: number
  private ballot: Ballot = ZERO_BALLOT
  private leader: ReplicaId | null = null
  private leaderBallot: Ballot = ZERO_BALLOT
  private electionElapsed = 0
  private electionTimeout: number
  private heartbeatElapsed = 0
  private readonly promises = new Map<ReplicaId, PromiseInfo>()
  private recovering = false
  private recoveryCommitTarget = 0
  /** The leader answers reads only once its recovered slots are chosen: commitSlot >= readyAt. */
  private readyAt = Infinity
  private nextSlot = 0
  private readonly inflight = new Map<number, InflightSlot>()
  private queue: QueuedOp[] = []
  private queueHead = 0
  private queueBytes = 0
  private readonly lastAckTick: number[]
  private readQueue: RequestId[] = []
  private readRound: ReadRound | null = null
  private readCounter = 0

  constructor(config: CoreConfig, persisted: PersistedState | null, rng: Rng, now: number) {
    this.cfg = config
    this.conflicts = new ConflictTable(config.conflictKeysMax)
    this.id = config.id
    this.n = config.replicas
    this.q = quorum(config.replicas)
    this.rng = rng
    this.now = now
    this.lastAckTick = new Array<number>(this.n).fill(0)
    this.peerCommit = new Array<number>(this.n).fill(-1)
    this.electionTimeout = this.randomElectionTimeout()
    if (persisted === null) {
      this.incarnation = 0
      this.incs = new Array<number>(this.n).fill(0)
      this.voting = false
      this.promised = ZERO_BALLOT
      this.commitSlot = 0
      this.nextPosition = 0
      this.lastTs = 0
      this.sessions = new Map()
      this.trims = new Map()
    } else {
      assert(persisted.incarnations.length === this.n, 'persisted incarnation vector has the wrong size')
      this.incarnation = persisted.incarnation
      this.incs = [...persisted.incarnations]
      this.voting = persisted.voting
      this.promised = persisted.promised
      const a = persisted.applied
      this.commitSlot = a.commitSlot
      this.nextPosition = a.nextPosition
      this.lastTs = a.lastTs
      this.sessions = new Map()
      for (const [k, v] of a.sessions) this.sessions.set(k, { seqs: v.seqs.map((x) => ({ ...x })), lastSlot: v.lastSlot })
      this.trims = new Map(a.trims)
      for (const r of persisted.accepted) if (r.slot >= this.commitSlot) this.accepted.set(r.slot, { ballot: r.ballot, value: r.value })
      for (const r of persisted.recentChosen) this.rememberRecent(r)
    }
    this.vec = Object.freeze([...this.incs])
    this.knownCommit = this.commitSlot
    this.nextSlot = this.commitSlot
    this.maxRoundSeen = this.promised.round
    if (this.voting) {
      this.role = 'follower'
    } else {
      // Never voted under this disk (or did not finish rejoining): (re)join.
      this.role = 'joining'
      this.join = { attempt: 1, infos: new Map(), announced: 0, acks: new Map(), elapsed: this.cfg.joinRetryTicks }
    }
  }

  // ------------------------------------------------------------------ public API

  tick(now: number): Output {
    this.begin(now)
    this.tickCount++
    switch (this.role) {
      case 'joining':
        this.tickJoin()
        break
      case 'learner':
        this.maybeCatchUp()
        break
      case 'follower':
      case 'candidate':
        this.electionElapsed++
        if (this.electionElapsed >= this.electionTimeout) this.startElection()
        else if (this.role === 'candidate' && this.electionElapsed % this.cfg.heartbeatTicks === 0) this.sendPrepares(true)
        this.maybeCatchUp()
        break
      case 'leader':
        this.tickLeader()
        break
    }
    return this.end()
  }

  step(msg: Message): Output {
    this.begin(this.now)
    const bad = validateMessage(msg, this.n, this.id)
    if (bad !== null) {
      const type = typeof msg === 'object' && msg !== null ? String((msg as { type?: unknown }).type) : typeof msg
      this.ignore(`malformed ${type} message: ${bad}`)
      return this.end()
    }
    if (!this.admit(msg)) return this.end()
    if ('commitSlot' in msg && msg.commitSlot > this.peerCommit[msg.from]!) this.peerCommit[msg.from] = msg.commitSlot
    switch (msg.type) {
      case 'prepare':
        this.onPrepare(msg)
        break
      case 'promise':
        this.onPromise(msg)
        break
      case 'accept':
        this.onAccept(msg)
        break
      case 'accepted':
        this.onAccepted(msg)
        break
      case 'nack':
        this.onNack(msg)
        break
      case 'heartbeat':
        this.onHeartbeat(msg)
        break
      case 'heartbeatAck':
        this.onHeartbeatAck(msg)
        break
      case 'catchupRequest':
        this.onCatchupRequest(msg)
        break
      case 'catchupReply':
        this.onCatchupReply(msg)
        break
      case 'joinProbe':
        this.send({ type: 'joinInfo', to: msg.from, attempt: msg.attempt, knownIncarnation: this.incs[msg.from]!, promised: this.promised, maxSlot: this.maxSlot(), commitSlot: this.commitSlot })
        break
      case 'joinInfo':
        this.onJoinInfo(msg)
        break
      case 'join':
        this.onJoin(msg)
        break
      case 'joinAck':
        this.onJoinAck(msg)
        break
    }
    return this.end()
  }

  propose(requestId: RequestId, op: Op): Output {
    this.begin(this.now)
    this.enqueue(requestId, op)
    this.fillPipeline()
    return this.end()
  }

  /** Propose many ops in one call (one Output): what a driver does with a burst of requests. */
  proposeBatch(items: readonly { readonly requestId: RequestId; readonly op: Op }[]): Output {
    this.begin(this.now)
    for (const it of items) this.enqueue(it.requestId, it.op)
    this.fillPipeline()
    return this.end()
  }

  readIndex(requestId: RequestId): Output {
    this.begin(this.now)
    if (this.role !== 'leader') {
      this.out.reads.push({ requestId, ok: false, code: 'not_leader', leader: this.leader })
    } else if (this.readQueue.length >= this.cfg.readQueueMax) {
      this.out.reads.push({ requestId, ok: false, code: 'overloaded', leader: this.id })
    } else {
      this.readQueue.push(requestId)
      this.maybeStartReadRound()
    }
    return this.end()
  }

  serveCatchup(to: ReplicaId, records: readonly ChosenRecord[]): Output {
    this.begin(this.now)
    this.send({ type: 'catchupReply', to, records: [...records], commitSlot: this.commitSlot })
    return this.end()
  }

  /**
   * A catch-up request the driver sends on its own, to refetch chosen records that
   * its storage found corrupt (slots below commitSlot, which the core never asks for).
   */
  repairRequest(to: ReplicaId, fromSlot: number, toSlot: number): Message {
    return { type: 'catchupRequest', from: this.id, to, inc: this.incarnation, vec: this.vec, fromSlot, toSlot }
  }

  status(): CoreStatus {
    return {
      id: this.id,
      role: this.role,
      voting: this.voting,
      incarnation: this.incarnation,
      ballot: this.role === 'leader' || this.role === 'candidate' ? this.ballot : this.leaderBallot,
      promised: this.promised,
      leader: this.leader,
      commitSlot: this.commitSlot,
      nextPosition: this.nextPosition,
      lastTs: this.lastTs,
      inflight: this.inflight.size,
      queued: this.queue.length - this.queueHead,
    }
  }

  get applied(): AppliedState {
    return {
      commitSlot: this.commitSlot,
      nextPosition: this.nextPosition,
      lastTs: this.lastTs,
      sessions: this.sessions,
      trims: this.trims,
    }
  }

  /** The chosen record of a slot if it is still in memory. */
  recentRecord(slot: number): ChosenRecord | undefined {
    return this.recent.get(slot)
  }

  /** Slots and payload bytes of the chosen records kept in memory (recentChosenMax, recentChosenBytesMax). */
  recentSize(): { slots: number; bytes: number } {
    return { slots: this.recent.size, bytes: this.recentBytes }
  }

  /**
   * Keeps a chosen record and forgets the oldest kept past either bound (the newest always
   * stays). Each record's size is computed once, when kept.
   */
  private rememberRecent(r: ChosenRecord): void {
    const had = this.recentSizes.get(r.slot)
    if (had !== undefined) this.recentBytes -= had // (not expected: a slot is applied once)
    else this.recentOrder.push(r.slot)
    const size = valueBytes(r.value)
    this.recent.set(r.slot, r)
    this.recentSizes.set(r.slot, size)
    this.recentBytes += size
    // Oldest first, in the order kept (not assuming the slots are contiguous).
    while (this.recent.size > 1 && (this.recent.size > this.cfg.recentChosenMax || this.recentBytes > this.cfg.recentChosenBytesMax)) {
      const slot = this.recentOrder[this.recentOrderHead++]!
      const old = this.recentSizes.get(slot)
      if (old === undefined) continue
      this.recent.delete(slot)
      this.recentSizes.delete(slot)
      this.recentBytes -= old
    }
    if (this.recentOrderHead > 1024 && this.recentOrderHead * 2 > this.recentOrder.length) {
      this.recentOrder = this.recentOrder.slice(this.recentOrderHead)
      this.recentOrderHead = 0
    }
  }

  /** Payload bytes of the records in `recent` (valueBytes: data and stream names), in all and by slot. */
  private recentBytes = 0
  private readonly recentSizes = new Map<number, number>()
  /** The slots of `recent` in the order kept, oldest first from recentOrderHead. */
  private recentOrder: number[] = []
  private recentOrderHead = 0

  // ------------------------------------------------------------------ plumbing

  private begin(now: number): void {
    if (now > this.now) this.now = now
    this.out = emptyOutput()
  }

  private end(): Output {
    if (this.commitAdvanced) {
      // Followers learn new commits at once (their reads and subscriptions wait on it),
      // not at the next heartbeat. Accepts sent after the advance already carry it (the
      // busy case); only when none did does a heartbeat go out, one per Output at most.
      this.commitAdvanced = false
      if (this.role === 'leader' && this.commitSlot > this.lastCommitSent) this.sendHeartbeats()
    }
    const o = this.out
    this.out = emptyOutput()
    if (this.selfAcksOpen.length > 0 && this.selfAcksOpen[this.selfAcksOpen.length - 1]!.token === 0) {
      // Slots proposed in this call wait for this Output's writes to be persisted.
      o.persistToken = ++this.persistCounter
      for (const p of this.selfAcksOpen) if (p.token === 0) p.token = o.persistToken
    }
    return o
  }

  /** The leader's commit index moved during this input: notify followers in end(). */
  private commitAdvanced = false
  /** The highest commit index this leader's broadcasts (accepts, heartbeats) carried. */
  private lastCommitSent = 0

  /** earlyAccepts: own accepts written by Outputs up to `token`, not yet counted. */
  private readonly selfAcksOpen: { slot: number; ballot: Ballot; token: number }[] = []
  private persistCounter = 0

  /**
   * The driver made the writes of the Output that carried `token` (and all before it)
   * durable: the leader's own accepts in them now count as votes.
   */
  persisted(token: number): Output {
    this.begin(this.now)
    let i = 0
    while (i < this.selfAcksOpen.length && this.selfAcksOpen[i]!.token !== 0 && this.selfAcksOpen[i]!.token <= token) i++
    const done = this.selfAcksOpen.splice(0, i)
    for (const p of done) {
      const s = this.inflight.get(p.slot)
      if (this.role !== 'leader' || s === undefined || compareBallots(p.ballot, this.ballot) !== 0) continue
      s.acks.set(this.id, this.incarnation)
      this.maybeChosen(p.slot)
    }
    return this.end()
  }

  private ignore(reason: string): void {
    this.out.ignored.push(`replica ${this.id}: ${reason}`)
  }

  private write(w: Write): void {
    this.out.writes.push(w)
  }

  // Messages are built without from/inc/vec; send() stamps them.
  private send(m: DistributiveOmit<Message, 'from' | 'inc' | 'vec'>): void {
    this.out.messages.push({ ...m, from: this.id, inc: this.incarnation, vec: this.vec } as Message)
  }

  private broadcast(make: (to: ReplicaId) => DistributiveOmit<Message, 'from' | 'inc' | 'vec' | 'to'> | null): void {
    for (let r = 0; r < this.n; r++) {
      if (r === this.id) continue
      const m = make(r)
      if (m !== null) this.out.messages.push({ ...m, to: r, from: this.id, inc: this.incarnation, vec: this.vec } as Message)
    }
  }

  private randomElectionTimeout(): number {
    const t = this.cfg.electionTimeoutTicks
    return this.rng.int(t, 2 * t)
  }

  private setPromised(b: Ballot): void {
    if (compareBallots(b, this.promised) > 0) {
      this.promised = b
      this.write({ kind: 'promise', ballot: b })
    }
    if (b.round > this.maxRoundSeen) this.maxRoundSeen = b.round
  }

  private writeIdentity(): void {
    this.write({ kind: 'identity', incarnation: this.incarnation, incarnations: [...this.incs], voting: this.voting })
  }

  /** Incarnation bookkeeping common to all messages. Returns false to drop the message. */
  private admit(msg: Message): boolean {
    // Join traffic carries no votes, and a joiner still speaks under its old
    // incarnation until a quorum has acknowledged the new one: let it through.
    const joinTraffic = msg.type === 'joinProbe' || msg.type === 'join' || msg.type === 'joinInfo' || msg.type === 'joinAck'
    const known = this.incs[msg.from]!
    if (msg.inc < known && !joinTraffic) {
      this.ignore(`${msg.type} from replica ${msg.from} incarnation ${msg.inc}, which is older than ${known}`)
      return false
    }
    if (msg.inc > known) this.raiseIncarnation(msg.from, msg.inc)
    for (let r = 0; r < this.n; r++) {
      if (r === this.id) continue
      const v = msg.vec[r]!
      if (v > this.incs[r]!) this.raiseIncarnation(r, v)
    }
    if (msg.vec[this.id]! > this.incarnation && this.role !== 'joining' && !joinTraffic) {
      this.ignore(`replica ${msg.from} knows a newer incarnation of this replica (${msg.vec[this.id]}) than ${this.incarnation}`)
      return false
    }
    return true
  }

  /** A replica came back under a new incarnation: votes of its former self no longer count. */
  private raiseIncarnation(r: ReplicaId, inc: number): void {
    this.incs[r] = inc
    this.vec = Object.freeze([...this.incs])
    const p = this.promises.get(r)
    if (p !== undefined && p.inc < inc) this.promises.delete(r)
    for (const s of this.inflight.values()) {
      const a = s.acks.get(r)
      if (a !== undefined && a < inc) s.acks.delete(r)
    }
    this.readRound?.acks.delete(r)
  }

  // ------------------------------------------------------------------ joining

  private tickJoin(): void {
    const j = this.join
    assert(j !== null, 'joining without join state')
    if (this.n === 1) {
      // A single-node log has no one to ask and nothing to have forgotten.
      this.incarnation = this.incarnation + 1
      this.incs[this.id] = this.incarnation
      this.vec = Object.freeze([...this.incs])
      this.join = null
      this.voting = true
      this.role = 'follower'
      this.writeIdentity()
      return
    }
    j.elapsed++
    if (j.elapsed < this.cfg.joinRetryTicks) return
    j.elapsed = 0
    if (j.announced === 0) {
      this.broadcast(() => ({ type: 'joinProbe', attempt: j.attempt }))
    } else {
      const announced = j.announced
      this.broadcast((r) => (j.acks.has(r) ? null : { type: 'join', incarnation: announced }))
    }
  }

  private onJoinInfo(msg: Extract<Message, { type: 'joinInfo' }>): void {
    const j = this.join
    if (this.role !== 'joining' || j === null || j.announced !== 0 || msg.attempt !== j.attempt) {
      this.ignore(`joinInfo from ${msg.from} not awaited`)
      return
    }
    j.infos.set(msg.from, { knownIncarnation: msg.knownIncarnation })
    if (j.infos.size < this.q) return
    // A quorum of others answered: the new incarnation is above anything they know.
    let maxKnown = this.incarnation
    for (const i of j.infos.values()) maxKnown = Math.max(maxKnown, i.knownIncarnation)
    j.announced = maxKnown + 1
    j.elapsed = 0
    const announced = j.announced
    this.broadcast(() => ({ type: 'join', incarnation: announced }))
  }

  private onJoin(msg: Extract<Message, { type: 'join' }>): void {
    if (msg.incarnation < this.incs[msg.from]!) {
      this.ignore(`join of ${msg.from} at incarnation ${msg.incarnation} below known ${this.incs[msg.from]}`)
      return
    }
    if (msg.incarnation > this.incs[msg.from]!) this.raiseIncarnation(msg.from, msg.incarnation)
    // Persist what we now know of the joiner before acknowledging (the ack is a promise
    // to discard its former self's votes from now on, even across our own restart).
    this.writeIdentity()
    if (this.leader === msg.from) this.leader = null
    this.send({ type: 'joinAck', to: msg.from, incarnation: msg.incarnation, promised: this.promised, maxSlot: this.maxSlot(), commitSlot: this.commitSlot })
  }

  private onJoinAck(msg: Extract<Message, { type: 'joinAck' }>): void {
    const j = this.join
    if (this.role !== 'joining' || j === null || j.announced === 0 || msg.incarnation !== j.announced) {
      this.ignore(`joinAck from ${msg.from} not awaited`)
      return
    }
    j.acks.set(msg.from, { promised: msg.promised, maxSlot: msg.maxSlot, commitSlot: msg.commitSlot })
    if (j.acks.size < this.q) return
    // A quorum of others persisted our new incarnation.
    let promised = this.promised
    let floor = -1
    for (const a of j.acks.values()) {
      promised = maxBallot(promised, a.promised)
      floor = Math.max(floor, a.maxSlot, a.commitSlot - 1)
    }
    this.incarnation = j.announced
    this.incs[this.id] = j.announced
    this.vec = Object.freeze([...this.incs])
    this.join = null
    this.setPromised(promised)
    this.floorSlot = floor
    this.knownCommit = Math.max(this.knownCommit, floor + 1)
    this.role = 'learner'
    this.writeIdentity()
    this.maybeBecomeVoter()
    if (this.role === 'learner') this.maybeCatchUp()
  }

  private maybeBecomeVoter(): void {
    if (this.role !== 'learner' || this.commitSlot <= this.floorSlot) return
    this.voting = true
    this.role = 'follower'
    this.electionElapsed = 0
    this.electionTimeout = this.randomElectionTimeout()
    this.writeIdentity()
  }

  // ------------------------------------------------------------------ elections

  private startElection(): void {
    this.stepDownCleanup('election started')
    this.role = 'candidate'
    this.leader = null
    this.ballot = { round: this.maxRoundSeen + 1, replica: this.id }
    this.setPromised(this.ballot)
    this.promises.clear()
    this.promises.set(this.id, { inc: this.incarnation, commitSlot: this.commitSlot, accepted: this.acceptedFrom(this.commitSlot) })
    this.electionElapsed = 0
    this.electionTimeout = this.randomElectionTimeout()
    this.sendPrepares(false)
    this.maybeWinElection()
  }

  private sendPrepares(onlyMissing: boolean): void {
    const b = this.ballot
    const from = this.commitSlot
    this.broadcast((r) => (onlyMissing && this.promises.has(r) ? null : { type: 'prepare', ballot: b, fromSlot: from }))
  }

  private acceptedFrom(slot: number): { slot: number; ballot: Ballot; value: SlotValue }[] {
    const list: { slot: number; ballot: Ballot; value: SlotValue }[] = []
    for (const [s, a] of this.accepted) if (s >= slot) list.push({ slot: s, ballot: a.ballot, value: a.value })
    return list.sort((x, y) => x.slot - y.slot)
  }

  private onPrepare(msg: Extract<Message, { type: 'prepare' }>): void {
    if (!this.voting) {
      this.ignore(`prepare from ${msg.from}: not voting yet (${this.role})`)
      return
    }
    if (msg.ballot.round > this.maxRoundSeen) this.maxRoundSeen = msg.ballot.round
    // Leader stickiness: while a live leader is heard from, a prepare from someone else
    // is a disruption (a replica returning from a partition), not a failover.
    const sticky =
      (this.role === 'leader' && msg.from !== this.id) ||
      (this.role === 'follower' && this.leader !== null && this.leader !== msg.from && this.electionElapsed < this.cfg.electionTimeoutTicks)
    if (sticky) {
      this.ignore(`prepare ${ballotString(msg.ballot)} from ${msg.from}: leader ${String(this.leader)} is alive`)
      return
    }
    if (compareBallots(msg.ballot, this.promised) < 0) {
      this.send({ type: 'nack', to: msg.from, ballot: msg.ballot, promised: this.promised })
      return
    }
    if ((this.role === 'candidate' || this.role === 'leader') && compareBallots(msg.ballot, this.ballot) > 0) {
      this.becomeFollower(null)
    }
    this.setPromised(msg.ballot)
    this.electionElapsed = 0
    const chosen: ChosenRecord[] = []
    let bytes = 0
    for (let s = msg.fromSlot; s < this.commitSlot && chosen.length < this.cfg.catchupSlotsMax && bytes < this.cfg.catchupBytesMax; s++) {
      const r = this.recent.get(s)
      if (r === undefined) break
      chosen.push(r)
      bytes += valueBytes(r.value)
    }
    this.send({
      type: 'promise',
      to: msg.from,
      ballot: msg.ballot,
      commitSlot: this.commitSlot,
      accepted: this.acceptedFrom(Math.max(msg.fromSlot, this.commitSlot)),
      chosen,
    })
  }

  private onPromise(msg: Extract<Message, { type: 'promise' }>): void {
    if (this.role !== 'candidate' || compareBallots(msg.ballot, this.ballot) !== 0) {
      this.ignore(`promise ${ballotString(msg.ballot)} from ${msg.from}: not a candidate for it`)
      return
    }
    this.lastAckTick[msg.from] = this.tickCount
    for (const r of msg.chosen) this.learnChosen(r.slot, r.value)
    this.applyContiguous()
    this.promises.set(msg.from, { inc: msg.inc, commitSlot: msg.commitSlot, accepted: msg.accepted })
    this.knownCommit = Math.max(this.knownCommit, msg.commitSlot)
    this.maybeWinElection()
  }

  private maybeWinElection(): void {
    if (this.role !== 'candidate' || this.promises.size < this.q) return
    this.role = 'leader'
    this.leader = this.id
    this.leaderBallot = this.ballot
    this.heartbeatElapsed = 0
    this.lastAckTick.fill(this.tickCount)
    let maxCommit = this.commitSlot
    for (const p of this.promises.values()) maxCommit = Math.max(maxCommit, p.commitSlot)
    this.recoveryCommitTarget = maxCommit
    this.recovering = true
    this.recoveryProgressTick = this.tickCount
    this.readyAt = Infinity
    this.sendHeartbeats()
    this.continueRecovery()
  }

  /**
   * Phase 1 done. Before proposing, the leader must know every value chosen below the
   * highest commit index of its promisers (those may have been trimmed from the accept
   * lists), then re-proposes, for each open slot, the value accepted under the highest
   * ballot, or a no-op where no promiser accepted anything.
   */
  private continueRecovery(): void {
    if (!this.recovering) return
    if (this.commitSlot < this.recoveryCommitTarget) {
      this.maybeCatchUp()
      return
    }
    this.recovering = false
    let maxSlot = this.commitSlot - 1
    const best = new Map<number, AcceptedSlot>()
    for (const p of this.promises.values()) {
      for (const a of p.accepted) {
        if (a.slot < this.commitSlot) continue
        maxSlot = Math.max(maxSlot, a.slot)
        const cur = best.get(a.slot)
        if (cur === undefined || compareBallots(a.ballot, cur.ballot) > 0) best.set(a.slot, { ballot: a.ballot, value: a.value })
      }
    }
    for (const s of this.pendingChosen.keys()) maxSlot = Math.max(maxSlot, s)
    this.promises.clear()
    // New proposals go after every recovered slot (set first: proposing may choose).
    const from = this.commitSlot
    this.nextSlot = Math.max(this.commitSlot, maxSlot + 1)
    this.readyAt = this.nextSlot
    this.filling = true
    try {
      for (let s = from; s <= maxSlot; s++) {
        if (s < this.commitSlot) continue
        const known = this.pendingChosen.get(s)
        const value = known ?? best.get(s)?.value ?? { ts: this.now, ops: [] }
        this.proposeSlot(s, value, [])
      }
    } finally {
      this.filling = false
    }
    this.fillPipeline()
    this.maybeConflictReady()
    this.maybeStartReadRound()
  }

  private onNack(msg: Extract<Message, { type: 'nack' }>): void {
    if (msg.promised.round > this.maxRoundSeen) this.maxRoundSeen = msg.promised.round
    if ((this.role === 'candidate' || this.role === 'leader') && compareBallots(msg.ballot, this.ballot) === 0 && compareBallots(msg.promised, this.ballot) > 0) {
      this.becomeFollower(null)
    } else {
      this.ignore(`nack ${ballotString(msg.ballot)} from ${msg.from}: stale`)
    }
  }

  /** Leave candidate/leader: waiters fail with not_leader (a retry is exactly-once). */
  private becomeFollower(leader: ReplicaId | null): void {
    this.stepDownCleanup(leader === null ? 'stepped down' : `replica ${leader} leads`)
    this.role = this.voting ? 'follower' : this.role === 'joining' ? 'joining' : 'learner'
    this.leader = leader
    this.electionElapsed = 0
    this.electionTimeout = this.randomElectionTimeout()
  }

  private stepDownCleanup(why: string): void {
    const wasLeader = this.role === 'leader'
    this.promises.clear()
    this.recovering = false
    this.readyAt = Infinity
    if (!wasLeader) return
    const leader = this.leader === this.id ? null : this.leader
    const fail = (requestId: RequestId): void => {
      if (requestId >= 0) this.out.results.push({ requestId, ok: false, code: 'not_leader', message: `not the leader (${why})`, leader })
    }
    for (const s of this.inflight.values()) for (const r of s.requests) fail(r)
    this.inflight.clear()
    for (const h of this.heldConditional) fail(h.requestId)
    this.heldConditional = []
    this.conflictReady = false
    this.conflictTracking = false
    this.armBarrier = null
    this.conflicts.clear()
    this.releasing.clear()
    // Tokens of Outputs already returned stay meaningful; their slots are simply gone.
    for (let i = this.queueHead; i < this.queue.length; i++) fail(this.queue[i]!.requestId)
    this.queue = []
    this.queueHead = 0
    this.queueBytes = 0
    for (const r of this.readQueue) this.out.reads.push({ requestId: r, ok: false, code: 'not_leader', leader })
    if (this.readRound) for (const r of this.readRound.requests) this.out.reads.push({ requestId: r, ok: false, code: 'not_leader', leader })
    this.readQueue = []
    this.readRound = null
    if (this.leader === this.id) this.leader = null
  }

  // ------------------------------------------------------------------ leader

  private tickLeader(): void {
    // Check quorum: a leader that has not heard from a majority within an election
    // timeout steps down, so an isolated leader stops taking requests.
    let live = 1
    for (let r = 0; r < this.n; r++) {
      if (r !== this.id && this.tickCount - this.lastAckTick[r]! <= this.cfg.electionTimeoutTicks) live++
    }
    if (live < this.q) {
      this.becomeFollower(null)
      return
    }
    this.maybeDisarmConflicts()
    this.heartbeatElapsed++
    if (this.heartbeatElapsed >= this.cfg.heartbeatTicks) {
      this.heartbeatElapsed = 0
      this.sendHeartbeats()
      // Retransmit accepts that are not chosen yet (lost messages).
      for (const [slot, s] of this.inflight) {
        if (this.tickCount - s.sentTick < this.cfg.heartbeatTicks) continue
        s.sentTick = this.tickCount
        this.broadcast((r) => (s.acks.has(r) ? null : { type: 'accept', ballot: this.ballot, slot, value: s.value, commitSlot: this.commitSlot }))
      }
    }
    if (this.recovering) {
      // The commit index a promiser reported may be unreachable: it may have lost its
      // disk, and no one else may know those slots as chosen. Stuck that long, run
      // phase 1 again with a higher ballot: a new quorum's accepted values reveal them.
      if (this.tickCount - this.recoveryProgressTick > 2 * this.cfg.electionTimeoutTicks) {
        this.ignore(`recovery stuck below slot ${this.recoveryCommitTarget} at ${this.commitSlot}: new election`)
        this.startElection()
        return
      }
      this.maybeCatchUp()
    }
  }

  /** Tick of the last progress of this leader's recovery (start, or a slot learned). */
  private recoveryProgressTick = 0

  private sendHeartbeats(): void {
    const readId = this.readRound?.id ?? 0
    const b = this.ballot
    const c = this.commitSlot
    this.lastCommitSent = c
    this.broadcast(() => ({ type: 'heartbeat', ballot: b, commitSlot: c, readId }))
  }

  /** A proposal refused before it was queued. (A method, not a closure: enqueue is hot.) */
  private refuse(requestId: RequestId, code: ProposalErrorCode, message: string): void {
    this.out.results.push({ requestId, ok: false, code, message, leader: this.role === 'leader' ? this.id : this.leader })
  }

  private enqueue(requestId: RequestId, op: Op): void {
    if (this.role !== 'leader') {
      this.refuse(requestId, 'not_leader', this.leader === null ? 'no leader is known' : `replica ${this.leader} leads`)
      return
    }
    const size = opSize(op)
    if (op.kind === 'append') {
      if (op.entries.length === 0) return this.refuse(requestId, 'bad_request', 'an append needs at least one entry')
      for (const e of op.entries) {
        if (e.data.length > this.cfg.entryBytesMax) return this.refuse(requestId, 'too_large', `entry of ${e.data.length} bytes exceeds entryBytesMax ${this.cfg.entryBytesMax}`)
        if (e.streams.length === 0) return this.refuse(requestId, 'bad_request', 'an entry needs at least one stream')
      }
      if (size.entries > this.cfg.batchEntriesMax) return this.refuse(requestId, 'too_large', `${size.entries} entries exceed batchEntriesMax ${this.cfg.batchEntriesMax}`)
      if (size.bytes > this.cfg.batchBytesMax) return this.refuse(requestId, 'too_large', `${size.bytes} bytes exceed batchBytesMax ${this.cfg.batchBytesMax}`)
      const dup = this.lookupSession(op)
      if (dup !== null) {
        if (dup.kind === 'rejected') return this.refuse(requestId, 'sequence_too_old', `sequence ${String(op.seq)} of ${String(op.clientId)} is older than the exactly-once window`)
        this.out.results.push(dupResult(requestId, dup, op.entries.length, -1, this.lastTs))
        return
      }
    }
    if (this.queue.length - this.queueHead + this.heldConditional.length >= this.cfg.queueOpsMax || this.queueBytes + size.bytes > this.cfg.queueBytesMax) {
      return this.refuse(requestId, 'overloaded', `leader queue is full (${this.queue.length - this.queueHead} ops, ${this.queueBytes} bytes)`)
    }
    if (op.kind === 'append' && hasEntryReads(op)) {
      if (op.reads != null && op.reads.length > 0) return this.refuse(requestId, 'bad_request', 'reads go on the append or on its entries, not both')
      for (const e of op.entries) {
        if (e.reads != null && e.reads.length > this.cfg.conditionReadsMax) return this.refuse(requestId, 'bad_request', `${e.reads.length} reads of one entry exceed conditionReadsMax ${this.cfg.conditionReadsMax}`)
      }
      this.lastConditionalAt = this.now
      if (!this.conflictReady) return this.holdConditional(requestId, op)
      return this.enqueueEach(requestId, op)
    }
    if (op.kind === 'append' && op.reads != null && op.reads.length > 0) {
      if (op.reads.length > this.cfg.conditionReadsMax) return this.refuse(requestId, 'bad_request', `${op.reads.length} reads exceed conditionReadsMax ${this.cfg.conditionReadsMax}`)
      this.lastConditionalAt = this.now
      if (!this.conflictReady) return this.holdConditional(requestId, op)
      const conflict = this.conflicts.check(op.reads)
      if (conflict !== null) {
        this.out.results.push({
          requestId,
          ok: false,
          code: 'conflict',
          message: `${conflict.stream}/${conflict.key} was written ${conflict.position >= 0 ? `at position ${conflict.position}` : conflict.watermark !== undefined ? `at or before ${conflict.watermark} (not remembered)` : 'by a write not chosen yet'}, after the version read (${conflict.version})`,
          leader: this.id,
          conflict,
        })
        return
      }
    }
    // The keys and the reads of an append matter only here, to the sequencer: the value
    // replicated and stored is the append without them.
    let keys = NO_KEYS
    let bare: Entry[] | null = null
    if (op.kind === 'append') {
      for (let i = 0; i < op.entries.length; i++) {
        const e = op.entries[i]!
        if (e.keys == null) continue
        bare ??= op.entries.slice()
        const b: Entry = { streams: e.streams, data: e.data }
        bare[i] = b
        // Counted only while conditional appends are in use (see armConflicts).
        if (e.keys.length === 0 || !this.conflictTracking) continue
        if (keys === NO_KEYS) keys = []
        this.conflicts.holdEntry(e, keys as ConflictRecord[], b)
      }
    }
    let proposed: Op = op
    if (op.kind === 'append' && (op.reads != null || bare !== null)) {
      const { reads: _checked, ...rest } = op
      proposed = bare === null ? rest : { ...rest, entries: bare }
      if (keys !== NO_KEYS) this.conflicts.markHeld(proposed)
    }
    this.queue.push({ requestId, op: proposed, entries: size.entries, bytes: size.bytes, keys })
    this.queueBytes += size.bytes
  }

  /**
   * An append whose entries carry their own reads: each entry is checked on its own, after
   * the entries before it (whose writes count as pending), and a refused entry is dropped.
   * What is left is proposed with the refusals attached; if nothing is left, the answer is
   * immediate and nothing enters the log (nor the session: a retry is checked again, and
   * a write only ever makes a read older).
   */
  private enqueueEach(requestId: RequestId, op: AppendOp): void {
    const kept: Entry[] = []
    let refused: RefusedEntry[] | null = null
    let keys: ConflictRecord[] | null = null
    let bytes = 0
    const found: (ConflictRecord | undefined)[] = []
    for (let i = 0; i < op.entries.length; i++) {
      const e = op.entries[i]!
      const reads = e.reads != null && e.reads.length > 0 ? e.reads : undefined
      if (reads !== undefined) {
        found.length = 0
        const conflict = this.conflicts.check(reads, found)
        if (conflict !== null) {
          ;(refused ??= []).push({ index: i, conflict })
          continue
        }
      }
      const k: Entry = e.reads === undefined && e.keys === undefined ? e : { streams: e.streams, data: e.data }
      // Counted at once: a later entry of this op that read one of these keys conflicts with it.
      if (e.keys != null && e.keys.length > 0) this.conflicts.holdEntry(e, (keys ??= []), k, reads, found)
      kept.push(k)
      bytes += e.data.length
      for (const st of e.streams) bytes += st.length
    }
    if (kept.length === 0) {
      this.out.results.push({ requestId, ok: true, outcome: NEW, firstPosition: -1, count: 0, slot: -1, ts: this.lastTs, refused: refused! })
      return
    }
    const base: AppendOp = op.clientId != null && op.seq != null ? { kind: 'append', clientId: op.clientId, seq: op.seq, entries: kept } : { kind: 'append', entries: kept }
    const proposed: AppendOp = refused === null ? base : { ...base, refused }
    if (keys !== null) this.conflicts.markHeld(proposed)
    this.queue.push({ requestId, op: proposed, entries: kept.length, bytes, keys: keys ?? NO_KEYS })
    this.queueBytes += bytes
  }

  /** The leader has applied everything chosen before its term: conditional appends can be checked. */
  private maybeConflictReady(): void {
    if (this.role !== 'leader' || this.conflictReady || !this.conflictTracking || this.commitSlot < this.readyAt || this.commitSlot < this.armReadyAt) return
    this.conflictReady = true
    // Writes before this point are unknown to this leader: reads older than the tail conflict.
    this.conflicts.restart(this.nextPosition - 1)
    const held = this.heldConditional
    this.heldConditional = []
    for (const h of held) this.enqueue(h.requestId, h.op)
    this.fillPipeline()
  }

  /**
   * A conditional append that the table cannot answer yet: held (bounded like the queue,
   * see enqueue) until everything chosen before this term, and every keyed write queued
   * before tracking began, is applied here.
   */
  private holdConditional(requestId: RequestId, op: Op): void {
    this.heldConditional.push({ requestId, op })
    if (!this.conflictTracking) this.armConflicts()
    this.maybeConflictReady()
  }

  /**
   * Conditional appends are in use: from now on keyed writes are counted in the table.
   * Those queued or in flight before were not, so the table answers only once they are
   * all applied, and then starts with the watermark at the tail (maybeConflictReady): a
   * read older than that conflicts unless its key was written, and counted, since.
   */
  private armConflicts(): void {
    this.conflictTracking = true
    if (this.queueHead < this.queue.length) {
      // Known once the last op queued so far is cut into a slot (fillPipelineOnce).
      this.armBarrier = this.queue[this.queue.length - 1]!
      this.armReadyAt = Infinity
    } else {
      this.armBarrier = null
      this.armReadyAt = this.nextSlot
    }
  }

  /**
   * No conditional append for conflictIdleMs: keyed writes stop paying for the table.
   * Records of writes still pending stay until released; the next conditional append
   * arms the table again.
   */
  private maybeDisarmConflicts(): void {
    if (!this.conflictTracking || this.heldConditional.length > 0 || this.now - this.lastConditionalAt < this.cfg.conflictIdleMs) return
    this.conflictTracking = false
    this.conflictReady = false
    this.armBarrier = null
    this.conflicts.restart(-1)
  }

  /** Record the writes of an applied append (leader only, once conflictReady). */
  private recordWrites(op: AppendOp, first: number): void {
    this.conflicts.recordOp(op, first)
  }

  /** Cut batches from the queue into new slots while the pipeline window has room. */
  private fillPipeline(): void {
    if (this.role !== 'leader' || this.recovering || this.filling) return
    // Not re-entrant: with a single replica a slot is chosen (and applied, which calls
    // back here) inside proposeSlot.
    this.filling = true
    try {
      this.fillPipelineOnce()
    } finally {
      this.filling = false
    }
  }

  private filling = false

  private fillPipelineOnce(): void {
    while (this.inflight.size < this.cfg.inflightSlotsMax && this.queueHead < this.queue.length) {
      const ops: Op[] = []
      const requests: RequestId[] = []
      let keys: ConflictRecord[] | null = null
      let entries = 0
      let bytes = 0
      let barrier = false
      while (this.queueHead < this.queue.length) {
        const q = this.queue[this.queueHead]!
        if (ops.length > 0 && (entries + q.entries > this.cfg.batchEntriesMax || bytes + q.bytes > this.cfg.batchBytesMax)) break
        if (q === this.armBarrier) barrier = true
        ops.push(q.op)
        requests.push(q.requestId)
        if (q.keys.length > 0) (keys ??= []).push(...q.keys)
        entries += q.entries
        bytes += q.bytes
        this.queueHead++
      }
      this.queueBytes -= bytes
      if (this.queueHead === this.queue.length) {
        this.queue = []
        this.queueHead = 0
      } else if (this.queueHead > 1024 && this.queueHead * 2 > this.queue.length) {
        this.queue = this.queue.slice(this.queueHead)
        this.queueHead = 0
      }
      // Take the slot number before proposing: proposing may choose and apply it.
      const slot = this.nextSlot++
      if (barrier) {
        this.armBarrier = null
        this.armReadyAt = slot + 1
      }
      this.proposeSlot(slot, { ts: Math.max(this.now, this.lastTs), ops }, requests, keys ?? [])
    }
  }

  private proposeSlot(slot: number, value: SlotValue, requests: RequestId[], keys: readonly ConflictRecord[] = NO_KEYS): void {
    const b = this.ballot
    this.accepted.set(slot, { ballot: b, value })
    this.write({ kind: 'accept', slot, ballot: b, value })
    const c = this.commitSlot
    if (c > this.lastCommitSent) this.lastCommitSent = c
    if (this.cfg.earlyAccepts) {
      // Our own vote counts once the accept is durable (persisted()); the requests go now.
      this.inflight.set(slot, { value, acks: new Map(), requests, sentTick: this.tickCount, keys })
      this.selfAcksOpen.push({ slot, ballot: b, token: 0 })
      const before = this.out.messages.length
      this.broadcast(() => ({ type: 'accept', ballot: b, slot, value, commitSlot: c }))
      for (const m of this.out.messages.splice(before)) this.out.early.push(m)
      return
    }
    this.inflight.set(slot, { value, acks: new Map([[this.id, this.incarnation]]), requests, sentTick: this.tickCount, keys })
    this.broadcast(() => ({ type: 'accept', ballot: b, slot, value, commitSlot: c }))
    this.maybeChosen(slot)
  }

  private onAccepted(msg: Extract<Message, { type: 'accepted' }>): void {
    if (this.role !== 'leader' || compareBallots(msg.ballot, this.ballot) !== 0) {
      this.ignore(`accepted ${ballotString(msg.ballot)} slot ${msg.slot} from ${msg.from}: not leading that ballot`)
      return
    }
    this.lastAckTick[msg.from] = this.tickCount
    const s = this.inflight.get(msg.slot)
    if (s === undefined) return // already chosen: a late or duplicate ack
    s.acks.set(msg.from, msg.inc)
    this.maybeChosen(msg.slot)
  }

  private maybeChosen(slot: number): void {
    const s = this.inflight.get(slot)
    if (s === undefined || s.acks.size < this.q) return
    // Chosen: a quorum accepted it under our ballot (acks from stale incarnations were dropped).
    this.inflight.delete(slot)
    this.learnChosen(slot, s.value)
    this.waiting.set(slot, s.requests)
    if (s.keys.length > 0) this.releasing.set(slot, s.keys)
    this.applyContiguous()
    this.fillPipeline()
  }

  /** Requests of slots chosen by this leader, answered when the slot is applied. */
  private readonly waiting = new Map<number, RequestId[]>()
  /** Conflict keys of slots chosen by this leader, released when the slot is applied. */
  private readonly releasing = new Map<number, readonly ConflictRecord[]>()

  // Conditional appends (the leader as sequencer). Valid only while this replica leads
  // and has applied everything chosen before its term (conflictReady).
  private conflictReady = false
  /** Keyed writes are counted in the table: conditional appends are in use (armConflicts). */
  private conflictTracking = false
  /** When the last conditional append arrived (leader's clock, ms). */
  private lastConditionalAt = 0
  /** The last op queued before tracking began, until it is cut into a slot. */
  private armBarrier: QueuedOp | null = null
  /** The table can answer once this slot is applied (every untracked write is). */
  private armReadyAt = Infinity
  /** Last applied writes and pending writes per (stream, key); see conflicts.ts. */
  private readonly conflicts: ConflictTable
  /** Conditional appends that arrived before conflictReady. */
  private heldConditional: { requestId: RequestId; op: Op }[] = []

  private maybeStartReadRound(): void {
    if (this.role !== 'leader' || this.readRound !== null || this.readQueue.length === 0) return
    if (this.commitSlot < this.readyAt) return
    const round: ReadRound = { id: ++this.readCounter, acks: new Set([this.id]), requests: this.readQueue }
    this.readQueue = []
    this.readRound = round
    this.heartbeatElapsed = 0
    this.sendHeartbeats()
    this.maybeFinishReadRound()
  }

  private maybeFinishReadRound(): void {
    const round = this.readRound
    if (round === null || round.acks.size < this.q) return
    // A quorum confirmed our leadership after these reads arrived; anything
    // acknowledged before them was applied here before they arrived.
    this.readRound = null
    for (const requestId of round.requests) {
      this.out.reads.push({ requestId, ok: true, tail: this.nextPosition, commitSlot: this.commitSlot } satisfies ReadIndexResult)
    }
    this.maybeStartReadRound()
  }

  private onHeartbeatAck(msg: Extract<Message, { type: 'heartbeatAck' }>): void {
    if (this.role !== 'leader' || compareBallots(msg.ballot, this.ballot) !== 0) {
      this.ignore(`heartbeatAck ${ballotString(msg.ballot)} from ${msg.from}: not leading that ballot`)
      return
    }
    this.lastAckTick[msg.from] = this.tickCount
    if (this.readRound !== null && msg.readId === this.readRound.id) {
      this.readRound.acks.add(msg.from)
      this.maybeFinishReadRound()
    }
  }

  // ------------------------------------------------------------------ follower

  /** Accept a leader with ballot b (from an accept or heartbeat). Returns false if b is stale. */
  private followLeader(from: ReplicaId, b: Ballot): boolean {
    if (compareBallots(b, this.promised) < 0) {
      this.send({ type: 'nack', to: from, ballot: b, promised: this.promised })
      return false
    }
    if ((this.role === 'candidate' || this.role === 'leader') && compareBallots(b, this.ballot) > 0) this.becomeFollower(from)
    else if (this.role === 'candidate' && compareBallots(b, this.ballot) === 0) return false // cannot happen: our own ballot
    this.setPromised(b)
    this.leader = from
    this.leaderBallot = b
    this.electionElapsed = 0
    return true
  }

  private onAccept(msg: Extract<Message, { type: 'accept' }>): void {
    if (!this.voting) {
      this.ignore(`accept slot ${msg.slot} from ${msg.from}: not voting yet (${this.role})`)
      return
    }
    if (!this.followLeader(msg.from, msg.ballot)) return
    if (msg.slot >= this.commitSlot && !this.pendingChosen.has(msg.slot)) {
      this.accepted.set(msg.slot, { ballot: msg.ballot, value: msg.value })
      this.write({ kind: 'accept', slot: msg.slot, ballot: msg.ballot, value: msg.value })
    }
    this.send({ type: 'accepted', to: msg.from, ballot: msg.ballot, slot: msg.slot })
    this.learnCommit(msg.ballot, msg.commitSlot)
  }

  private onHeartbeat(msg: Extract<Message, { type: 'heartbeat' }>): void {
    if (!this.voting) {
      // Learners and joiners learn how far the log goes, without voting.
      if (compareBallots(msg.ballot, this.leaderBallot) >= 0) {
        this.leader = msg.from
        this.leaderBallot = msg.ballot
      }
      this.knownCommit = Math.max(this.knownCommit, msg.commitSlot)
      if (this.role === 'learner') this.maybeCatchUp()
      return
    }
    if (!this.followLeader(msg.from, msg.ballot)) return
    this.send({ type: 'heartbeatAck', to: msg.from, ballot: msg.ballot, readId: msg.readId, commitSlot: this.commitSlot })
    this.learnCommit(msg.ballot, msg.commitSlot)
  }

  /** The leader of ballot b says slots below c are chosen. */
  private learnCommit(b: Ballot, c: number): void {
    if (c > this.knownCommit) this.knownCommit = c
    const upto = Math.min(c, this.commitSlot + this.cfg.inflightSlotsMax * 4)
    for (let s = this.commitSlot; s < upto; s++) {
      // A value we accepted under the same ballot is the one this leader had chosen:
      // a leader proposes one value per slot per ballot.
      const a = this.accepted.get(s)
      if (a !== undefined && compareBallots(a.ballot, b) === 0 && !this.pendingChosen.has(s)) this.pendingChosen.set(s, a.value)
    }
    this.applyContiguous()
    this.maybeCatchUp()
  }

  // ------------------------------------------------------------------ catch-up

  private maybeCatchUp(): void {
    const target = this.role === 'learner' ? Math.max(this.knownCommit, this.floorSlot + 1) : this.knownCommit
    if (this.commitSlot >= target) {
      this.catchupAwaited = false
      return
    }
    // One request at a time; an unanswered (or unhelpful) one is retried after
    // catchupRetryTicks, never at once: no message storms.
    if (this.catchupAwaited && this.tickCount - this.catchupSentTick < this.cfg.catchupRetryTicks) return
    const to = this.catchupPeer()
    this.catchupAwaited = true
    this.catchupSentTick = this.tickCount
    this.send({ type: 'catchupRequest', to, fromSlot: this.commitSlot, toSlot: Math.min(target, this.commitSlot + this.cfg.catchupSlotsMax) })
  }

  /**
   * Whom to ask: a peer known to have chosen past our commit index — the leader if it
   * is one of them, else the one furthest ahead — and only when none is known, the
   * peers in turn (so that a peer that cannot help is not asked again and again).
   */
  private catchupPeer(): ReplicaId {
    const ahead = (r: ReplicaId): boolean => r !== this.id && this.peerCommit[r]! > this.commitSlot
    if (this.leader !== null && ahead(this.leader)) return this.leader
    let best: ReplicaId | null = null
    for (let r = 0; r < this.n; r++) if (ahead(r) && (best === null || this.peerCommit[r]! > this.peerCommit[best]!)) best = r
    if (best !== null) return best
    for (let k = 0; k < this.n; k++) {
      const r = (this.catchupCursor++ + this.id + 1) % this.n
      if (r !== this.id) return r
    }
    return this.id // unreachable: n > 1 whenever there is someone to catch up from
  }

  private onCatchupRequest(msg: Extract<Message, { type: 'catchupRequest' }>): void {
    const to = Math.min(msg.toSlot, this.commitSlot, msg.fromSlot + this.cfg.catchupSlotsMax)
    // A learner may wait for a slot beyond the log (its floor): a leader with nothing
    // else to propose fills one so that the learner's wait ends.
    if (this.role === 'leader' && !this.recovering && msg.toSlot > this.nextSlot && this.inflight.size === 0 && this.queueHead === this.queue.length) {
      const slot = this.nextSlot++
      this.proposeSlot(slot, { ts: Math.max(this.now, this.lastTs), ops: [] }, [])
    }
    const records: ChosenRecord[] = []
    let bytes = 0
    let s = msg.fromSlot
    for (; s < to && bytes < this.cfg.catchupBytesMax; s++) {
      const r = this.recent.get(s)
      if (r === undefined) break
      records.push(r)
      bytes += valueBytes(r.value)
    }
    if (s < to && records.length > 0) {
      this.send({ type: 'catchupReply', to: msg.from, records, commitSlot: this.commitSlot })
      return
    }
    if (s < to && records.length === 0) {
      this.out.storageReads.push({ kind: 'serveCatchup', to: msg.from, fromSlot: s, toSlot: to })
      return
    }
    this.send({ type: 'catchupReply', to: msg.from, records, commitSlot: this.commitSlot })
  }

  private onCatchupReply(msg: Extract<Message, { type: 'catchupReply' }>): void {
    this.knownCommit = Math.max(this.knownCommit, msg.commitSlot)
    const before = this.commitSlot
    for (const r of msg.records) this.learnChosen(r.slot, r.value)
    this.applyContiguous()
    // Progress: ask for the next range at once. No progress: leave the request
    // outstanding so that the retry timer, and a better-informed peer choice, decide.
    if (this.commitSlot > before) {
      this.catchupAwaited = false
      this.maybeCatchUp()
    }
  }

  // ------------------------------------------------------------------ learning & applying

  private learnChosen(slot: number, value: SlotValue): void {
    if (slot < this.commitSlot || this.pendingChosen.has(slot)) return
    this.pendingChosen.set(slot, value)
  }

  private applyContiguous(): void {
    let applied = false
    for (;;) {
      const value = this.pendingChosen.get(this.commitSlot)
      if (value === undefined) break
      this.pendingChosen.delete(this.commitSlot)
      this.applySlot(this.commitSlot, value)
      applied = true
    }
    if (!applied) return
    if (this.commitSlot > this.knownCommit) this.knownCommit = this.commitSlot
    if (this.nextSlot < this.commitSlot) this.nextSlot = this.commitSlot
    if (this.role === 'leader') this.commitAdvanced = true
    if (this.role === 'learner') this.maybeBecomeVoter()
    if (this.role === 'leader') {
      if (this.recovering) {
        this.recoveryProgressTick = this.tickCount
        this.continueRecovery()
      }
      this.maybeConflictReady()
      this.maybeStartReadRound()
    }
  }

  /** Deterministic: every replica computes the same record from the same chosen prefix. */
  private applySlot(slot: number, value: SlotValue): void {
    assert(slot === this.commitSlot, `applying slot ${slot} at commit ${this.commitSlot}`)
    const firstPosition = this.nextPosition
    const ts = Math.max(this.lastTs, value.ts)
    const outcomes: Outcome[] = new Array<Outcome>(value.ops.length)
    const touched = new Set<string>()
    const trimUpdates: TrimUpdate[] = []
    let next = firstPosition
    for (let i = 0; i < value.ops.length; i++) {
      const op = value.ops[i]!
      if (op.kind === 'trim') {
        const cur = this.trims.get(op.stream) ?? 0
        const before = Math.min(op.before, next)
        if (before > cur) {
          this.trims.set(op.stream, before)
          trimUpdates.push({ stream: op.stream, before })
        }
        outcomes[i] = NEW
        continue
      }
      // Absent exactly-once ids may arrive as null from the wire: both mean "none".
      if (op.clientId == null || op.seq == null) {
        outcomes[i] = NEW
        if (this.conflictReady) this.recordWrites(op, next)
        next += op.entries.length
        continue
      }
      const seen = this.lookupSession(op)
      if (seen !== null) {
        outcomes[i] = seen
        continue
      }
      outcomes[i] = NEW
      this.recordSession(op.clientId, op.seq, next, op.entries.length, slot, op.refused)
      touched.add(op.clientId)
      if (this.conflictReady) this.recordWrites(op, next)
      next += op.entries.length
    }
    const sessionUpdates: SessionUpdate[] = []
    // Most recently active last (insertion order = LRU order): once per client per slot,
    // and within a slot by client id — the order storage restores them in (lastSlot, then
    // client id), so a restarted replica evicts the same sessions as the others.
    const touchedOrder = touched.size > 1 ? [...touched].sort() : touched
    for (const clientId of touchedOrder) {
      const st = this.sessions.get(clientId)!
      this.sessions.delete(clientId)
      this.sessions.set(clientId, st)
    }
    // Evict the least recently active clients past the bound (insertion order = LRU).
    while (this.sessions.size > this.cfg.sessionsMax) {
      const oldest = this.sessions.keys().next().value as string
      this.sessions.delete(oldest)
      touched.delete(oldest)
      sessionUpdates.push({ clientId: oldest, state: null })
    }
    for (const clientId of touchedOrder) {
      if (!touched.has(clientId)) continue // evicted just now
      const st = this.sessions.get(clientId)!
      sessionUpdates.push({ clientId, state: { seqs: st.seqs.slice(), lastSlot: st.lastSlot } satisfies SessionState })
    }
    const record: ChosenRecord = { slot, value, firstPosition, ts, outcomes }
    this.commitSlot = slot + 1
    this.nextPosition = next
    this.lastTs = ts
    this.accepted.delete(slot)
    this.rememberRecent(record)
    this.write({ kind: 'chosen', record, sessions: sessionUpdates, trims: trimUpdates })
    this.out.chosen.push(record)
    const release = this.releasing.get(slot)
    if (release !== undefined) {
      this.releasing.delete(slot)
      this.conflicts.release(release)
    }
    const requests = this.waiting.get(slot)
    if (requests !== undefined) {
      this.waiting.delete(slot)
      this.answer(record, requests)
    }
  }

  private answer(record: ChosenRecord, requests: readonly RequestId[]): void {
    let pos = record.firstPosition
    for (let i = 0; i < record.value.ops.length; i++) {
      const op = record.value.ops[i]!
      const outcome = record.outcomes[i]!
      const count = op.kind === 'append' ? op.entries.length : 0
      const requestId = requests[i] ?? -1
      if (op.kind === 'append' && outcome.kind === 'new') pos += count
      if (requestId < 0) continue
      if (outcome.kind === 'rejected') {
        this.out.results.push({ requestId, ok: false, code: outcome.code as ProposalErrorCode, message: `rejected: ${outcome.code}`, leader: this.id })
      } else if (outcome.kind === 'dup') {
        // The request's entries: those this copy kept plus those it refused.
        const sent = count + (op.kind === 'append' ? (op.refused?.length ?? 0) : 0)
        this.out.results.push(dupResult(requestId, outcome, sent, record.slot, record.ts))
      } else if (op.kind === 'append' && op.refused !== undefined) {
        this.out.results.push({ requestId, ok: true, outcome, firstPosition: pos - count, count, slot: record.slot, ts: record.ts, refused: op.refused })
      } else {
        this.out.results.push({ requestId, ok: true, outcome, firstPosition: op.kind === 'append' ? pos - count : -1, count, slot: record.slot, ts: record.ts })
      }
    }
  }

  /** null: a new append; otherwise its outcome as a duplicate (or too old to tell). */
  private lookupSession(op: AppendOp): Outcome | null {
    if (op.clientId == null || op.seq == null) return null
    const s = this.sessions.get(op.clientId)
    if (s === undefined) return null
    const last = s.seqs[s.seqs.length - 1]
    if (last !== undefined && op.seq > last.seq) return null // the common case: a new, higher sequence
    for (const x of s.seqs) if (x.seq === op.seq) return x.refused === undefined ? { kind: 'dup', first: x.first } : { kind: 'dup', first: x.first, refused: x.refused }
    const oldest = s.seqs[0]
    if (oldest !== undefined && s.seqs.length >= this.cfg.sessionWindow && op.seq < oldest.seq) return { kind: 'rejected', code: 'sequence_too_old' }
    return null
  }

  private recordSession(clientId: string, seq: number, first: number, count: number, slot: number, refused: readonly RefusedEntry[] | undefined): void {
    let st = this.sessions.get(clientId)
    if (st === undefined) {
      st = { seqs: [], lastSlot: slot }
      this.sessions.set(clientId, st)
    }
    const seqs = st.seqs
    let i = seqs.length
    while (i > 0 && seqs[i - 1]!.seq > seq) i--
    const x: SessionSeq = refused === undefined ? { seq, first, count } : { seq, first, count, refused }
    if (i === seqs.length) seqs.push(x)
    else seqs.splice(i, 0, x)
    if (seqs.length > this.cfg.sessionWindow) seqs.shift()
    st.lastSlot = slot
  }

  private maxSlot(): number {
    let m = this.commitSlot - 1
    for (const s of this.accepted.keys()) if (s > m) m = s
    return m
  }
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never

// ------------------------------------------------------------------ message validation

function isInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v)
}

function isBallot(v: unknown): v is Ballot {
  if (typeof v !== 'object' || v === null) return false
  const b = v as { round?: unknown; replica?: unknown }
  return isInt(b.round) && b.round >= 0 && isInt(b.replica) && b.replica >= -1
}

function checkValue(v: unknown): string | null {
  if (typeof v !== 'object' || v === null) return 'value is not an object'
  const val = v as { ts?: unknown; ops?: unknown }
  if (typeof val.ts !== 'number' || !Number.isFinite(val.ts)) return 'value.ts is not a number'
  if (!Array.isArray(val.ops)) return 'value.ops is not an array'
  for (const op of val.ops as unknown[]) {
    if (typeof op !== 'object' || op === null) return 'op is not an object'
    const o = op as { kind?: unknown; entries?: unknown; stream?: unknown; before?: unknown }
    if (o.kind === 'trim') {
      if (typeof o.stream !== 'string' || !isInt(o.before)) return 'bad trim op'
    } else if (o.kind === 'append') {
      if (!Array.isArray(o.entries)) return 'append without entries'
      const a = op as { clientId?: unknown; seq?: unknown }
      if (a.clientId != null && typeof a.clientId !== 'string') return 'append clientId is not a string'
      if (a.seq != null && !isInt(a.seq)) return 'append seq is not an integer'
      if ((a.clientId == null) !== (a.seq == null)) return 'append clientId and seq go together'
      for (const e of o.entries as unknown[]) {
        const en = e as { streams?: unknown; data?: unknown }
        if (typeof e !== 'object' || e === null || !Array.isArray(en.streams) || !(en.data instanceof Uint8Array)) return 'bad entry'
      }
    } else {
      return `unknown op kind ${String(o.kind)}`
    }
  }
  return null
}

function checkRecords(v: unknown): string | null {
  if (!Array.isArray(v)) return 'records is not an array'
  for (const r of v as unknown[]) {
    const rec = r as { slot?: unknown; value?: unknown }
    if (typeof r !== 'object' || r === null || !isInt(rec.slot) || rec.slot < 0) return 'bad record'
    const bad = checkValue(rec.value)
    if (bad !== null) return bad
  }
  return null
}

function nonNegative(m: Record<string, unknown>, k: string): boolean {
  const v = m[k]
  return isInt(v) && v >= 0
}

function atLeastMinusOne(m: Record<string, unknown>, k: string): boolean {
  const v = m[k]
  return isInt(v) && v >= -1
}

/** Shape check of a message from the network: null if fine, else why not. */
export function validateMessage(msg: unknown, n: number, self: ReplicaId): string | null {
  if (typeof msg !== 'object' || msg === null) return 'not an object'
  const m = msg as Record<string, unknown>
  if (!isInt(m.from) || m.from < 0 || m.from >= n || m.from === self) return `bad sender ${String(m.from)}`
  if (m.to !== self) return `addressed to ${String(m.to)}`
  if (!isInt(m.inc) || m.inc < 0) return 'bad incarnation'
  if (!Array.isArray(m.vec) || m.vec.length !== n || !(m.vec as unknown[]).every((x) => isInt(x) && x >= 0)) return 'bad incarnation vector'
  // Module functions, not closures: this runs for every message.
  switch (m.type) {
    case 'prepare':
      return isBallot(m.ballot) && nonNegative(m, 'fromSlot') ? null : 'bad prepare'
    case 'promise': {
      if (!isBallot(m.ballot) || !nonNegative(m, 'commitSlot') || !Array.isArray(m.accepted)) return 'bad promise'
      for (const a of m.accepted as unknown[]) {
        const acc = a as { slot?: unknown; ballot?: unknown; value?: unknown }
        if (typeof a !== 'object' || a === null || !isInt(acc.slot) || !isBallot(acc.ballot)) return 'bad accepted entry'
        const bad = checkValue(acc.value)
        if (bad !== null) return bad
      }
      return checkRecords(m.chosen)
    }
    case 'accept':
      if (!isBallot(m.ballot) || !nonNegative(m, 'slot') || !nonNegative(m, 'commitSlot')) return 'bad accept'
      return checkValue(m.value)
    case 'accepted':
      return isBallot(m.ballot) && nonNegative(m, 'slot') ? null : 'bad accepted'
    case 'nack':
      return isBallot(m.ballot) && isBallot(m.promised) ? null : 'bad nack'
    case 'heartbeat':
    case 'heartbeatAck':
      return isBallot(m.ballot) && nonNegative(m, 'commitSlot') && nonNegative(m, 'readId') ? null : `bad ${m.type}`
    case 'catchupRequest':
      return nonNegative(m, 'fromSlot') && nonNegative(m, 'toSlot') ? null : 'bad catchupRequest'
    case 'catchupReply':
      return nonNegative(m, 'commitSlot') ? checkRecords(m.records) : 'bad catchupReply'
    case 'joinProbe':
      return nonNegative(m, 'attempt') ? null : 'bad joinProbe'
    case 'joinInfo':
      return nonNegative(m, 'attempt') && nonNegative(m, 'knownIncarnation') && isBallot(m.promised) && atLeastMinusOne(m, 'maxSlot') && nonNegative(m, 'commitSlot') ? null : 'bad joinInfo'
    case 'join':
      return nonNegative(m, 'incarnation') ? null : 'bad join'
    case 'joinAck':
      return nonNegative(m, 'incarnation') && isBallot(m.promised) && atLeastMinusOne(m, 'maxSlot') && nonNegative(m, 'commitSlot') ? null : 'bad joinAck'
    default:
      return `unknown type ${String(m.type)}`
  }
}
