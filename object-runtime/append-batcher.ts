// Client-side batching of appends, shared by every LogClient implementation (memory now,
// HTTP later): concurrent `append` calls are gathered into one request to the log, the
// request carries (clientId, seq) and is retried with the same seq, so the log stores it
// once (exactly-once appends, DESIGN.md "The log service").
//
// Order of things: a call is validated, queued, then packed into a batch when the batch
// fills (entries or bytes) or when the linger expires; at most `inFlightBatchesMax`
// batches are outstanding — while the window is full, calls keep gathering, which is what
// makes batches large under load. Calls of one `append` stay together in one batch.

import { randomUUID } from 'node:crypto'
import { LogError, assertConflictKeys, assertReads, assertStreamName, entryBytes, isLogError } from './log-client.ts'
import type { AppendEntry, ReadDependency } from './log-client.ts'

export interface AppendBatcherConfig {
  /**
   * How long a batch that is not full waits for more appends, in ms. 0 (the default) means
   * "until the end of the current event-loop turn" (setImmediate): every append issued in
   * the same turn shares a batch and no timer latency is added.
   */
  readonly lingerMs: number
  /** Entries in one batch, at most. Default 1024. */
  readonly batchEntriesMax: number
  /** Bytes (data plus stream names) in one batch, at most. Default 1 MiB. */
  readonly batchBytesMax: number
  /** Bytes of one entry, at most; larger entries fail with `too_large`. Default 1 MiB. */
  readonly entryBytesMax: number
  /** Batches sent and not yet answered, at most. Default 8 (the server keeps 64 recent seqs per client). */
  readonly inFlightBatchesMax: number
  /** Entries queued and not yet sent, at most; past it `append` waits for room. Default 65,536. */
  readonly queueEntriesMax: number
  /** Attempts per batch on `unavailable` (1 = no retry). Default 6. */
  readonly retryAttemptsMax: number
  /** Wait before the first retry, doubled on each further one, in ms. Default 20. */
  readonly retryBackoffMs: number
  /**
   * Conditional appends (transaction commits) in one request, at most, when the log client
   * can send them together (SendConditionalBatch). Default 64: at most the log's
   * exactly-once window (64 recent seqs per client), so a retried batch is answered from
   * the window. Up to `inFlightBatchesMax` such batches are outstanding, each on its own
   * session lane (`<clientId>/t<lane>`), one batch per lane at a time.
   */
  readonly conditionalBatchMax: number
}

export const DEFAULT_APPEND_BATCHER_CONFIG: AppendBatcherConfig = Object.freeze({
  lingerMs: 0,
  batchEntriesMax: 1024,
  batchBytesMax: 1 << 20,
  entryBytesMax: 1 << 20,
  inFlightBatchesMax: 8,
  queueEntriesMax: 65_536,
  retryAttemptsMax: 6,
  retryBackoffMs: 20,
  conditionalBatchMax: 64,
})

export function validateAppendBatcherConfig(partial: Partial<AppendBatcherConfig> = {}): AppendBatcherConfig {
  const c = { ...DEFAULT_APPEND_BATCHER_CONFIG, ...partial }
  const int = (name: keyof AppendBatcherConfig, min: number): void => {
    const v = c[name]
    if (!Number.isSafeInteger(v) || v < min) throw new RangeError(`AppendBatcherConfig.${name} must be an integer >= ${min}, got ${v}`)
  }
  int('lingerMs', 0)
  int('batchEntriesMax', 1)
  int('batchBytesMax', 1)
  int('entryBytesMax', 1)
  int('inFlightBatchesMax', 1)
  int('queueEntriesMax', 1)
  int('retryAttemptsMax', 1)
  int('retryBackoffMs', 0)
  int('conditionalBatchMax', 1)
  if (c.queueEntriesMax < c.batchEntriesMax) {
    throw new RangeError(`AppendBatcherConfig.queueEntriesMax (${c.queueEntriesMax}) must be >= batchEntriesMax (${c.batchEntriesMax})`)
  }
  return Object.freeze(c)
}

/** Identity of one request for exactly-once: a retry carries the same pair. */
export interface AppendRequestId {
  readonly clientId: string
  readonly seq: number
}

/**
 * Sends one batch to the log; resolves with one position per entry, in order. `reads`
 * (a conditional append, never batched with others) is passed only when there are some.
 */
