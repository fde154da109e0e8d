// A hand-driven cluster for scenario tests, in the style of etcd-io/raft's
// raft_test.go network: nothing moves unless the test says so. Messages wait in a FIFO
// until deliverAll(); the network offers cut(a, b), isolate(id), drop(p), filter(pred),
// heal(); a test can take() messages out of flight and inject() them later. Replicas
// are the real PaxosCore behind the simulator's driver (ReplicaHost), and the same
// checkers as the random simulation watch every record and every message.

import { validateCoreConfig, type CoreConfig } from '../../log-server/paxos/config.ts'
import { seededRng, type Rng } from '../../log-server/paxos/rng.ts'
import type { AppendOp, ChosenRecord, CoreStatus, Message, Op, ProposalResult, ReadIndexResult, ReplicaId, RequestId, Role } from '../../log-server/paxos/types.ts'
import { AcceptorChecker, LogChecker } from './checkers.ts'
import { ReplicaHost, type HostSink } from './replica-host.ts'
import { Wire } from './sim-network.ts'

const BASE_MS = 1_700_000_000_000
const TICK_MS = 10

export interface ScenarioOptions {
  replicas: 3 | 5
  seed?: number
  config?: Partial<CoreConfig>
}

export class ScenarioCluster {
  readonly n: number
  readonly hosts: ReplicaHost[] = []
  readonly log = new LogChecker()
  readonly acceptors = new AcceptorChecker()
  /** Every message any replica ever sent, in order (for assertions about who said what). */
  readonly sent: Message[] = []
  readonly results = new Map<RequestId, ProposalResult>()
  readonly reads = new Map<RequestId, ReadIndexResult>()
  /** Roles each replica went through since it last started, as seen after every Output. */
  readonly roles = new Map<ReplicaId, Role[]>()
  /** The commitSlot a replica had when it (re)gained its vote, since it last started. */
  readonly votingSince = new Map<ReplicaId, number>()
  /** Promises or accepts sent by a replica that did not vote (must stay empty). */
  readonly nonVoterVotes: string[] = []
  private queue: Message[] = []
  private readonly blocked = new Set<string>()
  private readonly filters: ((m: Message) => boolean)[] = []
  private dropRate = 0
  /** Messages cross the production wire codec, as between real replicas. */
  private readonly wire = new Wire('msgpack')
  private readonly rng: Rng
  private readonly seed: number
  private nextRequestId = 1
  ticks = 0

  constructor(opts: ScenarioOptions) {
    this.n = opts.replicas
    this.seed = opts.seed ?? 1
    this.rng = seededRng(this.seed)
    const sink: HostSink = {
      send: (m) => {
        this.sent.push(m)
        this.acceptors.sent(m)
        if (this.lost(m)) return
        this.queue.push(m)
      },
      started: (r, commitSlot) => this.log.started(r, commitSlot),
      chosen: (r, rec) => this.log.observe(r, rec),
      result: (_r, res) => {
        if (this.results.has(res.requestId)) throw new Error(`request ${res.requestId} answered twice`)
        this.results.set(res.requestId, res)
      },
      read: (_r, res) => {
        this.reads.set(res.requestId, res)
      },
      output: (r, _input, out) => {
        const st = this.hosts[r]!.status()
        if (st === null) return
        const roles = this.roles.get(r) ?? []
        if (roles[roles.length - 1] !== st.role) roles.push(st.role)
        this.roles.set(r, roles)
        if (st.voting && !this.votingSince.has(r)) this.votingSince.set(r, st.commitSlot)
        if (st.voting) return
        for (const m of out.messages) {
          if (m.type === 'promise' || m.type === 'accepted') this.nonVoterVotes.push(`replica ${r} (${st.role}) sent ${m.type}`)
        }
      },
    }
    for (let id = 0; id < this.n; id++) {
      this.hosts.push(new ReplicaHost(validateCoreConfig({ id, replicas: this.n, ...opts.config }), sink))
    }
  }

  private lost(m: Message): boolean {
    if (this.blocked.has(`${m.from}>${m.to}`)) return true
    if (this.filters.some((f) => f(m))) return true
    return this.dropRate > 0 && this.rng.next() < this.dropRate
  }

