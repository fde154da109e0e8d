// An in-memory shared log and a LogClient over it. One `MemoryLog` stands for the log
// service; every `MemoryLogClient` over it stands for one process talking to it, so
// several runtimes on one MemoryLog simulate several processes on one log. It follows the
// HTTP contract's semantics (positions, per-stream index, trim, exactly-once sessions,
// linearizable tail, log time on entries) without replication: the log server proper is
// built elsewhere and reached through the same LogClient interface.

import { AppendBatcher } from './append-batcher.ts'
import type { AppendBatcherConfig, AppendBatcherStats, AppendRequestId } from './append-batcher.ts'
import { LogError, assertRange, assertStreamName, assertTrimPoint } from './log-client.ts'
import type {
  AppendEntry,
  AppendOptions,
  ConflictDetails,
  ReadDependency,
  EntriesListener,
  LogClient,
  LogEntry,
  ReadRange,
  ReadResult,
  Subscription,
  SubscriptionErrorListener,
  TailResult,
} from './log-client.ts'

export interface MemoryLogOptions {
  /** Source of log time (ms) for new entries; made non-decreasing by the log. Default Date.now. */
  readonly clock?: () => number
  /** Bytes of one entry's data, at most. Default 1 MiB. */
  readonly entryBytesMax?: number
  /** Bytes of one append request (data plus stream names), at most. Default 4 MiB. */
  readonly requestBytesMax?: number
  /** Entries in one read page, at most (a larger `limit` is capped). Default 10,000. */
  readonly readLimitMax?: number
  /** Entries in one subscription push, at most. Default 4,096. */
  readonly pushEntriesMax?: number
  /** Recent request seqs remembered per client for exactly-once. Default 64 (as the server). */
  readonly sessionWindow?: number
  /**
   * (stream, key) pairs whose last write position is remembered for conditional appends,
   * at most. Default 200,000 (as the server's leader). Past it the least recently written
   * pair is forgotten and the watermark rises to its position: a read of a forgotten or
   * never-written key at a version below the watermark conflicts (conservative).
   */
  readonly conflictKeysMax?: number
}

/** What an injected append fault does: fail before storing, or store and lose the answer. */
export type AppendFaultMode = 'fail-before' | 'lose-ack'

interface MemorySubscriber {
  readonly streams: ReadonlySet<string>
  cursor: number
  readonly onEntries: EntriesListener
  readonly onError: SubscriptionErrorListener | undefined
  scheduled: boolean
  closed: boolean
}

export class MemoryLog {
  private readonly entries: LogEntry[] = []
  private readonly streamIndex = new Map<string, number[]>()
  private readonly streamTrim = new Map<string, number>()
  /** Last position of each stream; kept when trimming removes index entries. */
  private readonly streamLast = new Map<string, number>()
  private readonly sessions = new Map<string, Map<number, number[]>>()
  private readonly subscribers = new Set<MemorySubscriber>()
  private readonly clock: () => number
  private lastTs = -Infinity
  private faults: Array<{ mode: AppendFaultMode }> = []
  /** Last write position per `stream\0key`; evicted by first write, as the leader does (core.ts). */
  private readonly conflictTable = new Map<string, number>()
  /** The table's keys in first-write order from conflictOrderHead on (not the Map's order: see core.ts). */
  private conflictOrder: string[] = []
  private conflictOrderHead = 0
  private conflictWatermarkValue = -1
  readonly conflictKeysMax: number
  readonly entryBytesMax: number
  readonly requestBytesMax: number
  readonly readLimitMax: number
  readonly pushEntriesMax: number
  readonly sessionWindow: number

