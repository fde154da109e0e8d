// The simulator's driver for one replica: the real PaxosCore over an in-memory disk
// (a PersistedImage), handling every Output in the order types.ts prescribes:
//   1. persist writes, 2. send messages, 3. deliver chosen, results, reads,
//   4. serve storage reads (whose Output is handled the same way).
// The disk survives crashes; the core does not. A crash can also fall between step 1
// and step 2 (writes durable, messages never sent).

import { PaxosCore } from '../../log-server/paxos/core.ts'
import { PersistedImage } from '../../log-server/paxos/image.ts'
import type { CoreConfig } from '../../log-server/paxos/config.ts'
import type { Rng } from '../../log-server/paxos/rng.ts'
import type {
  ChosenRecord,
  CoreStatus,
  Message,
  Op,
  Output,
  ProposalResult,
  ReadIndexResult,
  ReplicaId,
  RequestId,
  Write,
} from '../../log-server/paxos/types.ts'
import { CheckFailure } from './checkers.ts'

/** Where the driver's effects go: the network, the checkers, the clients. */
export interface HostSink {
  send(msg: Message): void
  started(replica: ReplicaId, commitSlot: number): void
  chosen(replica: ReplicaId, record: ChosenRecord): void
  result(replica: ReplicaId, r: ProposalResult): void
  read(replica: ReplicaId, r: ReadIndexResult): void
  /** Every Output, after it was handled (for traces and extra checks). */
  output?(replica: ReplicaId, input: string, out: Output): void
}

/**
 * Bugs a test may plant in the DRIVER (never in the core), to show the checkers catch
 * them: a driver that does not persist some writes, or that rewrites what the core said.
 */
export interface DriverBugs {
  /** false: silently drop this write instead of persisting it. */
  keepWrite?(w: Write): boolean
  /** Rewrite the Output of step(msg) before the driver handles it. */
  rewriteStep?(host: ReplicaHost, msg: Message, out: Output): Output
  /** Answer tail queries from the local applied state, skipping the read-index round. */
  localReads?: boolean
}

/**
 * Decides, per Output, whether the replica crashes at this point and how many messages
 * got out first: 'before-persist' (only asked when the Output has early messages: some
 * went out, the writes are lost) or 'after-persist' (the writes are durable, some of the
 * messages went out).
 */
export type CrashOracle = (host: ReplicaHost, out: Output, stage: 'before-persist' | 'after-persist') => { sent: number } | null

export class ReplicaHost {
  disk = new PersistedImage()
  private core: PaxosCore | null = null
  /** Cores started at this replica (restarts + 1). */
  lives = 0
  /** Lost its disk and has not yet become a voter again. */
  wiped = false
  crashOracle: CrashOracle | null = null
  /** true: report this Output's persistToken later (flushPersisted), like a slow fsync callback. */
  deferPersisted: (() => boolean) | null = null
  /** Persist tokens whose writes are durable and not yet reported to the core. */
  private pendingTokens: number[] = []
  bugs: DriverBugs = {}

  constructor(
    readonly config: CoreConfig,
    private readonly sink: HostSink,
  ) {}

  get id(): ReplicaId {
    return this.config.id
  }

  get up(): boolean {
    return this.core !== null
  }

  /** Start a core over whatever the disk holds (null for an empty disk). */
  start(rng: Rng, nowMs: number): void {
    if (this.core !== null) throw new Error(`replica ${this.id} is already up`)
    const persisted = this.disk.load(this.config.recentChosenMax)
    this.core = new PaxosCore(this.config, persisted, rng, nowMs)
    this.lives++
    this.sink.started(this.id, persisted === null ? 0 : persisted.applied.commitSlot)
    this.checkApplied()
  }

  crash(): void {
    this.core = null
    this.pendingTokens = []
  }

  /** Crash and lose the disk: the next start finds nothing (persisted = null). */
  wipe(): void {
    this.crash()
    this.disk = new PersistedImage()
    this.wiped = true
  }

  status(): CoreStatus | null {
    return this.core?.status() ?? null
  }

  /** The live core, for tests that need to look at it. */
  get live(): PaxosCore {
    if (this.core === null) throw new Error(`replica ${this.id} is down`)
    return this.core
  }

  tick(nowMs: number): void {
    const c = this.core
    if (c !== null) this.handle(c, 'tick', c.tick(nowMs))
  }

