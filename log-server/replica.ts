// The replica driver: wires the pure Paxos core to storage, the peer transport, a
// timer and the HTTP API. It owns the order the core demands for every Output:
//   1. persist the writes (group-committed LevelDB batch, fsynced);
//   2. then send the messages;
//   3. then deliver chosen slots, proposal results and read-index answers;
//   4. then serve storage reads (catch-up of peers from disk).
// Outputs are handled strictly in the order the core produced them: an Output with no
// writes still waits for earlier persists, so no message ever overtakes a write made
// before it.

import type { Message } from './paxos/types.ts'
import { PaxosCore } from './paxos/core.ts'
import { seededRng } from './paxos/rng.ts'
import type { ChosenRecord, Op, Output, ProposalResult, ReadIndexResult } from './paxos/types.ts'
import { ballotString } from './paxos/types.ts'
import type { LogStore } from './storage/log-store.ts'
import { isStorageError } from './storage/errors.ts'
import { storedEntries } from './storage/entries.ts'
import { ERROR_CODES, QuipuError, type ErrorCode } from './errors.ts'
import { decode as decodeMsgpack, encode as encodeMsgpack } from '@msgpack/msgpack'
import { Pool } from 'undici'
import type { ApiEntry, AppendAnswer, AppendRequest, CallOptions, ReadRange, ReadResult, ReplicaApi, ReplicaStatus, Subscription, TailResult } from './api/replica-api.ts'
import { urlOf, type ReplicaConfig } from './replica-config.ts'

/** The peer transport as the driver uses it. */
export interface PeerLink {
  start(): Promise<void>
  send(msg: Message): void
  onMessage(handler: (msg: Message) => void): void
  connected(peer: number): boolean
  close(): Promise<void>
  /** Counters for /v1/status (optional: test transports may have none). */
  stats?(): unknown
}

export interface ReplicaDeps {
  readonly config: ReplicaConfig
  readonly store: LogStore
  readonly transport: PeerLink
  /** Wall clock in ms (for slot timestamps); Date.now by default. */
  readonly clock?: () => number
  readonly log?: (line: string) => void
}

interface Pending<T> {
  resolve(v: T): void
  reject(e: Error): void
  /** Date.now() past which the caller gets `unavailable` (swept, not one timer each). */
  readonly deadline: number
}

interface Subscriber {
  readonly streams: readonly string[]
  readonly streamSet: ReadonlySet<string>
  cursor: number
  readonly onEntries: (entries: readonly ApiEntry[], next: number) => void
  readonly onError: (err: Error) => void
  pumping: boolean
  again: boolean
  closed: boolean
}

const REQUEST_TIMEOUT_MS = 10_000
const SUBSCRIBE_BATCH = 1000
/** How long a read waits for a corrupt slot to be refetched before it answers `corrupt`. */
const REPAIR_WAIT_MS = 3_000
const REPAIR_RETRY_MS = 250
const REPAIR_GIVE_UP_MS = 30_000

export class Replica implements ReplicaApi {
  readonly config: ReplicaConfig
  private readonly store: LogStore
  private readonly transport: PeerLink
  private readonly clock: () => number
  private readonly log: (line: string) => void
  private core!: PaxosCore
  private ticker: NodeJS.Timeout | null = null
  private lastPersist: Promise<void> | null = null
  private nextRequestId = 1
  private readonly proposals = new Map<number, Pending<ProposalResult>>()
  private readonly reads = new Map<number, Pending<ReadIndexResult>>()
  private batch: { requestId: number; op: Op }[] = []
  private batchScheduled = false
  private readonly subscribers = new Set<Subscriber>()
  private readonly repairs = new Map<number, { waiters: (() => void)[]; sentAt: number }>()
  private stopping = false
  private failed: Error | null = null

  constructor(deps: ReplicaDeps) {
    this.config = deps.config
    this.store = deps.store
    this.transport = deps.transport
    this.clock = deps.clock ?? Date.now
    this.log = deps.log ?? ((l) => console.log(l))
  }