export type SendBatch = (entries: readonly AppendEntry[], id: AppendRequestId, reads?: readonly ReadDependency[]) => Promise<number[]>

/** One conditional append of a batch: its own session id and seq, its own reads. */
export interface ConditionalCall {
  readonly entries: readonly AppendEntry[]
  readonly id: AppendRequestId
  readonly reads: readonly ReadDependency[]
}

/**
 * Sends several conditional appends in one request. Resolves with one outcome per call, in
 * order: its positions, or the error that call alone failed with (e.g. `conflict`).
 * Rejects when the request as a whole failed (then every call fails with it).
 */
export type SendConditionalBatch = (calls: readonly ConditionalCall[]) => Promise<(number[] | Error)[]>

interface QueuedConditional {
  readonly entries: readonly AppendEntry[]
  readonly reads: readonly ReadDependency[]
  readonly bytes: number
  readonly resolve: (positions: number[]) => void
  readonly reject: (err: unknown) => void
}

/** A session of its own for conditional batches: one batch in flight, seqs in order. */
interface Lane {
  readonly clientId: string
  seq: number
  busy: boolean
}

interface QueuedCall {
  readonly entries: readonly AppendEntry[]
  readonly bytes: number
  readonly resolve: (positions: number[]) => void
  readonly reject: (err: unknown) => void
}

export interface AppendBatcherStats {
  /** Batches sent (retries not counted). */
  batches: number
  /** Requests sent, retries included. */
  requests: number
  /** Entries appended. */
  entries: number
}

export class AppendBatcher {
  readonly clientId: string
  readonly config: AppendBatcherConfig
  readonly stats: AppendBatcherStats = { batches: 0, requests: 0, entries: 0 }
  private readonly send: SendBatch
  private queue: QueuedCall[] = []
  private queuedEntries = 0
  private queuedBytes = 0
  private inFlight = 0
  private seq = 0
  private lingerScheduled = false
  private closedError: LogError | null = null
  /** Calls waiting for room in the queue (queueEntriesMax), FIFO. */
  private readonly roomWaiters: Array<() => void> = []
  private readonly sendConditional: SendConditionalBatch | undefined
  private readonly conditionalQueue: QueuedConditional[] = []
  private readonly lanes: Lane[] = []
  private conditionalScheduled = false

  constructor(send: SendBatch, config: Partial<AppendBatcherConfig> = {}, clientId: string = randomUUID(), sendConditional?: SendConditionalBatch) {
    this.send = send
    this.config = validateAppendBatcherConfig(config)
    this.clientId = clientId
    this.sendConditional = sendConditional
    // Lane ids stay within the log's 128 characters for a clientId.
    for (let i = 0; i < this.config.inFlightBatchesMax; i++) this.lanes.push({ clientId: `${clientId.slice(0, 120)}/t${i}`, seq: 0, busy: false })
  }

  append(entries: readonly AppendEntry[]): Promise<number[]> {
    // Not an async function: its promise would wrap this one (two more microtask hops per call).
    let bytes: number
    let wait: Promise<void> | null
    try {
      if (this.closedError) throw this.closedError
      if (entries.length === 0) return Promise.resolve([])
      bytes = this.checkEntries(entries)
      wait = this.roomFor(entries.length)
    } catch (err) {
      return Promise.reject(err as Error)
    }
    if (wait !== null) return wait.then(() => this.enqueue(entries, bytes))
    return this.enqueue(entries, bytes)
  }

  private enqueue(entries: readonly AppendEntry[], bytes: number): Promise<number[]> {
    return new Promise<number[]>((resolve, reject) => {
      this.queue.push({ entries, bytes, resolve, reject })
      this.queuedEntries += entries.length
      this.queuedBytes += bytes
      this.pump()
    })
  }

