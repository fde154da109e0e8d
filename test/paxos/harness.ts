// A minimal, fault-free cluster for unit tests of the core: messages delivered in
// FIFO order, every Output handled in the order the contract demands.
import { validateCoreConfig, type CoreConfig } from '../../log-server/paxos/config.ts'
import { PaxosCore } from '../../log-server/paxos/core.ts'
import { PersistedImage } from '../../log-server/paxos/image.ts'
import { seededRng } from '../../log-server/paxos/rng.ts'
import type { ChosenRecord, Message, Op, Output, ProposalResult, ReadIndexResult } from '../../log-server/paxos/types.ts'
import { decode, encode } from '@msgpack/msgpack'

export class MiniCluster {
  readonly cores: (PaxosCore | null)[] = []
  readonly disks: PersistedImage[] = []
  readonly chosen: ChosenRecord[][] = []
  readonly results = new Map<number, ProposalResult>()
  readonly reads = new Map<number, ReadIndexResult>()
  readonly queue: Message[] = []
  readonly cfgs: CoreConfig[] = []
  /** Links that drop messages: `${from}>${to}`. */
  readonly cut = new Set<string>()
  now = 1_000
  private nextRequest = 1

  /** Pass every message through msgpack, as the network does (undefined becomes null). */
  wire = false

  constructor(readonly n: number, seed = 1, overrides: Partial<CoreConfig> = {}) {
    for (let i = 0; i < n; i++) {
      this.cfgs.push(validateCoreConfig({ id: i, replicas: n, ...overrides }))
      this.disks.push(new PersistedImage())
      this.chosen.push([])
      this.cores.push(new PaxosCore(this.cfgs[i]!, null, seededRng(seed * 31 + i), this.now))
    }
  }

  handle(id: number, o: Output): void {
    for (const m of o.early) if (!this.cut.has(`${m.from}>${m.to}`)) this.queue.push(m)
    this.disks[id]!.apply(o.writes)
    if (o.persistToken !== 0 && this.cores[id]) this.handle(id, this.cores[id]!.persisted(o.persistToken))
    for (const m of o.messages) if (!this.cut.has(`${m.from}>${m.to}`)) this.queue.push(m)
    this.chosen[id]!.push(...o.chosen)
    for (const r of o.results) this.results.set(r.requestId, r)
    for (const r of o.reads) this.reads.set(r.requestId, r)
    for (const sr of o.storageReads) {
      const recs = this.disks[id]!.chosenRange(sr.fromSlot, sr.toSlot)
      this.handle(id, this.cores[id]!.serveCatchup(sr.to, recs))
    }
  }

  deliverAll(limit = 100_000): void {
    let k = 0
    while (this.queue.length > 0 && k++ < limit) {
      const sent = this.queue.shift()!
      const m = this.wire ? (decode(encode(sent)) as Message) : sent
      const c = this.cores[m.to]
      if (c) this.handle(m.to, c.step(m))
    }
  }

  tick(times = 1): void {
    for (let t = 0; t < times; t++) {
      this.now += 10
      for (let i = 0; i < this.n; i++) {
        const c = this.cores[i]
        if (c) this.handle(i, c.tick(this.now))
      }
      this.deliverAll()
    }
  }

  leader(): number | null {
    for (let i = 0; i < this.n; i++) if (this.cores[i]?.status().role === 'leader') return i
    return null
  }

  /** Ticks until some replica leads, or throws. */
  elect(maxTicks = 500): number {
    for (let t = 0; t < maxTicks; t++) {
      const l = this.leader()
      if (l !== null && this.cores[l]!.status().commitSlot >= 0) return l
      this.tick()
    }
    throw new Error('no leader elected')
  }

  propose(id: number, op: Op): number {
    const rid = this.nextRequest++
    this.handle(id, this.cores[id]!.propose(rid, op))
    return rid
  }

  readIndex(id: number): number {
    const rid = this.nextRequest++
    this.handle(id, this.cores[id]!.readIndex(rid))
    return rid
  }

  crash(id: number): void {
    this.cores[id] = null
  }

  restart(id: number, wipe = false): void {
    if (wipe) this.disks[id] = new PersistedImage()
    this.chosen[id] = []
    const cfg = this.cfgs[id]!
    this.cores[id] = new PaxosCore(cfg, this.disks[id]!.load(cfg.recentChosenMax), seededRng(this.now + id), this.now)
  }
}

export function append(stream: string, text: string, clientId?: string, seq?: number): Op {
  return { kind: 'append', clientId, seq, entries: [{ streams: [stream], data: new TextEncoder().encode(text) }] }
}
