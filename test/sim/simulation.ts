// The deterministic simulator: n real PaxosCores, each over an in-memory disk, a
// seeded lossy network, a simulated clock and simulated clients, all driven by ONE
// seed. A run has two phases:
//   - safety: faults drawn from the seed (loss, duplication, reordering, delay,
//     partitions incl. asymmetric ones and an isolated leader, crashes at any step,
//     crashes between persist and send, loss of one replica's disk), with checkers
//     watching every emitted record and every client answer;
//   - liveness: the network heals, every replica restarts, and within a bounded number
//     of ticks every client request must be answered and every replica must reach the
//     same commitSlot.
// Faults stay within what Paxos tolerates: at most f = floor((n-1)/2) replicas are
// down or rejoining after a disk loss at any one time, and at most one disk is lost.

import { validateCoreConfig, type CoreConfig } from '../../log-server/paxos/config.ts'
import { seededRng, type Rng } from '../../log-server/paxos/rng.ts'
import type { Message, Output, ReplicaId } from '../../log-server/paxos/types.ts'
import { ballotString, compareBallots } from '../../log-server/paxos/types.ts'
import { AcceptorChecker, CheckFailure, HistoryChecker, LogChecker, describeRecord } from './checkers.ts'
import { ReplicaHost, type DriverBugs, type HostSink } from './replica-host.ts'
import { ClientPool, type ClientWorkload } from './sim-clients.ts'
import { CALM_NETWORK, SimNetwork, type NetworkFaults } from './sim-network.ts'

/** Everything the seed decides about a run's faults. */
export interface FaultPlan {
  network: NetworkFaults
  /** Per tick: probability that some replica crashes. */
  crashRate: number
  /** Bias towards crashing the leader when a crash is drawn. */
  leaderCrashBias: number
  /** Per Output: probability of a crash right after persisting it (few or no messages sent), or before, once its early messages are out. */
  crashAfterPersistRate: number
  /** Per Output with a persist token: probability that the driver reports it durable only next tick (a slow fsync). */
  slowFsyncRate: number
  restartTicksMax: number
  /** Per tick: probability that a partition starts (when none is active). */
  partitionRate: number
  partitionTicksMax: number
  /** Tick at which one replica loses its disk, or -1. */
  wipeAtTick: number
  /** Per-replica clock offset, ms (replicas' clocks disagree; log time must not go backwards). */
  clockSkewMs: number[]
}

export interface SimOptions {
  seed: number
  /** Default: derived from the seed (every third seed runs 5 replicas). */
  replicas?: 3 | 5
  safetyTicks?: number
  livenessTicksMax?: number
  /** Override parts of the seed's fault plan (planted-bug tests crash more often). */
  faults?: (plan: FaultPlan, rng: Rng) => FaultPlan
  workload?: Partial<ClientWorkload>
  config?: Partial<CoreConfig>
  /** Bugs planted in the drivers (never in the core). */
  bugs?: DriverBugs
  /** Keep a full event trace (otherwise only the last events, for failure reports). */
  trace?: boolean
  /** Watch the acceptor rule on the wire (default true); off to show the log checkers alone catch a bug. */
  wireChecks?: boolean
}

export interface SimReport {
  seed: number
  replicas: number
  ticks: number
  livenessTicks: number
  slots: number
  positions: number
  appendsInvoked: number
  appendsAcked: number
  dupAcks: number
  tailAnswers: number
  crashes: number
  wiped: boolean
  partitions: number
  messages: { sent: number; lost: number; duplicated: number; cut: number; delivered: number }
  plan: string
  earlyAccepts: boolean
}