  // ------------------------------------------------------------------ network

  /** Cut the link between a and b, both ways. */
  cut(a: ReplicaId, b: ReplicaId): void {
    this.blocked.add(`${a}>${b}`)
    this.blocked.add(`${b}>${a}`)
  }

  /** Cut one direction only. */
  cutOneWay(from: ReplicaId, to: ReplicaId): void {
    this.blocked.add(`${from}>${to}`)
  }

  isolate(id: ReplicaId): void {
    for (let r = 0; r < this.n; r++) if (r !== id) this.cut(id, r)
  }

  /** Lose each message with probability p (seeded). */
  drop(p: number): void {
    this.dropRate = p
  }

  /** Lose every message matching pred (etcd's ignore(type), generalised). */
  filter(pred: (m: Message) => boolean): void {
    this.filters.push(pred)
  }

  heal(): void {
    this.blocked.clear()
    this.filters.length = 0
    this.dropRate = 0
  }

  /** Take matching messages out of flight (to drop them, or to inject them later). */
  take(pred: (m: Message) => boolean): Message[] {
    const taken = this.queue.filter(pred)
    this.queue = this.queue.filter((m) => !pred(m))
    return taken
  }

  /** Put a message (back) in flight. */
  inject(m: Message): void {
    this.queue.push(m)
  }

  /** Deliver the matching messages now in flight, once (what they cause stays in flight). */
  deliverOnly(pred: (m: Message) => boolean): number {
    const now = this.take(pred)
    for (const m of now) {
      const h = this.hosts[m.to]
      if (h !== undefined && h.up) h.step(this.wire.unpack(this.wire.pack(m)))
    }
    return now.length
  }

  get inFlight(): readonly Message[] {
    return this.queue
  }

  /** Deliver messages in FIFO order until none is left (answers included). */
  deliverAll(maxMessages = 100_000): void {
    let k = 0
    while (this.queue.length > 0) {
      if (++k > maxMessages) {
        const last = this.queue.slice(0, 12).map((m) => JSON.stringify(m, (_k, v: unknown) => (v instanceof Uint8Array ? `<${v.length} bytes>` : v)))
        throw new Error(`deliverAll: more than ${maxMessages} messages without a tick (a message loop?); next in flight:\n${last.join('\n')}`)
      }
      const m = this.queue.shift()!
      const h = this.hosts[m.to]
      if (h !== undefined && h.up) h.step(this.wire.unpack(this.wire.pack(m)))
    }
  }

  // ------------------------------------------------------------------ time

  private nowMs(): number {
    return BASE_MS + this.ticks * TICK_MS
  }

  /** Tick the given replicas (default: all that are up) once, without delivering anything. */
  tick(ids?: readonly ReplicaId[]): void {
    this.ticks++
    for (const h of this.hosts) if (ids === undefined || ids.includes(h.id)) h.tick(this.nowMs())
  }

  /** Tick everyone and deliver everything, `ticks` times. */
  run(ticks: number, ids?: readonly ReplicaId[]): void {
    for (let i = 0; i < ticks; i++) {
      this.tick(ids)
      this.deliverAll()
    }
  }

  /** Tick + deliver until pred holds; throws after maxTicks. */
  runUntil(pred: () => boolean, what: string, maxTicks = 500, ids?: readonly ReplicaId[]): void {
    for (let i = 0; i < maxTicks; i++) {
      if (pred()) return
      this.tick(ids)
      this.deliverAll()
    }
    if (!pred()) throw new Error(`not reached within ${maxTicks} ticks: ${what}\n${this.describe()}`)
  }

  // ------------------------------------------------------------------ replicas

  private rngFor(id: ReplicaId): Rng {
    return seededRng(this.seed * 7919 + id * 104_729 + this.hosts[id]!.lives * 1_299_709)
  }

  start(id: ReplicaId): void {
    this.roles.delete(id)
    this.votingSince.delete(id)
    this.hosts[id]!.start(this.rngFor(id), this.nowMs())
    const st = this.hosts[id]!.status()!
    this.roles.set(id, [st.role])
    if (st.voting) this.votingSince.set(id, st.commitSlot)
  }