  /** Open storage, build the core from what it holds, start the transport and the ticker. */
  async start(): Promise<void> {
    await this.store.open()
    const persisted = await this.store.load()
    const c = this.config
    this.core = new PaxosCore({ ...c.core, id: c.id, replicas: c.peers.length }, persisted, seededRng((Date.now() ^ (c.id * 0x9e3779b9)) >>> 0), this.clock())
    this.log(
      persisted === null
        ? `replica ${c.id}: empty data dir ${c.dataDir}: joining the cluster (a new replica, or one that lost its disk)`
        : `replica ${c.id}: resumed from ${c.dataDir} at slot ${persisted.applied.commitSlot}, position ${persisted.applied.nextPosition}`,
    )
    this.transport.onMessage((m) => this.onPeerMessage(m))
    await this.transport.start()
    this.ticker = setInterval(() => {
      this.handle(this.core.tick(this.clock()))
      this.sweepDeadlines()
    }, c.tickMs)
    // Slot records the store found missing when it opened (e.g. a damaged write-ahead
    // log): refetch them now rather than on the first read that needs them.
    for (const slot of this.store.missingSlots()) void this.repair(slot)
  }

  private lastSweep = 0

  /** Requests past their deadline fail with `unavailable` (checked every 250 ms). */
  private sweepDeadlines(): void {
    const now = Date.now()
    if (now - this.lastSweep < 250) return
    this.lastSweep = now
    for (const [id, p] of this.proposals) {
      if (p.deadline > now) continue
      this.proposals.delete(id)
      p.reject(new QuipuError('unavailable', `not chosen within ${REQUEST_TIMEOUT_MS} ms (no quorum?); retry with the same clientId and seq`))
    }
    for (const [id, p] of this.reads) {
      if (p.deadline > now) continue
      this.reads.delete(id)
      p.reject(new QuipuError('unavailable', `leadership not confirmed within ${REQUEST_TIMEOUT_MS} ms (no quorum?)`))
    }
  }

  /** Graceful stop: no new work, finish what is being persisted, close everything. */
  async stop(): Promise<void> {
    if (this.stopping) return
    this.stopping = true
    if (this.ticker) clearInterval(this.ticker)
    this.ticker = null
    for (const s of this.subscribers) s.closed = true
    this.subscribers.clear()
    try {
      await this.lastPersist
    } catch {
      // already reported
    }
    for (const [, p] of this.proposals) p.reject(new QuipuError('unavailable', 'replica is shutting down'))
    for (const [, p] of this.reads) p.reject(new QuipuError('unavailable', 'replica is shutting down'))
    this.proposals.clear()
    this.reads.clear()
    await this.forwardPool?.pool.close()
    await this.transport.close()
    await this.store.close()
  }

  // ---------------------------------------------------------------- the output pipeline

  private handle(o: Output): void {
    if (this.failed !== null) return
    if (this.config.debug) for (const r of o.ignored) this.log(`debug: ${r}`)
    // Accept requests of the leader promise nothing: they may overtake its own fsync.
    for (const m of o.early) this.transport.send(m)
    if (o.writes.length > 0) {
      const p = this.store.persist(o.writes)
      this.lastPersist = p
      p.then(
        () => {
          if (this.lastPersist === p) this.lastPersist = null
          this.deliver(o)
          if (o.persistToken !== 0) this.handle(this.core.persisted(o.persistToken))
        },
        (e: unknown) => this.fail(e),
      )
    } else if (this.lastPersist !== null) {
      this.lastPersist.then(
        () => this.deliver(o),
        () => undefined,
      )
    } else {
      this.deliver(o)
    }
  }

  /** A storage write failed: this replica can no longer keep its promises. Stop it. */
  private fail(e: unknown): void {
    if (this.failed !== null) return
    this.failed = e instanceof Error ? e : new Error(String(e))
    this.log(`replica ${this.config.id}: FATAL: persisting failed, stopping: ${this.failed.message}`)
    if (this.ticker) clearInterval(this.ticker)
    this.ticker = null
    for (const [, p] of this.proposals) p.reject(new QuipuError('unavailable', 'replica stopped after a storage failure'))
    this.proposals.clear()
    process.exitCode = 1
  }

  private deliver(o: Output): void {
    for (const m of o.messages) this.transport.send(m)
    for (const r of o.results) {
      const p = this.proposals.get(r.requestId)
      if (p === undefined) continue
      this.proposals.delete(r.requestId)
      p.resolve(r)
    }
    for (const r of o.reads) {
      const p = this.reads.get(r.requestId)
      if (p === undefined) continue
      this.reads.delete(r.requestId)
      p.resolve(r)
    }
    if (o.chosen.length > 0) {
      if (o.chosen.some((r) => r.value.ops.some((op) => op.kind === 'trim'))) this.compactSoon()
      if (this.subscribers.size > 0) this.pushChosen(o.chosen)
    }
    for (const sr of o.storageReads) {
      this.store.chosenRange(sr.fromSlot, sr.toSlot, this.config.core.catchupSlotsMax).then(
        (records) => this.handle(this.core.serveCatchup(sr.to, records)),
        (e: unknown) => this.log(`replica ${this.config.id}: cannot serve catch-up of slots ${sr.fromSlot}..${sr.toSlot} to ${sr.to}: ${String(e)}`),
      )
    }
  }