export class SimFailure extends Error {
  constructor(
    readonly seed: number,
    readonly replicas: number,
    readonly failure: unknown,
    readonly phase: string,
    readonly tick: number,
    readonly trace: readonly string[],
    readonly plan: string,
    readonly extra: string,
  ) {
    const what = failure instanceof Error ? (failure instanceof CheckFailure ? failure.message : (failure.stack ?? failure.message)) : String(failure)
    const checker = failure instanceof CheckFailure ? failure.checker : failure instanceof Error ? failure.name : 'error'
    super(
      [
        `simulation failed: seed ${seed}, ${replicas} replicas, ${phase} phase, tick ${tick} (${checker})`,
        what,
        `replay: ${replayCommand(seed)}`,
        `fault plan: ${plan}`,
        extra,
        `last events:`,
        ...trace.slice(-60).map((l) => `  ${l}`),
      ]
        .filter((l) => l !== '')
        .join('\n'),
    )
    this.name = 'SimFailure'
  }

  get checker(): string {
    return this.failure instanceof CheckFailure ? this.failure.checker : 'exception'
  }
}

export function replayCommand(seed: number): string {
  return `SEED=${seed} npx vitest run test/sim/sim.test.ts`
}

export function replicasForSeed(seed: number): 3 | 5 {
  return seed % 3 === 0 ? 5 : 3
}

/** Far above what a healthy cluster of 5 sends in one tick: more means a message storm. */
const MESSAGES_PER_TICK_MAX = 20_000
const BASE_MS = 1_700_000_000_000
const TICK_MS = 10

function drawPlan(rng: Rng, n: number, safetyTicks: number): FaultPlan {
  const pick = <T>(xs: readonly T[]): T => xs[rng.int(0, xs.length)]!
  return {
    network: {
      lossRate: rng.next() * 0.3,
      dupRate: rng.next() < 0.5 ? rng.next() * 0.1 : 0,
      delayMaxTicks: rng.int(1, 6),
      longDelayRate: rng.next() < 0.5 ? rng.next() * 0.02 : 0,
      longDelayMaxTicks: rng.int(10, 120),
    },
    crashRate: pick([0, 0.004, 0.01, 0.03]),
    leaderCrashBias: rng.next(),
    crashAfterPersistRate: pick([0, 0.0005, 0.002]),
    slowFsyncRate: pick([0, 0.3, 0.9]),
    restartTicksMax: rng.int(5, 120),
    partitionRate: pick([0, 0.005, 0.015, 0.03]),
    partitionTicksMax: rng.int(10, 150),
    wipeAtTick: rng.next() < 0.5 ? rng.int(50, Math.max(51, safetyTicks - 100)) : -1,
    clockSkewMs: Array.from({ length: n }, () => rng.int(-300, 301)),
  }
}

function describePlan(p: FaultPlan): string {
  const f = (x: number): string => x.toFixed(4)
  const net = p.network
  return (
    `loss=${f(net.lossRate)} dup=${f(net.dupRate)} delay<=${net.delayMaxTicks} longDelay=${f(net.longDelayRate)}x${net.longDelayMaxTicks} ` +
    `crash=${p.crashRate} leaderBias=${f(p.leaderCrashBias)} crashAfterPersist=${p.crashAfterPersistRate} slowFsync=${p.slowFsyncRate} restart<=${p.restartTicksMax} ` +
    `partition=${p.partitionRate}x${p.partitionTicksMax} wipeAt=${p.wipeAtTick} skew=[${p.clockSkewMs.join(',')}]`
  )
}