  constructor(options: MemoryLogOptions = {}) {
    this.clock = options.clock ?? Date.now
    this.entryBytesMax = options.entryBytesMax ?? 1 << 20
    this.requestBytesMax = options.requestBytesMax ?? 4 << 20
    this.readLimitMax = options.readLimitMax ?? 10_000
    this.pushEntriesMax = options.pushEntriesMax ?? 4096
    this.sessionWindow = options.sessionWindow ?? 64
    this.conflictKeysMax = options.conflictKeysMax ?? 200_000
    for (const [k, v] of Object.entries({ conflictKeysMax: this.conflictKeysMax, entryBytesMax: this.entryBytesMax, requestBytesMax: this.requestBytesMax, readLimitMax: this.readLimitMax, pushEntriesMax: this.pushEntriesMax, sessionWindow: this.sessionWindow })) {
      if (!Number.isSafeInteger(v) || v < 1) throw new RangeError(`MemoryLogOptions.${k} must be a positive integer, got ${v}`)
    }
  }

  /** Next position to be assigned. */
  get length(): number {
    return this.entries.length
  }

  /** Makes the next `count` appends fail as `mode` says (with `unavailable`). For fault tests. */
  injectAppendFaults(count: number, mode: AppendFaultMode): void {
    for (let i = 0; i < count; i++) this.faults.push({ mode })
  }

  /**
   * Reads of a forgotten or never-written key below this position conflict. Starts at -1
   * (this log remembers every write from its start); rises as the table evicts, and to
   * the tail on `simulateLeaderChange()`.
   */
  get conflictWatermark(): number {
    return this.conflictWatermarkValue
  }

  /** What a new leader does: forget every remembered write, watermark = last position. */
  simulateLeaderChange(): void {
    this.conflictTable.clear()
    this.conflictOrder = []
    this.conflictOrderHead = 0
    this.conflictWatermarkValue = this.entries.length - 1
  }

  /**
   * Appends one request's entries as one slot: contiguous positions, one timestamp. With
   * `options.reads`, conditional: refused with `conflict` (nothing stored) when a key read
   * was written after the version read. Exactly-once dedupe comes first, so a retried
   * commit answers its original positions.
   */
  append(entries: readonly AppendEntry[], id?: AppendRequestId, options?: AppendOptions): number[] {
    const fault = this.faults.shift()
    if (fault?.mode === 'fail-before') throw new LogError('unavailable', 'injected fault: append not stored')
    const positions = this.appendOnce(entries, id, options?.reads)
    if (fault?.mode === 'lose-ack') throw new LogError('unavailable', 'injected fault: append stored, answer lost')
    return positions
  }

  private checkReads(reads: readonly ReadDependency[]): ConflictDetails | null {
    for (const r of reads) {
      const last = this.conflictTable.get(`${r.stream}\u0000${r.key}`)
      if (last !== undefined) {
        if (last > r.version) return { stream: r.stream, key: r.key, version: r.version, position: last }
      } else if (r.version < this.conflictWatermarkValue) {
        return { stream: r.stream, key: r.key, version: r.version, position: -1, watermark: this.conflictWatermarkValue }
      }
    }
    return null
  }

  private recordWrites(e: AppendEntry, position: number): void {
    if (e.keys === undefined || e.keys.length === 0) return
    for (const s of e.streams) {
      for (const key of e.keys) {
        const k = `${s}\u0000${key}`
        const size = this.conflictTable.size
        this.conflictTable.set(k, position)
        if (this.conflictTable.size > size) this.conflictOrder.push(k)
      }
    }
    while (this.conflictTable.size > this.conflictKeysMax) {
      const k = this.conflictOrder[this.conflictOrderHead++]!
      const pos = this.conflictTable.get(k)!
      this.conflictTable.delete(k)
      if (pos > this.conflictWatermarkValue) this.conflictWatermarkValue = pos
    }
    if (this.conflictOrderHead > 1024 && this.conflictOrderHead * 2 > this.conflictOrder.length) {
      this.conflictOrder = this.conflictOrder.slice(this.conflictOrderHead)
      this.conflictOrderHead = 0
    }
  }