  private onPeerMessage(m: Message): void {
    if (this.stopping || this.failed !== null) return
    if (m.type === 'catchupReply' && this.repairs.size > 0) this.maybeRepair(m.records)
    this.handle(this.core.step(m))
  }

  private compacting = false
  private compactSoon(): void {
    if (this.compacting) return
    this.compacting = true
    const step = (): void => {
      this.store.compact().then(
        (r) => {
          if (!r.done && !this.stopping) setImmediate(step)
          else this.compacting = false
        },
        (e: unknown) => {
          this.compacting = false
          this.log(`replica ${this.config.id}: compaction failed: ${String(e)}`)
        },
      )
    }
    setImmediate(step)
  }

  // ---------------------------------------------------------------- corruption repair

  /**
   * Refetch a corrupt slot from peers; resolves when repaired or after a bounded wait.
   * The request is sent again every REPAIR_RETRY_MS: right after a restart the peer
   * links may not be up yet, and the transport drops what it cannot send.
   */
  private repair(slot: number): Promise<void> {
    return new Promise((resolve) => {
      let r = this.repairs.get(slot)
      if (r === undefined) {
        const entry = { waiters: [] as (() => void)[], sentAt: Date.now() }
        r = entry
        this.repairs.set(slot, entry)
        this.log(`replica ${this.config.id}: slot ${slot} is corrupt or missing on disk: refetching it from peers`)
        const ask = (): void => {
          if (this.stopping || this.repairs.get(slot) !== entry) return
          if (Date.now() - entry.sentAt > REPAIR_GIVE_UP_MS) {
            this.repairs.delete(slot)
            this.log(`replica ${this.config.id}: slot ${slot}: no peer sent it back within ${REPAIR_GIVE_UP_MS} ms; will try again on the next read`)
            for (const f of entry.waiters) f()
            return
          }
          const n = this.config.peers.length
          for (let p = 0; p < n; p++) if (p !== this.config.id) this.transport.send(this.core.repairRequest(p, slot, slot + 1))
          setTimeout(ask, REPAIR_RETRY_MS).unref()
        }
        ask()
      }
      const done = (): void => resolve()
      r.waiters.push(done)
      setTimeout(done, REPAIR_WAIT_MS).unref()
    })
  }

  private maybeRepair(records: readonly ChosenRecord[]): void {
    const wanted = records.filter((r) => this.repairs.has(r.slot))
    if (wanted.length === 0) return
    this.store.repair(wanted).then(
      () => {
        for (const r of wanted) {
          const w = this.repairs.get(r.slot)
          this.repairs.delete(r.slot)
          this.log(`replica ${this.config.id}: slot ${r.slot} repaired from a peer`)
          for (const f of w?.waiters ?? []) f()
        }
      },
      (e: unknown) => this.log(`replica ${this.config.id}: repair failed: ${String(e)}`),
    )
  }

  /** Run a read; on a corrupt record, refetch it from a peer once and retry. */
  private async readRepairing<T>(read: () => Promise<T>): Promise<T> {
    try {
      return await read()
    } catch (e) {
      if (!isStorageError(e) || e.code !== 'corrupt') throw this.mapStorageError(e)
      const slot = (e as { slot?: unknown }).slot
      if (typeof slot === 'number') await this.repair(slot)
      try {
        return await read()
      } catch (e2) {
        throw this.mapStorageError(e2)
      }
    }
  }

  private mapStorageError(e: unknown): Error {
    if (e instanceof QuipuError) return e
    if (isStorageError(e)) {
      if (e.code === 'trimmed') return new QuipuError('trimmed', e.message, pick(e, ['trimmedBefore', 'stream']))
      if (e.code === 'corrupt') return new QuipuError('corrupt', `${e.message}; the replica is refetching it from a peer, try again or read from another replica`)
      if (e.code === 'closed') return new QuipuError('unavailable', 'replica is shutting down')
    }
    return e instanceof Error ? e : new Error(String(e))
  }

  // ---------------------------------------------------------------- ReplicaApi