function describeMessage(m: Message): string {
  const base = `${m.type} ${m.from}->${m.to} inc=${m.inc}`
  switch (m.type) {
    case 'prepare':
      return `${base} b=${ballotString(m.ballot)} from=${m.fromSlot}`
    case 'promise':
      return `${base} b=${ballotString(m.ballot)} commit=${m.commitSlot} acc=[${m.accepted.map((a) => `${a.slot}@${ballotString(a.ballot)}`).join(',')}] chosen=${m.chosen.length}`
    case 'accept':
      return `${base} b=${ballotString(m.ballot)} slot=${m.slot} ops=${m.value.ops.length} commit=${m.commitSlot}`
    case 'accepted':
      return `${base} b=${ballotString(m.ballot)} slot=${m.slot}`
    case 'nack':
      return `${base} b=${ballotString(m.ballot)} promised=${ballotString(m.promised)}`
    case 'heartbeat':
    case 'heartbeatAck':
      return `${base} b=${ballotString(m.ballot)} commit=${m.commitSlot} read=${m.readId}`
    case 'catchupRequest':
      return `${base} [${m.fromSlot},${m.toSlot})`
    case 'catchupReply':
      return `${base} records=${m.records.length}${m.records.length > 0 ? ` from ${m.records[0]!.slot}` : ''} commit=${m.commitSlot}`
    case 'joinProbe':
      return `${base} attempt=${m.attempt}`
    case 'joinInfo':
      return `${base} attempt=${m.attempt} known=${m.knownIncarnation} maxSlot=${m.maxSlot} commit=${m.commitSlot}`
    case 'join':
      return `${base} incarnation=${m.incarnation}`
    case 'joinAck':
      return `${base} incarnation=${m.incarnation} promised=${ballotString(m.promised)} maxSlot=${m.maxSlot} commit=${m.commitSlot}`
  }
}

/** A bounded ring of trace lines (or all of them, when tracing). */
class Trace {
  private lines: string[] = []
  constructor(private readonly keepAll: boolean) {}
  add(line: string): void {
    this.lines.push(line)
    if (!this.keepAll && this.lines.length > 400) this.lines = this.lines.slice(-200)
  }
  get all(): readonly string[] {
    return this.lines
  }
}

export class Simulation {
  readonly n: number
  readonly f: number
  readonly hosts: ReplicaHost[] = []
  readonly net: SimNetwork
  readonly log = new LogChecker()
  readonly history: HistoryChecker
  readonly acceptors = new AcceptorChecker()
  readonly clients: ClientPool
  readonly plan: FaultPlan
  private readonly rng: Rng
  private readonly netRng: Rng
  private readonly trace: Trace
  private tick = 0
  private phase: 'safety' | 'liveness' = 'safety'
  private readonly restartAt: number[]
  private partitionUntil = -1
  /** A crash drawn for this tick happens after this many deliveries (-1: none). */
  private crashAfterDeliveries = -1
  private wipeDone = false
  private crashes = 0
  private partitions = 0
  private readonly safetyTicks: number
  private readonly livenessTicksMax: number
  readonly earlyAccepts: boolean

  constructor(private readonly opts: SimOptions) {
    const seed = opts.seed
    this.n = opts.replicas ?? replicasForSeed(seed)
    this.f = Math.floor((this.n - 1) / 2)
    this.rng = seededRng(seed)
    this.safetyTicks = opts.safetyTicks ?? 1000
    this.livenessTicksMax = opts.livenessTicksMax ?? 1500
    const drawn = drawPlan(this.rng, this.n, this.safetyTicks)
    this.plan = opts.faults ? opts.faults(drawn, this.rng) : drawn
    this.netRng = this.fork()
    this.net = new SimNetwork(this.n, this.netRng, this.plan.network)
    this.trace = new Trace(opts.trace ?? false)
    this.history = new HistoryChecker(this.log)
    this.restartAt = new Array<number>(this.n).fill(-1)
    const workload: ClientWorkload = {
      clients: this.rng.int(2, 7),
      timeoutTicks: this.rng.int(30, 90),
      thinkTicksMax: this.rng.int(0, 8),
      tailRate: 0.15,
      trimRate: 0.03,
      anonRate: 0.1,
      entriesMax: 3,
      ...opts.workload,
    }
    // Small in-memory windows on some seeds, so that catch-up is served from storage too.
    const small = this.rng.next() < 0.5
    // Half the seeds run the leader as production replicas do: accept requests sent before its own fsync.
    this.earlyAccepts = this.rng.next() < 0.5
    const sink = this.sink()
    for (let id = 0; id < this.n; id++) {
      const config = validateCoreConfig({
        id,
        replicas: this.n,
        earlyAccepts: this.earlyAccepts,
        ...(small ? { recentChosenMax: 8, recentChosenBytesMax: 64, catchupSlotsMax: 4, inflightSlotsMax: 8, batchEntriesMax: 4 } : {}),
        ...opts.config,
      })
      const host = new ReplicaHost(config, sink)
      if (opts.bugs) host.bugs = opts.bugs
      host.crashOracle = (h, out, stage) => this.crashAfterPersist(h, out, stage)
      host.deferPersisted = () => this.plan.slowFsyncRate > 0 && this.rng.next() < this.plan.slowFsyncRate
      this.hosts.push(host)
    }
    const clientRng = this.fork()
    this.clients = new ClientPool(
      this.n,
      workload,
      clientRng,
      this.history,
      {
        propose: (r, id, op) => this.hosts[r]!.propose(id, op),
        readIndex: (r, id) => this.hosts[r]!.readIndex(id),
      },
    )
  }