  private appendOnce(entries: readonly AppendEntry[], id: AppendRequestId | undefined, reads?: readonly ReadDependency[]): number[] {
    if (id !== undefined) {
      const session = this.sessions.get(id.clientId)
      const seen = session?.get(id.seq)
      if (seen !== undefined) return seen.slice()
      if (session !== undefined && session.size >= this.sessionWindow) {
        const oldest = session.keys().next().value
        if (oldest !== undefined && id.seq < oldest) throw new LogError('bad_request', `sequence ${id.seq} is older than the session window`)
      }
    }
    let requestBytes = 0
    for (const e of entries) {
      if (e.streams.length === 0) throw new LogError('bad_request', 'an entry must name at least one stream')
      for (const s of e.streams) assertStreamName(s)
      if (new Set(e.streams).size !== e.streams.length) throw new LogError('bad_request', 'an entry names a stream twice')
      if (e.data.byteLength > this.entryBytesMax) throw new LogError('too_large', `entry of ${e.data.byteLength} bytes exceeds ${this.entryBytesMax}`)
      requestBytes += e.data.byteLength
      for (const s of e.streams) requestBytes += s.length
    }
    if (requestBytes > this.requestBytesMax) throw new LogError('too_large', `request of ${requestBytes} bytes exceeds ${this.requestBytesMax}`)
    if (reads !== undefined && reads.length > 0) {
      const conflict = this.checkReads(reads)
      if (conflict !== null) {
        throw new LogError(
          'conflict',
          `${conflict.stream}/${conflict.key} was written ${conflict.position >= 0 ? `at position ${conflict.position}` : `at or before ${conflict.watermark} (not remembered)`}, after the version read (${conflict.version})`,
          { conflict },
        )
      }
    }
    const ts = Math.max(this.lastTs, this.clock())
    this.lastTs = ts
    const positions: number[] = []
    for (const e of entries) {
      const position = this.entries.length
      const streams = Object.freeze(e.streams.slice())
      // Copy: the caller may reuse its buffer.
      this.entries.push(Object.freeze({ position, streams, data: e.data.slice(), ts }))
      for (const s of streams) {
        let index = this.streamIndex.get(s)
        if (index === undefined) this.streamIndex.set(s, (index = []))
        index.push(position)
        this.streamLast.set(s, position)
      }
      this.recordWrites(e, position)
      positions.push(position)
    }
    if (id !== undefined) {
      let session = this.sessions.get(id.clientId)
      if (session === undefined) this.sessions.set(id.clientId, (session = new Map()))
      session.set(id.seq, positions.slice())
      if (session.size > this.sessionWindow) session.delete(session.keys().next().value!)
    }
    for (const sub of this.subscribers) this.schedule(sub, false)
    return positions
  }

  read(range: ReadRange): ReadResult {
    assertRange(range)
    const tail = this.entries.length
    const to = Math.min(range.to ?? tail, tail)
    const limit = Math.min(range.limit ?? this.readLimitMax, this.readLimitMax)
    const out: LogEntry[] = []
    let p = range.from
    for (; p < to && out.length < limit; p++) {
      const e = this.entries[p]!
      if (this.isReclaimed(e)) throw new LogError('trimmed', `position ${p} has been trimmed`)
      out.push(e)
    }
    return { entries: out, next: out.length === limit ? p : Math.max(to, range.from) }
  }

  readStream(stream: string, range: ReadRange): ReadResult {
    assertStreamName(stream)
    assertRange(range)
    const trimmedBefore = this.streamTrim.get(stream) ?? 0
    if (range.from < trimmedBefore) throw new LogError('trimmed', `stream ${stream} is trimmed before ${trimmedBefore}; asked from ${range.from}`)
    const tail = this.entries.length
    const to = Math.min(range.to ?? tail, tail)
    const limit = Math.min(range.limit ?? this.readLimitMax, this.readLimitMax)
    const index = this.streamIndex.get(stream) ?? []
    const out: LogEntry[] = []
    for (let i = lowerBound(index, range.from); i < index.length && out.length < limit; i++) {
      const p = index[i]!
      if (p >= to) break
      out.push(this.entries[p]!)
    }
    const next = out.length === limit ? out[out.length - 1]!.position + 1 : Math.max(to, range.from)
    return { entries: out, next }
  }