  crash(id: ReplicaId): void {
    this.hosts[id]!.crash()
    // What was in flight to it is lost with its sockets.
    this.queue = this.queue.filter((m) => m.to !== id)
  }

  /** Crash and restart from disk. */
  restart(id: ReplicaId): void {
    this.crash(id)
    this.start(id)
  }

  /** Crash, lose the disk, and start again with nothing (persisted = null). */
  wipe(id: ReplicaId): void {
    this.crash(id)
    this.hosts[id]!.wipe()
    this.start(id)
  }

  status(id: ReplicaId): CoreStatus {
    const st = this.hosts[id]!.status()
    if (st === null) throw new Error(`replica ${id} is down`)
    return st
  }

  /** The leader with the highest ballot among live replicas, if any. */
  leader(): ReplicaId | null {
    let best: CoreStatus | null = null
    for (const h of this.hosts) {
      const st = h.status()
      if (st === null || st.role !== 'leader') continue
      if (best === null || st.ballot.round > best.ballot.round || (st.ballot.round === best.ballot.round && st.ballot.replica > best.ballot.replica)) best = st
    }
    return best?.id ?? null
  }

  /** A brand-new cluster: every replica starts with an empty disk; run until all vote and one leads. */
  bootstrap(): ReplicaId {
    for (let id = 0; id < this.n; id++) this.start(id)
    this.runUntil(() => this.hosts.every((h) => h.status()?.voting === true) && this.leader() !== null, 'a bootstrapped cluster with a leader')
    // Let the leader's first heartbeats settle (recovery of the empty log).
    this.run(3)
    return this.leader()!
  }

  // ------------------------------------------------------------------ clients

  propose(id: ReplicaId, op: Op): RequestId {
    const rid = this.nextRequestId++
    if (!this.hosts[id]!.propose(rid, op)) throw new Error(`replica ${id} is down`)
    return rid
  }

  readIndex(id: ReplicaId): RequestId {
    const rid = this.nextRequestId++
    if (!this.hosts[id]!.readIndex(rid)) throw new Error(`replica ${id} is down`)
    return rid
  }

  result(rid: RequestId): ProposalResult | undefined {
    return this.results.get(rid)
  }

  /** The record of one slot as replica id's disk holds it. */
  record(id: ReplicaId, slot: number): ChosenRecord | undefined {
    return this.hosts[id]!.disk.chosen.get(slot)
  }

  /** Every replica's disk holds the same chosen log, of the same length. */
  assertConverged(): number {
    const len = this.log.length
    for (const h of this.hosts) {
      const st = h.status()
      if (st === null) throw new Error(`replica ${h.id} is down`)
      if (st.commitSlot !== len) throw new Error(`replica ${h.id} at commitSlot ${st.commitSlot}, the log has ${len} slots\n${this.describe()}`)
      this.log.checkDisk(h.id, h.disk.chosen, h.disk.committed)
    }
    return len
  }

  /** Run until every live replica is at the same commitSlot as the log (bounded). */
  converge(maxTicks = 500): number {
    this.runUntil(
      () => this.hosts.every((h) => h.status() !== null && h.status()!.commitSlot === this.log.length && h.status()!.voting) && this.leader() !== null,
      'every replica caught up',
      maxTicks,
    )
    return this.assertConverged()
  }

  describe(): string {
    return this.hosts
      .map((h) => {
        const st = h.status()
        if (st === null) return `  replica ${h.id}: down`
        return `  replica ${h.id}: ${st.role} voting=${st.voting} inc=${st.incarnation} ballot=${st.ballot.round}.${st.ballot.replica} promised=${st.promised.round}.${st.promised.replica} leader=${st.leader} commit=${st.commitSlot}`
      })
      .join('\n')
  }
}

const encoder = new TextEncoder()

/** An exactly-once append of `count` entries on stream `s`. */
export function appendOp(clientId: string, seq: number, count = 1, stream = 's'): AppendOp {
  return {
    kind: 'append',
    clientId,
    seq,
    entries: Array.from({ length: count }, (_, i) => ({ streams: [stream], data: encoder.encode(`${clientId}/${seq}/${i}`) })),
  }
}