  private fork(): Rng {
    return seededRng(this.rng.int(0, 0x1_0000_0000))
  }

  private nowMs(r: ReplicaId): number {
    return BASE_MS + this.tick * TICK_MS + (this.plan.clockSkewMs[r] ?? 0)
  }

  private sink(): HostSink {
    return {
      send: (m) => {
        if (this.opts.trace) this.trace.add(`t${this.tick} send ${describeMessage(m)}`)
        if (this.opts.wireChecks !== false) this.acceptors.sent(m)
        this.net.send(m, this.tick)
      },
      started: (r, commitSlot) => {
        this.trace.add(`t${this.tick} replica ${r} started (life ${this.hosts[r]?.lives ?? '?'}) commitSlot=${commitSlot}`)
        this.log.started(r, commitSlot)
      },
      chosen: (r, rec) => {
        if (this.opts.trace) this.trace.add(`t${this.tick} replica ${r} chose ${describeRecord(rec)}`)
        this.log.observe(r, rec)
      },
      result: (r, res) => {
        this.trace.add(`t${this.tick} replica ${r} result req ${res.requestId} ${res.ok ? `ok ${res.outcome.kind} first=${res.outcome.kind === 'dup' ? res.outcome.first : res.firstPosition} n=${res.count}` : res.code}`)
        this.clients.onResult(r, res)
      },
      read: (r, res) => {
        this.trace.add(`t${this.tick} replica ${r} read req ${res.requestId} ${res.ok ? `tail=${res.tail}` : res.code}`)
        this.clients.onRead(r, res)
      },
      output: (r, input, out) => this.afterOutput(r, input, out),
    }
  }

  /** Extra checks on every Output, and the trace. */
  private afterOutput(r: ReplicaId, input: string, out: Output): void {
    if (this.opts.trace && (out.writes.length > 0 || out.ignored.length > 0)) {
      const ws = out.writes.map((w) => (w.kind === 'promise' ? `promise ${ballotString(w.ballot)}` : w.kind === 'accept' ? `accept ${w.slot}@${ballotString(w.ballot)}` : w.kind === 'chosen' ? `chosen ${w.record.slot}` : `identity inc=${w.incarnation} voting=${w.voting}`))
      this.trace.add(`t${this.tick} replica ${r} on ${input} wrote [${ws.join(', ')}]${out.ignored.length > 0 ? ` ignored: ${out.ignored.join('; ')}` : ''}`)
    }
    const host = this.hosts[r]!
    const st = host.status()
    if (st === null) return
    // A replica that has not (re)joined must not vote: no promise, no accepted.
    if (!st.voting) {
      for (const m of out.messages) {
        if (m.type === 'promise' || m.type === 'accepted') {
          throw new CheckFailure('non-voter-voted', `replica ${r} (${st.role}, not voting) sent ${describeMessage(m)}`)
        }
      }
    }
    if (host.wiped && st.voting) {
      host.wiped = false
      this.trace.add(`t${this.tick} replica ${r} rejoined and votes again (incarnation ${st.incarnation}, commitSlot ${st.commitSlot})`)
    }
  }