  tail(streams: readonly string[] = []): TailResult {
    const result: Record<string, number> = {}
    for (const s of streams) {
      assertStreamName(s)
      result[s] = this.streamLast.get(s) ?? -1
    }
    return { tail: this.entries.length, streams: result }
  }

  trim(stream: string, before: number): { trimmedBefore: number } {
    assertStreamName(stream)
    assertTrimPoint(before)
    const trimmedBefore = Math.max(this.streamTrim.get(stream) ?? 0, Math.min(before, this.entries.length))
    this.streamTrim.set(stream, trimmedBefore)
    // Storage is reclaimed lazily: an entry counts as gone once every one of its streams is trimmed past it.
    const index = this.streamIndex.get(stream)
    if (index !== undefined) index.splice(0, lowerBound(index, trimmedBefore))
    for (const sub of this.subscribers) if (sub.streams.has(stream)) this.schedule(sub, false)
    return { trimmedBefore }
  }

  subscribe(streams: readonly string[], from: number, onEntries: EntriesListener, onError?: SubscriptionErrorListener): Subscription {
    for (const s of streams) assertStreamName(s)
    if (!Number.isSafeInteger(from) || from < 0) throw new LogError('bad_request', `bad subscription start ${from}`)
    const sub: MemorySubscriber = { streams: new Set(streams), cursor: from, onEntries, onError, scheduled: false, closed: false }
    this.subscribers.add(sub)
    this.schedule(sub, false)
    return {
      close: () => {
        sub.closed = true
        this.subscribers.delete(sub)
      },
    }
  }

  private isReclaimed(e: LogEntry): boolean {
    for (const s of e.streams) if ((this.streamTrim.get(s) ?? 0) <= e.position) return false
    return true
  }

  /** Live pushes go out on a microtask; long catch-ups continue on later turns (setImmediate). */
  private schedule(sub: MemorySubscriber, later: boolean): void {
    if (sub.scheduled || sub.closed) return
    sub.scheduled = true
    const run = (): void => {
      sub.scheduled = false
      if (!sub.closed) this.deliver(sub)
    }
    if (later) setImmediate(run)
    else queueMicrotask(run)
  }

  private deliver(sub: MemorySubscriber): void {
    const tail = this.entries.length
    for (const s of sub.streams) {
      const trimmedBefore = this.streamTrim.get(s) ?? 0
      if (sub.cursor < trimmedBefore) {
        sub.closed = true
        this.subscribers.delete(sub)
        sub.onError?.(new LogError('trimmed', `subscription at ${sub.cursor} fell below the trim point ${trimmedBefore} of ${s}`))
        return
      }
    }
    if (sub.cursor >= tail) return
    const out: LogEntry[] = []
    let p = sub.cursor
    if (sub.streams.size === 1) {
      const [only] = sub.streams
      const index = this.streamIndex.get(only!) ?? []
      let i = lowerBound(index, p)
      for (; i < index.length && out.length < this.pushEntriesMax; i++) out.push(this.entries[index[i]!]!)
      p = out.length === this.pushEntriesMax ? out[out.length - 1]!.position + 1 : tail
    } else {
      for (; p < tail && out.length < this.pushEntriesMax; p++) {
        const e = this.entries[p]!
        for (const s of e.streams) {
          if (sub.streams.has(s)) {
            out.push(e)
            break
          }
        }
      }
    }
    sub.cursor = p
    if (out.length > 0 || p >= tail) sub.onEntries(out, p)
    if (sub.cursor < this.entries.length) this.schedule(sub, true)
  }
}

function lowerBound(sorted: readonly number[], value: number): number {
  let lo = 0
  let hi = sorted.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (sorted[mid]! < value) lo = mid + 1
    else hi = mid
  }
  return lo
}

// ---------------------------------------------------------------------------------------