  private leaderUrl(): string | null {
    const l = this.core.status().leader
    return l === null ? null : urlOf(this.config.peers[l]!)
  }

  private notLeader(): QuipuError {
    const leader = this.leaderUrl()
    const st = this.core.status()
    if (st.leader === this.config.id) return new QuipuError('unavailable', 'this replica leads but cannot reach a quorum')
    return leader === null
      ? new QuipuError('unavailable', 'no leader is known right now (election in progress or no quorum); retry shortly')
      : new QuipuError('not_leader', `replica ${st.leader} is the leader`, { leader })
  }

  private propose(op: Op): Promise<ProposalResult> {
    if (this.stopping || this.failed !== null) return Promise.reject(new QuipuError('unavailable', 'replica is shutting down'))
    if (this.core.status().role !== 'leader') return Promise.reject(this.notLeader())
    const requestId = this.nextRequestId++
    return new Promise<ProposalResult>((resolve, reject) => {
      this.proposals.set(requestId, { resolve, reject, deadline: Date.now() + REQUEST_TIMEOUT_MS })
      // Coalesce the requests of one event-loop turn into one proposeBatch: bigger
      // slots, fewer fsyncs.
      this.batch.push({ requestId, op })
      if (!this.batchScheduled) {
        this.batchScheduled = true
        setImmediate(() => {
          this.batchScheduled = false
          const items = this.batch
          this.batch = []
          this.handle(this.core.proposeBatch(items))
        })
      }
    })
  }

  private proposalError(r: Extract<ProposalResult, { ok: false }>): QuipuError {
    switch (r.code) {
      case 'not_leader':
        return this.notLeader()
      case 'too_large':
        return new QuipuError('too_large', r.message)
      case 'overloaded':
        return new QuipuError('overloaded', r.message)
      case 'sequence_too_old':
        return new QuipuError('conflict', r.message)
      case 'conflict':
        return new QuipuError('conflict', r.message, r.conflict === undefined ? {} : { conflict: r.conflict })
      default:
        return new QuipuError('bad_request', r.message)
    }
  }

  async append(req: AppendRequest, opts: CallOptions = {}): Promise<AppendAnswer> {
    return this.orForward(opts, () => this.appendHere(req), () => this.forward<AppendAnswer>('POST', '/v1/append', req))
  }

  private async appendHere(req: AppendRequest): Promise<AppendAnswer> {
    if ((req.clientId === undefined) !== (req.seq === undefined)) throw new QuipuError('bad_request', 'clientId and seq go together')
    // Absent ids are left out, not set to undefined: the wire would turn them into null.
    const base: Op =
      req.clientId !== undefined && req.seq !== undefined
        ? { kind: 'append', clientId: req.clientId, seq: req.seq, entries: req.entries }
        : { kind: 'append', entries: req.entries }
    const op: Op = req.reads !== undefined && req.reads.length > 0 ? { ...base, reads: req.reads } : base
    const r = await this.propose(op)
    if (!r.ok) throw this.proposalError(r)
    const refused = r.refused
    if (refused === undefined) {
      const positions = new Array<number>(r.count)
      for (let i = 0; i < r.count; i++) positions[i] = r.firstPosition + i
      return { positions }
    }
    // Per-entry conditions: the accepted entries took consecutive positions, in order.
    const positions = new Array<number>(r.count + refused.length)
    let next = r.firstPosition
    let k = 0
    for (let i = 0; i < positions.length; i++) {
      if (k < refused.length && refused[k]!.index === i) {
        positions[i] = -1
        k++
      } else {
        positions[i] = next++
      }
    }
    return { positions, refused }
  }

  async trim(stream: string, before: number, opts: CallOptions = {}): Promise<{ trimmedBefore: number }> {
    return this.orForward(
      opts,
      () => this.trimHere(stream, before),
      () => this.forward<{ trimmedBefore: number }>('POST', `/v1/streams/${encodeURIComponent(stream)}/trim`, { before }),
    )
  }

  private async trimHere(stream: string, before: number): Promise<{ trimmedBefore: number }> {
    const r = await this.propose({ kind: 'trim', stream, before })
    if (!r.ok) throw this.proposalError(r)
    return { trimmedBefore: this.store.trimPoint(stream) }
  }

  async tail(streams: readonly string[] = [], opts: CallOptions = {}): Promise<TailResult> {
    const q = streams.length > 0 ? `?streams=${encodeURIComponent(streams.join(','))}` : ''
    return this.orForward(opts, () => this.tailHere(streams), () => this.forward<TailResult>('GET', `/v1/tail${q}`))
  }