  step(msg: Message): void {
    const c = this.core
    if (c === null) return
    let out = c.step(msg)
    if (this.bugs.rewriteStep) out = this.bugs.rewriteStep(this, msg, out)
    this.handle(c, msg.type, out)
  }

  /** false: the replica is down (the request went nowhere). */
  propose(requestId: RequestId, op: Op): boolean {
    const c = this.core
    if (c === null) return false
    this.handle(c, 'propose', c.propose(requestId, op))
    return true
  }

  readIndex(requestId: RequestId): boolean {
    const c = this.core
    if (c === null) return false
    if (this.bugs.localReads) {
      const a = c.applied
      this.sink.read(this.id, { requestId, ok: true, tail: a.nextPosition, commitSlot: a.commitSlot })
      return true
    }
    this.handle(c, 'readIndex', c.readIndex(requestId))
    return true
  }

  private handle(core: PaxosCore, input: string, out: Output): void {
    // 0. Early messages (accept requests of a leader with earlyAccepts on) go at once:
    //    they promise nothing, so a crash before the writes are durable is allowed to follow.
    if (out.early.length > 0) {
      const crash = this.crashOracle?.(this, out, 'before-persist') ?? null
      const early = crash === null ? out.early.length : Math.min(crash.sent, out.early.length)
      for (let i = 0; i < early; i++) this.send(out.early[i]!)
      if (crash !== null) {
        this.crash()
        return
      }
    }
    // 1. Persist, atomically.
    const keep = this.bugs.keepWrite
    this.disk.apply(keep === undefined ? out.writes : out.writes.filter((w) => keep(w)))
    // The checkers see a slot as applied here once it is durable, even if the replica
    // crashes before it delivers it.
    for (const w of out.writes) if (w.kind === 'chosen') this.sink.chosen(this.id, w.record)
    const crash = this.crashOracle?.(this, out, 'after-persist') ?? null
    if (crash !== null) {
      // Crash after the writes are durable, with only some messages out (often none).
      for (let i = 0; i < Math.min(crash.sent, out.messages.length); i++) this.send(out.messages[i]!)
      this.crash()
      return
    }
    // ... then tell the core its writes are durable (now, or later: a slow fsync callback).
    if (out.persistToken > 0) {
      if (this.deferPersisted?.() === true) {
        this.pendingTokens.push(out.persistToken)
      } else {
        this.handle(core, 'persisted', core.persisted(out.persistToken))
        if (this.core !== core) return
      }
    }
    // 2. Send.
    for (const m of out.messages) this.send(m)
    // 3. Deliver. What is delivered as chosen is exactly what was persisted as chosen.
    const persisted = out.writes.filter((w) => w.kind === 'chosen').map((w) => w.record.slot)
    if (persisted.length !== out.chosen.length || out.chosen.some((r, i) => r.slot !== persisted[i])) {
      throw new CheckFailure('driver-contract', `replica ${this.id} delivered chosen slots [${out.chosen.map((r) => r.slot).join(',')}] but persisted [${persisted.join(',')}]`)
    }
    for (const r of out.results) this.sink.result(this.id, r)
    for (const r of out.reads) this.sink.read(this.id, r)
    this.sink.output?.(this.id, input, out)
    if (this.core !== core) return
    this.checkApplied()
    // 4. Serve catch-up from storage.
    for (const sr of out.storageReads) {
      if (this.core !== core) return
      const records = this.disk.chosenRange(sr.fromSlot, sr.toSlot)
      this.handle(core, 'serveCatchup', core.serveCatchup(sr.to, records))
    }
  }

  private send(m: Message): void {
    if (m.from !== this.id) throw new CheckFailure('driver-contract', `replica ${this.id} sent a message from ${m.from}`)
    this.sink.send(m)
  }

  /** Report persist tokens whose writes became durable earlier (deferred fsync callbacks). */
  flushPersisted(): void {
    const c = this.core
    if (c === null || this.pendingTokens.length === 0) return
    const tokens = this.pendingTokens
    this.pendingTokens = []
    // Tokens are cumulative: reporting the highest covers the others.
    this.handle(c, 'persisted', c.persisted(Math.max(...tokens)))
  }

  /** The applied state a core reports is what its disk holds (chosen writes precede delivery). */
  private checkApplied(): void {
    const c = this.core
    if (c === null) return
    const a = c.applied
    if (a.commitSlot !== this.disk.committed) {
      throw new CheckFailure('driver-contract', `replica ${this.id} reports commitSlot ${a.commitSlot} but its disk holds ${this.disk.committed} applied slots`)
    }
  }
}