export interface MemoryLogClientOptions {
  /** Batching of appends (see AppendBatcherConfig for the defaults). */
  readonly batching?: Partial<AppendBatcherConfig>
  /** Identity for exactly-once; default a random UUID. */
  readonly clientId?: string
  /** Simulated one-way latency of every call, in ms. Default 0 (a microtask hop). */
  readonly latencyMs?: number
}

/** Calls made to the log, by kind: lets tests assert "no round trip", "one tail check". */
export interface MemoryLogClientCalls {
  appendRequests: number
  read: number
  readStream: number
  tail: number
  trim: number
  subscribe: number
}

export class MemoryLogClient implements LogClient {
  readonly log: MemoryLog
  readonly calls: MemoryLogClientCalls = { appendRequests: 0, read: 0, readStream: 0, tail: 0, trim: 0, subscribe: 0 }
  private readonly batcher: AppendBatcher
  private readonly latencyMs: number
  private readonly subscriptions = new Set<Subscription>()
  private closed = false

  constructor(log: MemoryLog, options: MemoryLogClientOptions = {}) {
    this.log = log
    this.latencyMs = options.latencyMs ?? 0
    if (!Number.isFinite(this.latencyMs) || this.latencyMs < 0) throw new RangeError(`MemoryLogClientOptions.latencyMs must be >= 0, got ${this.latencyMs}`)
    this.batcher = new AppendBatcher(
      async (entries, id, reads) => {
        await this.hop()
        this.calls.appendRequests++
        const positions = log.append(entries, id, reads === undefined ? undefined : { reads })
        await this.hop()
        return positions
      },
      { entryBytesMax: log.entryBytesMax, batchBytesMax: Math.min(1 << 20, log.requestBytesMax), ...options.batching },
      options.clientId,
    )
  }

  get clientId(): string {
    return this.batcher.clientId
  }

  get batchStats(): Readonly<AppendBatcherStats> {
    return this.batcher.stats
  }

  append(entries: readonly AppendEntry[], options?: AppendOptions): Promise<number[]> {
    if (this.closed) return Promise.reject(closedError())
    if (options?.reads !== undefined) return this.batcher.appendConditional(entries, options.reads)
    return this.batcher.append(entries)
  }

  async read(range: ReadRange): Promise<ReadResult> {
    await this.hop()
    this.calls.read++
    return this.log.read(range)
  }

  async readStream(stream: string, range: ReadRange): Promise<ReadResult> {
    await this.hop()
    this.calls.readStream++
    return this.log.readStream(stream, range)
  }

  async tail(streams?: readonly string[]): Promise<TailResult> {
    await this.hop()
    this.calls.tail++
    return this.log.tail(streams)
  }

  async trim(stream: string, before: number): Promise<{ trimmedBefore: number }> {
    await this.hop()
    this.calls.trim++
    return this.log.trim(stream, before)
  }

  subscribe(streams: readonly string[], from: number, onEntries: EntriesListener, onError?: SubscriptionErrorListener): Subscription {
    if (this.closed) throw closedError()
    this.calls.subscribe++
    let open = true
    const inner = this.log.subscribe(
      streams,
      from,
      (entries, next) => {
        if (open) onEntries(entries, next)
      },
      (err) => {
        if (!open) return
        open = false
        this.subscriptions.delete(sub)
        onError?.(err)
      },
    )
    const sub: Subscription = {
      close: () => {
        open = false
        inner.close()
        this.subscriptions.delete(sub)
      },
    }
    this.subscriptions.add(sub)
    return sub
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.batcher.close()
    for (const sub of [...this.subscriptions]) sub.close()
  }

  /** One trip through the simulated network; fails with `closed` once the client is closed. */
  private async hop(): Promise<void> {
    if (this.closed) throw closedError()
    if (this.latencyMs > 0) await new Promise((resolve) => setTimeout(resolve, this.latencyMs))
    else await Promise.resolve()
    if (this.closed) throw closedError()
  }
}

function closedError(): LogError {
  return new LogError('closed', 'log client closed')
}