  /**
   * A conditional append. It is never merged with other calls into one log append (a
   * conflict refuses a whole append); with a SendConditionalBatch, concurrent conditional
   * appends still share requests (each keeps its own seq and answer). Retried with the
   * same seq on `unavailable`, so a retry of a commit that was chosen answers its
   * positions. Fails with `conflict` when a read lost.
   */
  async appendConditional(entries: readonly AppendEntry[], reads: readonly ReadDependency[]): Promise<number[]> {
    if (this.closedError) throw this.closedError
    if (entries.length === 0) return []
    const bytes = this.checkEntries(entries)
    assertReads(reads)
    if (this.sendConditional !== undefined) {
      const wait = this.roomFor(entries.length)
      if (wait !== null) await wait
      return new Promise<number[]>((resolve, reject) => {
        this.conditionalQueue.push({ entries, reads, bytes, resolve, reject })
        this.queuedEntries += entries.length
        this.queuedBytes += bytes
        this.scheduleConditional()
      })
    }
    this.stats.batches++
    const id: AppendRequestId = { clientId: this.clientId, seq: ++this.seq }
    const positions = await this.sendWithRetry(entries, id, reads.length > 0 ? reads : undefined)
    this.stats.entries += entries.length
    return positions
  }

  /**
   * Null when `n` more entries fit in the queue now (the caller goes on in this turn),
   * else a wait for room (queueEntriesMax); `too_large` if they never can fit.
   */
  private roomFor(n: number): Promise<void> | null {
    if (n > this.config.queueEntriesMax) {
      throw new LogError('too_large', `append of ${n} entries exceeds queueEntriesMax ${this.config.queueEntriesMax}`)
    }
    return this.queuedEntries + n > this.config.queueEntriesMax ? this.waitForRoom(n) : null
  }

  private async waitForRoom(n: number): Promise<void> {
    while (this.queuedEntries + n > this.config.queueEntriesMax) {
      await new Promise<void>((resolve) => this.roomWaiters.push(resolve))
      if (this.closedError) throw this.closedError
    }
  }