  /**
   * A replica counts as failed while it is down or does not vote (it lost its disk, or
   * crashed before it finished joining, and is rejoining): either way it is not part of
   * any quorum.
   */
  private failed(h: ReplicaHost): boolean {
    const st = h.status()
    return st === null || !st.voting
  }

  private failedCount(): number {
    let k = 0
    for (const h of this.hosts) if (this.failed(h)) k++
    return k
  }

  /** May `victim` crash now? Crashing a replica that already counts as failed adds no failure. */
  private mayCrash(victim: ReplicaHost): boolean {
    if (this.phase !== 'safety') return false
    return this.failed(victim) || this.failedCount() + 1 <= this.f
  }

  private crashAfterPersist(h: ReplicaHost, out: Output, stage: 'before-persist' | 'after-persist'): { sent: number } | null {
    const p = this.plan.crashAfterPersistRate
    if (p === 0 || out.writes.length === 0 || !this.mayCrash(h)) return null
    if (this.rng.next() >= p) return null
    const msgs = stage === 'before-persist' ? out.early : out.messages
    const sent = this.rng.next() < 0.5 ? 0 : this.rng.int(0, msgs.length + 1)
    this.crashes++
    this.trace.add(
      stage === 'before-persist'
        ? `t${this.tick} replica ${h.id} CRASHED before persisting ${out.writes.length} writes, sent ${sent}/${msgs.length} early accept requests`
        : `t${this.tick} replica ${h.id} CRASHED after persisting ${out.writes.length} writes, sent ${sent}/${msgs.length} messages`,
    )
    this.scheduleRestart(h.id)
    return { sent }
  }

  private scheduleRestart(r: ReplicaId): void {
    this.restartAt[r] = this.tick + 1 + this.rng.int(0, this.plan.restartTicksMax)
  }

  private leader(): ReplicaId | null {
    let best: ReplicaId | null = null
    let bestStatus = null
    for (const h of this.hosts) {
      const st = h.status()
      if (st === null || st.role !== 'leader') continue
      if (bestStatus === null || compareBallots(st.ballot, bestStatus.ballot) > 0) {
        best = h.id
        bestStatus = st
      }
    }
    return best
  }

  private startHost(r: ReplicaId): void {
    const h = this.hosts[r]!
    this.restartAt[r] = -1
    h.start(this.fork(), this.nowMs(r))
  }

  private injectFaults(): void {
    const rng = this.rng
    const p = this.plan
    // Crash one replica this tick, between two message deliveries (or before its clock ticks).
    if (p.crashRate > 0 && rng.next() < p.crashRate) this.crashAfterDeliveries = rng.int(0, 12)
    // Lose one replica's disk (once), only when nobody else is down or rejoining.
    if (!this.wipeDone && p.wipeAtTick >= 0 && this.tick >= p.wipeAtTick && this.failedCount() === 0 && this.f >= 1) {
      this.wipeDone = true
      const victim = rng.int(0, this.n)
      this.hosts[victim]!.wipe()
      this.trace.add(`t${this.tick} replica ${victim} LOST ITS DISK`)
      this.scheduleRestart(victim)
    }
    // Partitions.
    if (this.partitionUntil >= 0 && this.tick >= this.partitionUntil) {
      this.net.heal()
      this.partitionUntil = -1
      this.trace.add(`t${this.tick} network healed`)
    }
    if (this.partitionUntil < 0 && p.partitionRate > 0 && rng.next() < p.partitionRate) {
      this.partitions++
      this.partitionUntil = this.tick + 1 + rng.int(0, p.partitionTicksMax)
      const kind = rng.int(0, 4)
      const leader = this.leader()
      if (kind === 0 && leader !== null) {
        this.net.isolate(leader)
      } else if (kind <= 1) {
        this.net.isolate(rng.int(0, this.n))
      } else if (kind === 2) {
        // Asymmetric: some directed links only.
        const links = rng.int(1, this.n + 1)
        for (let i = 0; i < links; i++) {
          const a = rng.int(0, this.n)
          const b = (a + 1 + rng.int(0, this.n - 1)) % this.n
          this.net.block(a, b)
        }
      } else {
        // A minority side and a majority side.
        const ids = Array.from({ length: this.n }, (_, i) => i)
        for (let i = ids.length - 1; i > 0; i--) {
          const j = rng.int(0, i + 1)
          ;[ids[i], ids[j]] = [ids[j]!, ids[i]!]
        }
        const minority = ids.slice(0, rng.int(1, this.f + 1))
        for (const a of minority) for (const b of ids) if (!minority.includes(b)) this.net.cutBoth(a, b)
      }
      this.trace.add(`t${this.tick} PARTITION until t${this.partitionUntil}: ${this.net.describeBlocked()}${leader !== null ? ` (leader ${leader})` : ''}`)
    }
  }