  /**
   * Run `here`; if this replica is not the leader and the caller allows it, forward to
   * the leader instead (one hop: the forwarded request itself asks for no forwarding).
   */
  private async orForward<T>(opts: CallOptions, here: () => Promise<T>, forward: () => Promise<T>): Promise<T> {
    try {
      return await here()
    } catch (e) {
      if (opts.forward === true && e instanceof QuipuError && e.code === 'not_leader' && typeof e.details.leader === 'string') return forward()
      throw e
    }
  }

  private forwardPool: { url: string; pool: Pool } | null = null

  /** One request to the leader's HTTP API, in msgpack; its errors come back as QuipuErrors. */
  private async forward<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
    const leader = this.leaderUrl()
    if (leader === null) throw new QuipuError('unavailable', 'no leader is known right now; retry shortly')
    if (this.forwardPool?.url !== leader) {
      void this.forwardPool?.pool.close()
      this.forwardPool = { url: leader, pool: new Pool(leader, { connections: 32 }) }
    }
    let res
    try {
      res = await this.forwardPool.pool.request({
        method,
        path,
        headers: { accept: 'application/msgpack', 'x-quipu-forward': 'false', ...(body === undefined ? {} : { 'content-type': 'application/msgpack' }) },
        body: body === undefined ? undefined : encodeMsgpack(body, { ignoreUndefined: true }),
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      })
    } catch (e) {
      throw new QuipuError('unavailable', `the leader (${leader}) could not be reached: ${(e as Error).message}`)
    }
    const buf = new Uint8Array(await res.body.arrayBuffer())
    let decoded: unknown
    try {
      decoded = decodeMsgpack(buf)
    } catch {
      throw new QuipuError('unavailable', `the leader (${leader}) answered ${res.statusCode} with an undecodable body`)
    }
    if (res.statusCode < 300) return decoded as T
    const err = (decoded as { error?: { code?: string; message?: string } & Record<string, unknown> }).error ?? {}
    const { code, message, ...details } = err
    const known = typeof code === 'string' && code in ERROR_CODES
    throw new QuipuError(known ? (code as ErrorCode) : 'unavailable', `${message ?? `status ${res.statusCode}`} (forwarded to ${leader})`, details)
  }

  private async tailHere(streams: readonly string[]): Promise<TailResult> {
    if (this.core.status().role !== 'leader') throw this.notLeader()
    const requestId = this.nextRequestId++
    const r = await new Promise<ReadIndexResult>((resolve, reject) => {
      this.reads.set(requestId, { resolve, reject, deadline: Date.now() + REQUEST_TIMEOUT_MS })
      this.handle(this.core.readIndex(requestId))
    })
    if (!r.ok) throw r.code === 'overloaded' ? new QuipuError('overloaded', 'too many tail queries waiting') : this.notLeader()
    // The read is confirmed; wait until what the core applied is durable in the store
    // (reads are served from the store).
    await this.waitStoreTail(r.tail)
    const out: Record<string, number> = {}
    for (const s of streams) out[s] = await this.store.streamLast(s)
    return { tail: r.tail, streams: out }
  }

  private async waitStoreTail(tail: number): Promise<void> {
    for (let i = 0; i < 1000 && this.store.tail() < tail; i++) {
      await (this.lastPersist ?? new Promise((r) => setTimeout(r, 1)))
    }
  }

  readLog(range: ReadRange): Promise<ReadResult> {
    return this.readRepairing(() => this.store.readLog(range))
  }

  readStream(name: string, range: ReadRange): Promise<ReadResult> {
    return this.readRepairing(() => this.store.readStream(name, range))
  }

  status(): ReplicaStatus {
    const st = this.core.status()
    const trim: Record<string, number> = {}
    for (const [k, v] of this.core.applied.trims) trim[k] = v
    return {
      id: this.config.id,
      role: st.role,
      leader: st.leader === null ? null : urlOf(this.config.peers[st.leader]!),
      ballot: ballotString(st.ballot),
      commitPosition: st.nextPosition,
      commitSlot: st.commitSlot,
      trim,
      peers: this.config.peers.map((p, id) => ({ id, url: urlOf(p), connected: id === this.config.id || this.transport.connected(id) })),
      voting: st.voting,
      incarnation: st.incarnation,
      promised: ballotString(st.promised),
      inflightSlots: st.inflight,
      queuedOps: st.queued,
      storeTail: this.store.tail(),
      reclaimed: this.store.reclaimed(),
      lastTs: st.lastTs,
      transport: this.transport.stats?.() ?? null,
    }
  }

  subscribe(
    streams: readonly string[],
    from: number,
    onEntries: (entries: readonly ApiEntry[], next: number) => void,
    onError: (err: Error) => void,
  ): Subscription {
    const unique = [...new Set(streams)]
    const s: Subscriber = { streams: unique, streamSet: new Set(unique), cursor: from, onEntries, onError, pumping: false, again: false, closed: false }
    this.subscribers.add(s)
    this.pump(s)
    return {
      close: () => {
        s.closed = true
        this.subscribers.delete(s)
      },
    }
  }

  /**
   * Newly chosen slots (already durable in the store): a subscriber that is caught up
   * gets their entries straight from memory, built once for all subscribers; one that
   * is behind (or already reading) catches up from the store.
   */
  private pushChosen(records: readonly ChosenRecord[]): void {
    const first = records[0]!.firstPosition
    let all: ApiEntry[] | null = null
    let end = first
    const build = (): ApiEntry[] => {
      const out: ApiEntry[] = []
      for (const r of records) {
        const es = storedEntries(r)
        for (let i = 0; i < es.length; i++) out.push({ position: r.firstPosition + i, streams: es[i]!.streams, data: es[i]!.data, ts: r.ts })
        end = r.firstPosition + es.length
      }
      return out
    }
    for (const s of this.subscribers) {
      if (s.closed) continue
      if (s.pumping || s.cursor !== first) {
        this.pump(s)
        continue
      }
      all ??= build()
      const mine = s.streamSet.size === 0 ? all : subscribedOf(all, s.streamSet)
      s.cursor = end
      if (mine.length > 0) s.onEntries(mine, end)
    }
  }

  /** Push what the store holds past the subscriber's cursor; one pump at a time per subscriber. */
  private pump(s: Subscriber): void {
    if (s.closed) return
    if (s.pumping) {
      s.again = true
      return
    }
    s.pumping = true
    const run = async (): Promise<void> => {
      do {
        s.again = false
        while (!s.closed && s.cursor < this.store.tail()) {
          const res = await this.readSubscribed(s.streams, s.cursor)
          if (s.closed) return
          if (res.next <= s.cursor && res.entries.length === 0) break
          s.cursor = res.next
          if (res.entries.length > 0) s.onEntries(res.entries, res.next)
        }
      } while (s.again && !s.closed)
    }
    run().then(
      () => {
        s.pumping = false
        if (s.again) this.pump(s)
      },
      (e: unknown) => {
        s.pumping = false
        s.closed = true
        this.subscribers.delete(s)
        s.onError(this.mapStorageError(e))
      },
    )
  }

  /** Entries of any of `streams` (all when empty) from `from`, merged by position. */
  private async readSubscribed(streams: readonly string[], from: number): Promise<ReadResult> {
    if (streams.length === 0) return this.readLog({ from, limit: SUBSCRIBE_BATCH })
    if (streams.length === 1) return this.readStream(streams[0]!, { from, limit: SUBSCRIBE_BATCH })
    const parts = await Promise.all(streams.map((st) => this.readStream(st, { from, limit: SUBSCRIBE_BATCH })))
    // Complete only up to the smallest `next`: beyond it some stream was not read yet.
    const upto = Math.min(...parts.map((p) => p.next))
    const byPos = new Map<number, ApiEntry>()
    for (const p of parts) for (const e of p.entries) if (e.position < upto) byPos.set(e.position, e)
    const entries = [...byPos.values()].sort((a, b) => a.position - b.position)
    return { entries, next: upto }
  }
}

function pick(o: object, keys: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const k of keys) if (k in o) out[k] = (o as Record<string, unknown>)[k]
  return out
}

/** The entries naming a subscribed stream: `entries` itself when all do (the common case: no copy). */
function subscribedOf(entries: ApiEntry[], streams: ReadonlySet<string>): ApiEntry[] {
  const names = (e: ApiEntry): boolean => {
    for (const st of e.streams) if (streams.has(st)) return true
    return false
  }
  let i = 0
  while (i < entries.length && names(entries[i]!)) i++
  if (i === entries.length) return entries
  const out = entries.slice(0, i)
  for (i++; i < entries.length; i++) if (names(entries[i]!)) out.push(entries[i]!)
  return out
}