  /** Validates entries; answers their bytes. */
  private checkEntries(entries: readonly AppendEntry[]): number {
    let bytes = 0
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i]!
      if (!Array.isArray(e.streams) || e.streams.length === 0) throw new LogError('bad_request', 'an entry must name at least one stream')
      for (let j = 0; j < e.streams.length; j++) assertStreamName(e.streams[j])
      if (!(e.data instanceof Uint8Array)) throw new LogError('bad_request', 'entry data must be a Uint8Array')
      assertConflictKeys(e.keys)
      const b = entryBytes(e)
      if (e.data.byteLength > this.config.entryBytesMax) {
        throw new LogError('too_large', `entry of ${e.data.byteLength} bytes exceeds entryBytesMax ${this.config.entryBytesMax}`)
      }
      bytes += b
    }
    return bytes
  }

  /** Fails queued calls with `closed`; batches already sent finish normally. */
  close(): void {
    if (this.closedError) return
    this.closedError = new LogError('closed', 'log client closed')
    for (const call of this.queue.splice(0)) call.reject(this.closedError)
    for (const call of this.conditionalQueue.splice(0)) call.reject(this.closedError)
    this.queuedEntries = 0
    this.queuedBytes = 0
    for (const wake of this.roomWaiters.splice(0)) wake()
  }

  /** Conditional calls go at the end of this event-loop turn, on every free lane. */
  private scheduleConditional(): void {
    if (this.conditionalScheduled) return
    this.conditionalScheduled = true
    setImmediate(() => {
      this.conditionalScheduled = false
      this.sendConditionalBatches()
    })
  }

  private sendConditionalBatches(): void {
    for (const lane of this.lanes) {
      if (this.conditionalQueue.length === 0) return
      if (!lane.busy) this.sendConditionalBatch(lane)
    }
  }

  private sendConditionalBatch(lane: Lane): void {
    const send = this.sendConditional!
    const queued: QueuedConditional[] = []
    const calls: ConditionalCall[] = []
    let entries = 0
    let bytes = 0
    while (this.conditionalQueue.length > 0 && calls.length < this.config.conditionalBatchMax) {
      const next = this.conditionalQueue[0]!
      if (calls.length > 0 && (entries + next.entries.length > this.config.batchEntriesMax || bytes + next.bytes > this.config.batchBytesMax)) break
      this.conditionalQueue.shift()
      queued.push(next)
      calls.push({ entries: next.entries, id: { clientId: lane.clientId, seq: ++lane.seq }, reads: next.reads })
      entries += next.entries.length
      bytes += next.bytes
    }
    this.queuedEntries -= entries
    this.queuedBytes -= bytes
    while (this.roomWaiters.length > 0 && this.queuedEntries < this.config.queueEntriesMax) this.roomWaiters.shift()!()
    lane.busy = true
    this.stats.batches++
    this.stats.requests++
    void send(calls).then(
      (outcomes) => {
        if (outcomes.length !== calls.length) throw new Error(`log answered ${outcomes.length} outcomes for ${calls.length} conditional appends`)
        for (let i = 0; i < queued.length; i++) {
          const o = outcomes[i]!
          if (o instanceof Error) {
            queued[i]!.reject(o)
          } else if (o.length !== calls[i]!.entries.length) {
            queued[i]!.reject(new Error(`log answered ${o.length} positions for ${calls[i]!.entries.length} entries`))
          } else {
            this.stats.entries += o.length
            queued[i]!.resolve(o)
          }
        }
      },
    ).catch((err: unknown) => {
      for (const q of queued) q.reject(err)
    }).finally(() => {
      // The lane's batch has its final answers: its next batch may go.
      lane.busy = false
      if (this.conditionalQueue.length > 0) this.sendConditionalBatches()
    })
  }

  private batchIsFull(): boolean {
    return this.queuedEntries >= this.config.batchEntriesMax || this.queuedBytes >= this.config.batchBytesMax
  }

  /** Sends what may be sent now: full batches at once, a partial one after the linger. */
  private pump(): void {
    while (this.queue.length > 0 && this.inFlight < this.config.inFlightBatchesMax && this.batchIsFull()) {
      this.sendNextBatch()
    }
    if (this.queue.length > 0 && this.inFlight < this.config.inFlightBatchesMax && !this.lingerScheduled) {
      this.lingerScheduled = true
      const fire = (): void => {
        this.lingerScheduled = false
        while (this.queue.length > 0 && this.inFlight < this.config.inFlightBatchesMax) this.sendNextBatch()
      }
      if (this.config.lingerMs === 0) setImmediate(fire)
      else setTimeout(fire, this.config.lingerMs)
    }
  }

  private sendNextBatch(): void {
    const calls: QueuedCall[] = []
    const entries: AppendEntry[] = []
    let bytes = 0
    // Taken from the front in one splice (shift() per call moves the rest every time).
    let taken = 0
    while (taken < this.queue.length) {
      const next = this.queue[taken]!
      const fits = entries.length + next.entries.length <= this.config.batchEntriesMax && bytes + next.bytes <= this.config.batchBytesMax
      // A call larger than a whole batch still goes, alone: the log decides whether it is too large.
      if (!fits && calls.length > 0) break
      taken++
      calls.push(next)
      for (const e of next.entries) entries.push(e)
      bytes += next.bytes
    }
    if (taken === this.queue.length) this.queue = []
    else this.queue.splice(0, taken)
    this.queuedEntries -= entries.length
    this.queuedBytes -= bytes
    while (this.roomWaiters.length > 0 && this.queuedEntries < this.config.queueEntriesMax) this.roomWaiters.shift()!()
    this.inFlight++
    this.stats.batches++
    const id: AppendRequestId = { clientId: this.clientId, seq: ++this.seq }
    void this.sendWithRetry(entries, id).then(
      (positions) => {
        this.stats.entries += entries.length
        let i = 0
        for (const call of calls) {
          call.resolve(positions.slice(i, i + call.entries.length))
          i += call.entries.length
        }
      },
      (err: unknown) => {
        for (const call of calls) call.reject(err)
      },
    ).finally(() => {
      this.inFlight--
      if (this.queue.length > 0) {
        // These calls already waited for the window: send without further linger.
        while (this.queue.length > 0 && this.inFlight < this.config.inFlightBatchesMax) this.sendNextBatch()
      }
    })
  }

  private async sendWithRetry(entries: readonly AppendEntry[], id: AppendRequestId, reads?: readonly ReadDependency[]): Promise<number[]> {
    let backoffMs = this.config.retryBackoffMs
    for (let attempt = 1; ; attempt++) {
      this.stats.requests++
      try {
        const positions = await (reads === undefined ? this.send(entries, id) : this.send(entries, id, reads))
        if (positions.length !== entries.length) {
          // A broken implementation, not a condition of the world: not retried.
          throw new Error(`log answered ${positions.length} positions for ${entries.length} entries`)
        }
        return positions
      } catch (err) {
        if (!isLogError(err, 'unavailable') || attempt >= this.config.retryAttemptsMax) throw err
        await new Promise((resolve) => setTimeout(resolve, backoffMs))
        backoffMs *= 2
      }
    }
  }
}