  private crashNow(): void {
    this.crashAfterDeliveries = -1
    const rng = this.rng
    const leader = this.leader()
    const up = this.hosts.filter((h) => h.up).map((h) => h.id)
    const victim = leader !== null && rng.next() < this.plan.leaderCrashBias ? leader : up[rng.int(0, up.length)]
    if (victim === undefined || !this.mayCrash(this.hosts[victim]!)) return
    this.hosts[victim]!.crash()
    this.crashes++
    this.trace.add(`t${this.tick} replica ${victim} CRASHED${victim === leader ? ' (leader)' : ''}`)
    this.scheduleRestart(victim)
  }

  private runTick(): void {
    // Restarts due.
    for (let r = 0; r < this.n; r++) {
      const at = this.restartAt[r]!
      if (at >= 0 && this.tick >= at && !this.hosts[r]!.up) this.startHost(r)
    }
    if (this.phase === 'safety') this.injectFaults()
    // Slow fsyncs complete.
    for (const h of this.hosts) h.flushPersisted()
    // Deliver what is due, in the network's order.
    let delivered = 0
    for (;;) {
      if (delivered === this.crashAfterDeliveries) this.crashNow()
      const m = this.net.nextDue(this.tick)
      if (m === undefined) break
      const h = this.hosts[m.to]
      if (h === undefined || !h.up) continue
      if (this.opts.trace) this.trace.add(`t${this.tick} recv ${describeMessage(m)}`)
      h.step(m)
      if (++delivered > MESSAGES_PER_TICK_MAX) {
        throw new CheckFailure('message-storm', `more than ${MESSAGES_PER_TICK_MAX} messages delivered in tick ${this.tick} (${this.net.inFlight} in flight)`)
      }
    }
    if (this.crashAfterDeliveries >= 0) this.crashNow()
    // Every live replica's clock ticks, in a random order.
    const order = Array.from({ length: this.n }, (_, i) => i)
    for (let i = order.length - 1; i > 0; i--) {
      const j = this.rng.int(0, i + 1)
      ;[order[i], order[j]] = [order[j]!, order[i]!]
    }
    for (const r of order) this.hosts[r]!.tick(this.nowMs(r))
    this.clients.tick(this.tick)
  }

  private converged(): boolean {
    if (!this.clients.idle) return false
    let commit = -1
    for (const h of this.hosts) {
      const st = h.status()
      if (st === null || !st.voting || st.inflight > 0 || st.queued > 0) return false
      if (commit < 0) commit = st.commitSlot
      else if (st.commitSlot !== commit) return false
    }
    return commit === this.log.length
  }

  private describeReplicas(): string {
    return this.hosts
      .map((h) => {
        const st = h.status()
        if (st === null) return `  replica ${h.id}: down (disk commit ${h.disk.committed}${h.wiped ? ', wiped' : ''})`
        return `  replica ${h.id}: ${st.role} voting=${st.voting} inc=${st.incarnation} ballot=${ballotString(st.ballot)} promised=${ballotString(st.promised)} leader=${st.leader} commit=${st.commitSlot} next=${st.nextPosition} inflight=${st.inflight} queued=${st.queued}${h.wiped ? ' (wiped, rejoining)' : ''}`
      })
      .join('\n')
  }

  /** Final agreement: every replica's disk and applied state is the one log, complete. */
  private finalChecks(): void {
    for (const h of this.hosts) {
      const c = h.live
      this.log.checkDisk(h.id, h.disk.chosen, h.disk.committed)
      const a = c.applied
      if (a.commitSlot !== this.log.length) throw new CheckFailure('convergence', `replica ${h.id} ends at commitSlot ${a.commitSlot}, the log has ${this.log.length} slots`)
      if (a.nextPosition !== this.log.positionAt(a.commitSlot)) {
        throw new CheckFailure('positions', `replica ${h.id} reports nextPosition ${a.nextPosition}, the log says ${this.log.positionAt(a.commitSlot)}`)
      }
      if (a.lastTs !== this.log.tsAt(a.commitSlot)) throw new CheckFailure('log-time', `replica ${h.id} reports lastTs ${a.lastTs}, the log says ${this.log.tsAt(a.commitSlot)}`)
    }
    this.history.final()
  }

  run(): SimReport {
    let livenessStart = -1
    try {
      // A brand-new cluster: every disk is empty, every replica starts by probing its peers.
      for (let r = 0; r < this.n; r++) this.startHost(r)
      for (this.tick = 0; this.tick < this.safetyTicks; this.tick++) this.runTick()
      // Liveness: heal everything and require progress within a bound.
      this.phase = 'liveness'
      livenessStart = this.tick
      this.net.heal()
      this.net.faults = { ...CALM_NETWORK, delayMaxTicks: this.plan.network.delayMaxTicks }
      this.partitionUntil = -1
      this.trace.add(`t${this.tick} LIVENESS PHASE: network healed, restarting every replica`)
      for (let r = 0; r < this.n; r++) if (!this.hosts[r]!.up) this.startHost(r)
      const loadUntil = this.tick + 50
      const deadline = this.tick + this.livenessTicksMax
      for (;;) {
        if (this.tick >= loadUntil) this.clients.draining = true
        if (this.tick >= loadUntil && this.converged()) break
        if (this.tick >= deadline) {
          throw new CheckFailure(
            'liveness',
            `no convergence ${this.livenessTicksMax} ticks after the network healed and every replica restarted; log has ${this.log.length} slots\n` +
              `${this.describeReplicas()}\n  pending client requests: ${this.clients.describePending() || 'none'}`,
          )
        }
        this.runTick()
        this.tick++
      }
      this.finalChecks()
    } catch (err) {
      const c = this.hosts[0]!.config
      const extra = `config: earlyAccepts=${c.earlyAccepts} recentChosenMax=${c.recentChosenMax} recentChosenBytesMax=${c.recentChosenBytesMax} catchupSlotsMax=${c.catchupSlotsMax} inflightSlotsMax=${c.inflightSlotsMax} batchEntriesMax=${c.batchEntriesMax}\nreplicas:\n${this.describeReplicas()}`
      throw new SimFailure(this.opts.seed, this.n, err, this.phase, this.tick, this.trace.all, describePlan(this.plan), extra)
    }
    return {
      seed: this.opts.seed,
      replicas: this.n,
      ticks: this.tick,
      livenessTicks: this.tick - livenessStart,
      slots: this.log.length,
      positions: this.log.nextPosition,
      appendsInvoked: this.history.invokedAppends,
      appendsAcked: this.history.acked,
      dupAcks: this.history.dupAcks,
      tailAnswers: this.history.tailAnswers,
      crashes: this.crashes,
      wiped: this.wipeDone,
      partitions: this.partitions,
      messages: { sent: this.net.sent, lost: this.net.lost, duplicated: this.net.duplicated, cut: this.net.cut, delivered: this.net.delivered },
      plan: describePlan(this.plan),
      earlyAccepts: this.earlyAccepts,
    }
  }

  /** The full trace (when run with trace: true). */
  get traceLines(): readonly string[] {
    return this.trace.all
  }
}

export function runSimulation(opts: SimOptions): SimReport {
  return new Simulation(opts).run()
}
