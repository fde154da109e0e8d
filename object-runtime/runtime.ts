// The runtime: hosts objects, plays the log forward into them, and turns handle calls
// into log appends (mutators) or synced reads (accessors).
//
// Who owns what, and in which order:
// - Playback has ONE driver, the pump (`pump()`): it alone applies entries and moves
//   `synced`, so no two batches interleave. Subscription pushes, reads and catch-ups all
//   funnel through it.
// - `synced`: every joined object has applied every entry of its stream below it.
//   Objects opened later are `pending`: they first catch up on their own stream to
//   `synced` (reads), then join, and the subscription is renewed for the new stream set.
// - The subscription (opened at `synced`) pushes new entries of the joined streams; the
//   pump applies them in order, skipping what reads already applied. A sync that needs
//   entries waits `followGraceMs` for the push before it reads them itself.
// - Entries are applied in global log order, each fetched batch in one pass per object
//   (ObjectCore.applyBatch); an entry on several hosted streams is applied once to each
//   object it names, in its stream order.
// - A mutator call appends its op, waits until `synced` passes the op's position, and
//   takes the result the mutator computed at that position (recorded during playback
//   while the call is in flight). So results are linearizable: dequeue() hands each item
//   to exactly one caller, whichever runtime it runs in.
// - A linearizable read asks the log for its tail (coalesced: TailCoalescer), waits until
//   the object has applied everything below it, then runs the accessor on the snapshot.

import { loadCheckpoint, policyEnabled, validateCheckpointPolicy, writeCheckpoint } from './checkpoint.ts'
import type { CheckpointPolicy, CheckpointResult, WriteOptions } from './checkpoint.ts'
import { EmbeddedLogClient } from './embedded-log-client.ts'
import { HttpLogClient, type HttpLogClientConfig } from './http-log-client.ts'
import { isObjectDefinition } from './define.ts'
import type { AccessorFn, DefinitionSource, ObjectDefinition, ObjectHandle, ReadOptions } from './define.ts'
import { determinismGuardDefault, installDeterminismGuard } from './determinism-guard.ts'
import { ObjectError } from './errors.ts'
import { LogError, isLogError, isValidStreamName } from './log-client.ts'
import type { LogClient, LogEntry, Subscription, TailResult } from './log-client.ts'
import { ObjectCore } from './object-core.ts'
import { StreamReadAhead, type ReadAheadOptions, type ReadAheadPage } from './read-ahead.ts'
import { decodeRecord, encodeOwnOp } from './op-codec.ts'
import { SentOps, type SentOp } from './sent-ops.ts'
import type { DecodedRecord } from './op-codec.ts'
import { TailCoalescer } from './tail-coalescer.ts'
import { Snapshot, activeTransaction, openSnapshot, runTransaction, writeKeysOf } from './transaction.ts'
import type { TransactionHost, TransactionOptions } from './transaction.ts'

export interface RuntimeConfig {
  /** Entries asked for per read while catching up. Default 10,000. */
  readonly readEntriesMax: number
  /**
   * Read requests in flight while catching up, the one being waited for included: the
   * next pages are on their way while one is applied (read-ahead.ts). At most this many
   * pages wait, each at most readEntriesMax entries and the server's byte bound on a read
   * answer (HttpLimits.readBytesMax); with several streams to follow it is shared among
   * them (at least one each). 1 = no read-ahead. Default 3, at most 64.
   */
  readonly readAheadPages: number
  /** How long a sync waits for the subscription to push entries before reading them, ms. Default 5. */
  readonly followGraceMs: number
  /** Pause before a failed subscription is opened again, ms. Default 200. */
  readonly resubscribeDelayMs: number
  /** Streams listed in one tail request; with more hosted objects the global tail is used. Default 64. */
  readonly tailStreamsMax: number
  /** Throw on Date.now/Math.random/... inside mutators. Default: NODE_ENV !== 'production'. */
  readonly determinismGuard: boolean
  /** Checkpoints (checkpoint.ts): automatic policy (off by default) and limits. Any subset; the rest defaults. */
  readonly checkpoint: Partial<CheckpointPolicy>
}

/** Upper bound of RuntimeConfig.readAheadPages. */
export const READ_AHEAD_PAGES_MAX = 64

export function validateRuntimeConfig(partial: Partial<RuntimeConfig> = {}): RuntimeConfig {
  const c: RuntimeConfig = {
    readEntriesMax: 10_000,
    readAheadPages: 3,
    followGraceMs: 5,
    resubscribeDelayMs: 200,
    tailStreamsMax: 64,
    determinismGuard: determinismGuardDefault(),
    ...partial,
    checkpoint: validateCheckpointPolicy(partial.checkpoint),
  }
  const int = (name: 'readEntriesMax' | 'readAheadPages' | 'followGraceMs' | 'resubscribeDelayMs' | 'tailStreamsMax', min: number, max = Number.MAX_SAFE_INTEGER): void => {
    const v = c[name]
    if (!Number.isSafeInteger(v) || v < min || v > max) {
      throw new RangeError(`RuntimeConfig.${name} must be an integer >= ${min}${max < Number.MAX_SAFE_INTEGER ? ` and <= ${max}` : ''}, got ${v}`)
    }
  }
  int('readEntriesMax', 1)
  int('readAheadPages', 1, READ_AHEAD_PAGES_MAX)
  int('followGraceMs', 0)
  int('resubscribeDelayMs', 0)
  int('tailStreamsMax', 0)
  if (typeof c.determinismGuard !== 'boolean') throw new RangeError('RuntimeConfig.determinismGuard must be a boolean')
  return Object.freeze(c)
}

/**
 * How to reach the log:
 * - `{ servers: ['http://127.0.0.1:7001', ...] }`: a cluster, through the HTTP log client
 *   (leader discovery and failover, batching, exactly-once appends);
 * - `{ embedded: DIR }` (or `{ embedded: { dataDir } }`): a single-node log inside this
 *   process over LevelDB in DIR: no server to run, for trying quipu and for tests;
 * - `{ log }`: any LogClient you built (e.g. MemoryLogClient over a MemoryLog).
 * `connect()` with no options is `{ embedded: './quipu-data' }`.
 */
export type ConnectOptions =
  | { readonly log: LogClient; readonly config?: Partial<RuntimeConfig>; readonly closeLog?: boolean }
  | { readonly servers: readonly string[]; readonly config?: Partial<RuntimeConfig>; readonly client?: Partial<Omit<HttpLogClientConfig, 'servers'>> }
  | { readonly embedded: string | { readonly dataDir: string }; readonly config?: Partial<RuntimeConfig> }

export const DEFAULT_EMBEDDED_DIR = './quipu-data'

/** The log client a runtime uses: made here for `servers` and `embedded`, and then owned. */
async function createLogClient(options: ConnectOptions): Promise<{ log: LogClient; owned: boolean }> {
  if ('log' in options) return { log: options.log, owned: options.closeLog ?? false }
  if ('servers' in options) {
    if (!Array.isArray(options.servers) || options.servers.length === 0) {
      throw new ObjectError('bad_argument', 'connect({ servers }) needs at least one server URL, e.g. http://127.0.0.1:7001')
    }
    return { log: new HttpLogClient({ ...options.client, servers: options.servers }), owned: true }
  }
  const dir = typeof options.embedded === 'string' ? options.embedded : options.embedded.dataDir
  return { log: await EmbeddedLogClient.open(dir), owned: true }
}

/** Connects a runtime to a log. `rt.close()` closes the log client only if the runtime made it (or `closeLog: true`). */
export async function connect(options: ConnectOptions = { embedded: DEFAULT_EMBEDDED_DIR }): Promise<Runtime> {
  const { log, owned } = await createLogClient(options)
  return new Runtime(log, owned, validateRuntimeConfig(options.config))
}

/** Any definition, for constraints. */
export type AnyObjectDefinition = ObjectDefinition<
  unknown,
  Record<string, (state: never, ...args: never[]) => unknown>,
  Record<string, (state: never, ...args: never[]) => unknown>
>

/** Stream of an object: one object = one stream. */
export function streamOf(objectName: string): string {
  return `obj/${objectName}`
}

export interface RuntimeStats {
  /** Batches applied (one pass each, per object). */
  batchesApplied: number
  /** Entries applied (counted once per object they were applied to). */
  entriesApplied: number
  /** Subscription pushes taken. */
  pushes: number
  /** Reads issued to fetch entries (sync fallback and catch-up). */
  reads: number
  /** Tail requests sent. */
  tailRequests: number
}

interface SyncWaiter {
  readonly target: number
  readonly resolve: () => void
  readonly reject: (err: unknown) => void
}

interface Push {
  readonly gen: number
  readonly entries: readonly LogEntry[]
  readonly next: number
}

class HostedObject {
  readonly core: ObjectCore
  /** Pending objects: next position of their stream to read while catching up. */
  cursor = 0
  /**
   * For each mutator call in flight, the lowest position its op can get (a multiset:
   * start -> calls). Calls start in nondecreasing order (synced and the object's version
   * only grow), so the distinct starts are kept ascending in `starts` from `startsHead`
   * on, and the lowest is found by skipping those with no call left: O(1) amortized per
   * call, where scanning every call in flight cost O(in flight) each (256 at c=256).
   */
  private readonly startCounts = new Map<number, number>()
  private starts: number[] = []
  private startsHead = 0
  /** Mutator calls in flight. */
  inflight = 0
  /** Their ops, for playback to take instead of decoding them again. */
  readonly sent = new SentOps()
  /** `[core.stream]`, the streams of every op appended (one array for all). */
  readonly streams: readonly string[]
  /** Results computed at positions an in-flight call may own, until claimed or pruned. */
  readonly results = new Map<number, unknown>()
  /** Positions of `results` as recorded (ascending: playback order), from resultsHead on. */
  private resultOrder: number[] = []
  private resultsHead = 0
  /** Why the last catch-up of this object failed (it is then neither pending nor joined). */
  failure: unknown = undefined
  /** `upTo` of the checkpoint this object was last loaded from (-1: none): results below it are gone. */
  restoredUpTo = -1
  /** Set (to the log's `trimmed` error) when its stream was found trimmed above `cursor`: catch-up must start from a checkpoint. */
  trimmedBehind: unknown = undefined
  /** Entries and op bytes applied since the last checkpoint this runtime wrote or tried (automatic policy). */
  sinceCheckpointEntries = 0
  sinceCheckpointBytes = 0
  /** The checkpoint this runtime is writing for this object, if any (one at a time). */
  checkpointing: Promise<CheckpointResult> | null = null
  handle: unknown = undefined
  readonly recordResult = (position: number, value: unknown): void => {
    this.results.set(position, value)
    this.resultOrder.push(position)
  }

  constructor(core: ObjectCore) {
    this.core = core
    // Not frozen: for-of over a frozen array allocates an iterator in V8 (hot loops read it).
    this.streams = [core.stream]
  }

  addStart(start: number): void {
    this.inflight++
    const n = this.startCounts.get(start)
    this.startCounts.set(start, (n ?? 0) + 1)
    if (n !== undefined) return
    const last = this.starts.length > this.startsHead ? this.starts[this.starts.length - 1]! : -Infinity
    if (start > last) {
      this.starts.push(start)
    } else {
      // Not expected (starts only grow); kept correct anyway: insert in order.
      let i = this.starts.length
      while (i > this.startsHead && this.starts[i - 1]! > start) i--
      this.starts.splice(i, 0, start)
    }
  }

  /** A call ended: forget its start, and the results no call in flight can own any more. */
  removeStart(start: number): void {
    this.inflight--
    const n = this.startCounts.get(start)!
    if (n > 1) this.startCounts.set(start, n - 1)
    else this.startCounts.delete(start)
    if (this.inflight === 0) {
      this.results.clear()
      this.resultOrder = []
      this.resultsHead = 0
      this.starts = []
      this.startsHead = 0
      return
    }
    const lowest = this.lowestStart()
    const order = this.resultOrder
    while (this.resultsHead < order.length && order[this.resultsHead]! < lowest) this.results.delete(order[this.resultsHead++]!)
    if (this.resultsHead > 1024 && this.resultsHead * 2 > order.length) {
      this.resultOrder = order.slice(this.resultsHead)
      this.resultsHead = 0
    }
  }

  /** The lowest start of a call in flight (Infinity: none). */
  lowestStart(): number {
    while (this.startsHead < this.starts.length && !this.startCounts.has(this.starts[this.startsHead]!)) this.startsHead++
    if (this.startsHead > 1024 && this.startsHead * 2 > this.starts.length) {
      this.starts = this.starts.slice(this.startsHead)
      this.startsHead = 0
    }
    return this.startsHead < this.starts.length ? this.starts[this.startsHead]! : Infinity
  }
}

export class Runtime {
  readonly log: LogClient
  readonly config: RuntimeConfig
  readonly stats: RuntimeStats = { batchesApplied: 0, entriesApplied: 0, pushes: 0, reads: 0, tailRequests: 0 }
  private readonly ownsLog: boolean
  private readonly byName = new Map<string, HostedObject>()
  private readonly joined = new Map<string, HostedObject>() // by stream
  private pending: HostedObject[] = []
  private syncedPosition = 0
  private subscription: Subscription | null = null
  private subGen = 0
  private subRetryAt = 0
  private pushes: Push[] = []
  private pushWaker: (() => void) | null = null
  private waiters: SyncWaiter[] = []
  private pumping = false
  private closed = false
  private readonly tailer: TailCoalescer<TailResult>
  private readonly checkpointPolicy: CheckpointPolicy
  private readonly byHandle = new WeakMap<object, HostedObject>()
  private readonly autoCheckpoints: boolean

  constructor(log: LogClient, ownsLog: boolean, config: RuntimeConfig) {
    this.log = log
    this.ownsLog = ownsLog
    this.config = config
    if (config.determinismGuard) installDeterminismGuard()
    this.checkpointPolicy = validateCheckpointPolicy(config.checkpoint)
    this.autoCheckpoints = policyEnabled(this.checkpointPolicy)
    this.tailer = new TailCoalescer(() => {
      this.stats.tailRequests++
      const streams = this.hostedStreams()
      return this.log.tail(streams.length <= this.config.tailStreamsMax ? streams : [])
    })
  }

  /** Every entry of every joined object's stream below this position has been applied. */
  get synced(): number {
    return this.syncedPosition
  }

  /**
   * Opens (or returns the already open) object `name` of definition `source`. One object
   * is one stream (`obj/<name>`). Playback starts in the background; calls wait for it.
   */
  open<D extends AnyObjectDefinition>(source: DefinitionSource<D>, name: string): ObjectHandle<D> {
    this.assertOpen()
    const def: unknown = typeof source === 'function' ? source() : source
    if (!isObjectDefinition(def)) throw new ObjectError('bad_argument', 'open() needs a definition made by defineObject, or a factory returning one')
    const stream = streamOf(name)
    if (typeof name !== 'string' || name.length === 0 || !isValidStreamName(stream)) {
      throw new ObjectError('bad_argument', `bad object name ${JSON.stringify(name)}: 1-196 characters of [A-Za-z0-9._:/-]`)
    }
    const existing = this.byName.get(name)
    if (existing !== undefined) {
      const had = existing.core.def
      if (had.name !== def.name || had.version !== def.version) {
        throw new ObjectError('type_mismatch', `object "${name}" is already open as ${had.name} v${had.version}; cannot open it as ${def.name} v${def.version}`)
      }
      return existing.handle as ObjectHandle<D>
    }
    const hosted = new HostedObject(new ObjectCore(def, name, stream, this.config.determinismGuard))
    hosted.handle = this.makeHandle(hosted)
    this.byHandle.set(hosted.handle as object, hosted)
    this.byName.set(name, hosted)
    this.pending.push(hosted)
    this.kick()
    return hosted.handle as ObjectHandle<D>
  }

  /** What transactions and snapshots need from this runtime (transaction.ts). */
  private readonly txHost: TransactionHost = {
    log: null as unknown as LogClient, // set in the constructor below (field order)
    sync: () => this.sync(),
    syncTo: (target) => this.syncTo(target),
    applied: (target) => !this.closed && this.pending.length === 0 && this.syncedPosition >= target,
    synced: () => this.syncedPosition,
    cores: () => {
      const out: ObjectCore[] = []
      for (const h of this.byName.values()) if (this.joined.get(h.core.stream) === h) out.push(h.core)
      return out
    },
    readEntriesMax: 0,
  }

  /**
   * Runs `fn` as one serializable transaction over this runtime's objects (see
   * transaction.ts and README.md "Transactions"): reads and writes inside it see one
   * snapshot plus the transaction's own writes; the writes commit as one conditional
   * append, retried on conflict up to `options.retries` times, then TransactionAborted.
   */
  transaction<T>(fn: () => Promise<T>, options?: TransactionOptions): Promise<T> {
    this.assertOpen()
    return runTransaction(this.transactionHost(), fn, options)
  }

  /** A read-only view as of log position `version` (default: the current tail): `snap.read(async () => ...)`. */
  snapshot(version?: number): Promise<Snapshot> {
    this.assertOpen()
    return openSnapshot(this.transactionHost(), version)
  }

  private transactionHost(): TransactionHost {
    const h = this.txHost as { log: LogClient; readEntriesMax: number }
    h.log = this.log
    h.readEntriesMax = this.config.readEntriesMax
    return this.txHost
  }

  /** Brings every hosted object up to the log's tail (linearizable). */
  async sync(): Promise<void> {
    this.assertOpen()
    const tail = await this.tailer.get()
    await this.syncTo(tail.tail)
  }

  /**
   * Writes a checkpoint of an open object (checkpoint.ts): its state at its current
   * version, from an immutable snapshot (writers and readers go on), then trims the
   * history it covers. One at a time per object in this runtime; if another client's
   * checkpoint of the object is in progress, waits a little and tries again (three tries),
   * then answers `busy`.
   */
  async checkpoint(handle: object, options: WriteOptions = {}): Promise<CheckpointResult> {
    this.assertOpen()
    const hosted = this.byHandle.get(handle)
    if (hosted === undefined) throw new ObjectError('bad_argument', "checkpoint() needs a handle returned by this runtime's open()")
    for (let attempt = 0; ; attempt++) {
      const result = await this.checkpointOnce(hosted, options)
      if (result.outcome !== 'busy' || attempt >= 2) return result
      await new Promise((resolve) => setTimeout(resolve, Math.min(this.checkpointPolicy.takeoverMs, 1000) / 4))
    }
  }

  private checkpointOnce(hosted: HostedObject, options: WriteOptions): Promise<CheckpointResult> {
    if (hosted.checkpointing !== null) return hosted.checkpointing
    const run = async (): Promise<CheckpointResult> => {
      await this.syncObject(hosted)
      const core = hosted.core
      const poison = core.poisonError()
      if (poison !== undefined) throw poison
      // Taken synchronously: the snapshot, its version and what it covers agree.
      hosted.sinceCheckpointEntries = 0
      hosted.sinceCheckpointBytes = 0
      const src = {
        objectName: core.name,
        objectStream: core.stream,
        type: core.def.name,
        typeVersion: core.def.version,
        state: core.snapshot(),
        version: core.version,
        upTo: Math.max(this.joined.get(core.stream) === hosted ? this.syncedPosition : 0, core.version + 1, hosted.restoredUpTo),
      }
      return writeCheckpoint(this.log, src, this.checkpointPolicy, options)
    }
    const p = run().finally(() => {
      hosted.checkpointing = null
    })
    hosted.checkpointing = p
    return p
  }

  /** Automatic policy: checkpoint an object whose stream grew past the thresholds (errors are dropped; the next threshold retries). */
  private maybeAutoCheckpoint(hosted: HostedObject): void {
    const p = this.checkpointPolicy
    if (hosted.checkpointing !== null || this.closed || hosted.core.poison !== undefined) return
    const due = (p.everyEntries > 0 && hosted.sinceCheckpointEntries >= p.everyEntries) || (p.everyBytes > 0 && hosted.sinceCheckpointBytes >= p.everyBytes)
    if (!due) return
    hosted.sinceCheckpointEntries = 0
    hosted.sinceCheckpointBytes = 0
    setImmediate(() => {
      if (this.closed) return
      this.checkpointOnce(hosted, {}).catch(() => undefined)
    })
  }

  /** Stops playback, fails waiting calls with `runtime_closed`. Closes the log client if the runtime owns it. */
  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.subscription?.close()
    this.subscription = null
    this.pushes = []
    this.pushWaker?.()
    const err = new ObjectError('runtime_closed', 'runtime closed')
    for (const w of this.waiters.splice(0)) w.reject(err)
    if (this.ownsLog) await this.log.close()
  }

  // -------------------------------------------------------------------------------------
  // Handles

  private makeHandle(hosted: HostedObject): unknown {
    const core = hosted.core
    const handle: Record<string, unknown> = {}
    Object.defineProperties(handle, {
      name: { value: core.name, enumerable: true },
      typeName: { value: core.def.name, enumerable: true },
      version: { get: () => core.version, enumerable: true },
      poisoned: { get: () => core.poison, enumerable: true },
      stateHash: { value: () => core.stateHash() },
      sync: { value: () => this.syncObject(hosted) },
    })
    for (const mutator of Object.keys(core.def.mutators)) {
      Object.defineProperty(handle, mutator, { value: (...args: unknown[]) => this.mutate(hosted, mutator, args) })
    }
    for (const [accessor, fn] of Object.entries(core.def.accessors)) {
      Object.defineProperty(handle, accessor, { value: (...args: unknown[]) => this.access(hosted, accessor, fn, args) })
    }
    return Object.freeze(handle)
  }

  /**
   * A mutator call: append the op, then answer its result as computed where the log put
   * it. Not an async function: the common call (its entry played before its answer comes)
   * is one continuation, without an async frame kept across the wait.
   */
  private mutate(hosted: HostedObject, mutator: string, args: unknown[]): Promise<unknown> {
    let appended: Promise<number[]>
    let sent: SentOp | null
    let start: number
    try {
      this.assertOpen()
      const tx = activeTransaction(this.txHost)
      if (tx !== undefined) return Promise.resolve(tx.mutate(hosted.core, mutator, args))
      this.retryIfFailed(hosted)
      const core = hosted.core
      if (core.poison !== undefined) throw core.poison
      const record: DecodedRecord = { kind: 'op', type: core.def.name, version: core.def.version, mutator, args }
      const encoded = encodeOwnOp(record)
      // The conflict keys it writes: transactions that read them must see this write.
      const keys = writeKeysOf(core, mutator, args)
      sent = encoded.decodesToItself ? hosted.sent.add(encoded.data, record) : null
      // No op appended from now on can land below what is already applied.
      start = core.version + 1 > this.syncedPosition ? core.version + 1 : this.syncedPosition
      hosted.addStart(start)
      try {
        appended = this.log.append([{ streams: hosted.streams, data: encoded.data, keys }])
      } catch (err) {
        throw this.endMutate(hosted, start, sent, err)
      }
    } catch (err) {
      return Promise.reject(err as Error)
    }
    return appended.then(
      (positions) => {
        const position = positions[0]
        if (position === undefined) throw this.endMutate(hosted, start, sent, new LogError('unavailable', 'append answered no position'))
        // Usually played already (the subscription's push comes before the answer): no wait.
        if (this.pending.length === 0 && this.syncedPosition > position) return this.mutateResult(hosted, start, sent, position)
        return this.syncTo(position + 1).then(
          () => this.mutateResult(hosted, start, sent, position),
          (err: unknown) => {
            throw this.endMutate(hosted, start, sent, err)
          },
        )
      },
      (err: unknown) => {
        throw this.endMutate(hosted, start, sent, err)
      },
    )
  }

  /** The call's bookkeeping ends (answered or failed); returns `err` for the caller to throw. */
  private endMutate(hosted: HostedObject, start: number, sent: SentOp | null, err?: unknown): unknown {
    hosted.removeStart(start)
    if (sent !== null) hosted.sent.done(sent)
    return err
  }

  /** The result recorded for the call's op at `position` (played by now). */
  private mutateResult(hosted: HostedObject, start: number, sent: SentOp | null, position: number): unknown {
    try {
      this.throwIfFailed(hosted)
      const value = hosted.results.get(position)
      if (value !== undefined || hosted.results.has(position)) {
        hosted.results.delete(position)
        return value
      }
      const core = hosted.core
      const poison = core.poisonError()
      if (poison !== undefined && poison.position <= position) throw poison
      if (position < hosted.restoredUpTo) {
        throw new ObjectError('history_trimmed', `${core.name}: the op at position ${position} was applied, but this client fell behind and loaded a checkpoint covering it, so its result is unknown`)
      }
      throw new Error(`internal: no result recorded for ${core.name} at position ${position} (version ${core.version})`)
    } finally {
      this.endMutate(hosted, start, sent)
    }
  }

  private async access(hosted: HostedObject, accessor: string, fn: AccessorFn<never>, args: unknown[]): Promise<unknown> {
    this.assertOpen()
    const core = hosted.core
    const declared = Math.max(0, fn.length - 1)
    let consistency: ReadOptions['consistency'] = 'linearizable'
    if (args.length > declared && isReadOptions(args[args.length - 1])) {
      consistency = (args.pop() as ReadOptions).consistency ?? 'linearizable'
    }
    const tx = activeTransaction(this.txHost)
    if (tx !== undefined) return tx.access(core, fn, accessor, args)
    if (core.poison !== undefined) throw core.poison
    if (consistency !== 'cached') {
      await this.syncObject(hosted)
      const poison = core.poisonError()
      if (poison !== undefined) throw poison
    }
    return (fn as (state: unknown, ...a: unknown[]) => unknown)(core.snapshot(), ...args)
  }

  private async syncObject(hosted: HostedObject): Promise<void> {
    this.assertOpen()
    this.retryIfFailed(hosted)
    const tail = await this.tailer.get()
    const last = tail.streams[hosted.core.stream]
    await this.syncTo(last === undefined ? tail.tail : last + 1)
    this.throwIfFailed(hosted)
  }

  /** A call on an object whose catch-up failed puts it back in line for another try. */
  private retryIfFailed(hosted: HostedObject): void {
    if (hosted.failure === undefined) return
    hosted.failure = undefined
    this.pending.push(hosted)
  }

  private throwIfFailed(hosted: HostedObject): void {
    if (hosted.failure !== undefined) throw hosted.failure
  }

  // -------------------------------------------------------------------------------------
  // Playback

  /** Resolves once every hosted object has joined and `synced >= target`. */
  private syncTo(target: number): Promise<void> {
    if (this.closed) return Promise.reject(new ObjectError('runtime_closed', 'runtime closed'))
    // (txHost.applied is the same test as the next line.)
    if (this.pending.length === 0 && this.syncedPosition >= target) return Promise.resolve()
    return new Promise<void>((resolve, reject) => {
      this.waiters.push({ target, resolve, reject })
      this.kick()
    })
  }

  private hostedStreams(): string[] {
    return [...this.byName.values()].map((h) => h.core.stream)
  }

  private kick(): void {
    if (this.pumping) {
      this.pushWaker?.()
      return
    }
    this.pumping = true
    void this.pump()
  }

  private async pump(): Promise<void> {
    try {
      while (!this.closed) {
        this.drainPushes()
        if (this.pending.length > 0) {
          await this.catchUpPending()
          continue
        }
        this.ensureSubscription()
        this.resolveWaiters()
        let target = -1
        for (const w of this.waiters) if (w.target > target) target = w.target
        if (target <= this.syncedPosition) {
          if (this.pushes.length === 0) break
          continue
        }
        if (this.subscription !== null && (await this.waitForPush(this.config.followGraceMs))) continue
        if (this.closed) break
        await this.fetchUpTo(target)
      }
    } catch (err) {
      for (const w of this.waiters.splice(0)) w.reject(err)
    } finally {
      this.pumping = false
    }
    // Work that arrived while the pump was finishing.
    if (!this.closed && (this.pushes.length > 0 || this.pending.length > 0 || this.waiters.some((w) => w.target > this.syncedPosition))) this.kick()
    else this.resolveWaiters()
  }

  private resolveWaiters(): void {
    if (this.pending.length > 0 || this.waiters.length === 0) return
    const still: SyncWaiter[] = []
    for (const w of this.waiters) {
      if (w.target <= this.syncedPosition) w.resolve()
      else still.push(w)
    }
    this.waiters = still
  }

  private waitForPush(ms: number): Promise<boolean> {
    if (this.pushes.length > 0) return Promise.resolve(true)
    return new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => {
        this.pushWaker = null
        resolve(false)
      }, ms)
      this.pushWaker = () => {
        clearTimeout(timer)
        this.pushWaker = null
        resolve(true)
      }
    })
  }

  /** (Re)opens the subscription for the joined streams, from `synced`. */
  private ensureSubscription(): void {
    if (this.subscription !== null || this.joined.size === 0 || this.closed) return
    if (Date.now() < this.subRetryAt) return
    const gen = ++this.subGen
    try {
      this.subscription = this.log.subscribe(
        [...this.joined.keys()],
        this.syncedPosition,
        (entries, next) => {
          if (gen !== this.subGen || this.closed) return
          this.pushes.push({ gen, entries, next })
          this.kick()
        },
        () => {
          if (gen !== this.subGen) return
          // Fall back to reads; try again a little later (the cause shows up on reads).
          this.subscription = null
          this.subGen++
          this.subRetryAt = Date.now() + this.config.resubscribeDelayMs
        },
      )
    } catch {
      this.subscription = null
      this.subRetryAt = Date.now() + this.config.resubscribeDelayMs
    }
  }

  private resubscribe(): void {
    this.subscription?.close()
    this.subscription = null
    this.subGen++
    this.pushes = []
    this.subRetryAt = 0
    this.ensureSubscription()
  }

  private drainPushes(): void {
    while (this.pushes.length > 0) {
      const batch = this.pushes
      this.pushes = []
      for (const push of batch) {
        if (push.gen !== this.subGen) continue
        this.stats.pushes++
        let first = 0
        while (first < push.entries.length && push.entries[first]!.position < this.syncedPosition) first++
        if (first < push.entries.length) this.applyEntries(first === 0 ? push.entries : push.entries.slice(first))
        if (push.next > this.syncedPosition) this.syncedPosition = push.next
      }
    }
  }

  /**
   * Reads the joined streams in [synced, target) with read-ahead, applies the entries in
   * log order page by page, advances `synced`. Returns early if a stream's history turned
   * out trimmed (that object leaves to catch up from a checkpoint) or a server does not
   * hold the range yet (the pump tries again).
   */
  private async fetchUpTo(target: number): Promise<void> {
    const streams = [...this.joined.keys()]
    if (streams.length === 0) {
      if (target > this.syncedPosition) this.syncedPosition = target
      return
    }
    const from = this.syncedPosition
    const options = this.readAheadOptions(streams.length)
    const readers = streams.map((s) => new StreamReadAhead((r) => this.log.readStream(s, r), from, target, options))
    for (const r of readers) r.start() // every stream's first page at once
    // Per stream: how far its pages reach, and its entries not applied yet (at or past the cut).
    const covered = streams.map(() => from)
    const held: LogEntry[][] = streams.map(() => [])
    try {
      while (!this.closed) {
        let i = 0
        for (let j = 1; j < streams.length; j++) if (covered[j]! < covered[i]!) i = j
        if (covered[i]! >= target) break
        let page: ReadAheadPage | null
        try {
          page = await readers[i]!.next()
        } catch (err) {
          if (!isLogError(err, 'trimmed')) throw err
          // That object's history is gone below what it needs (a checkpoint covers it): it
          // leaves the joined set and catches up again, from the newest checkpoint; the
          // others go on. If no checkpoint covers it, its calls fail (catchUpPending).
          const hosted = this.joined.get(streams[i]!)!
          hosted.cursor = this.syncedPosition
          hosted.trimmedBehind = err
          this.joined.delete(streams[i]!)
          this.pending.push(hosted)
          this.resubscribe()
          return
        }
        if (this.closed) return
        if (page === null || page.next <= covered[i]!) return // the server does not hold [covered, target) yet
        covered[i] = page.next
        let cut = page.next
        for (const c of covered) if (c < cut) cut = c
        let entries: readonly LogEntry[]
        if (streams.length === 1) {
          entries = inRange(page.entries, page.from, page.next)
        } else {
          const mine = held[i]!
          for (const e of inRange(page.entries, page.from, page.next)) mine.push(e)
          if (cut <= this.syncedPosition) continue
          // Entries below the cut of every stream, by position; one on several streams once.
          const byPosition = new Map<number, LogEntry>()
          for (let j = 0; j < held.length; j++) {
            const h = held[j]!
            let k = 0
            while (k < h.length && h[k]!.position < cut) byPosition.set(h[k]!.position, h[k++]!)
            if (k > 0) held[j] = h.slice(k)
          }
          entries = [...byPosition.values()].sort((a, b) => a.position - b.position)
        }
        if (entries.length > 0) this.applyEntries(entries)
        this.syncedPosition = cut
        // A long way to go: the subscription would push the same entries meanwhile, with
        // nothing to bound them; it is opened again from `synced` once the reads are done.
        if (cut < target && this.subscription !== null) this.pauseSubscription()
      }
    } finally {
      for (const r of readers) {
        this.stats.reads += r.requests
        r.close()
      }
    }
  }

  /** Read-ahead for `streams` streams read at once: the window is shared among them, at least one page each. */
  private readAheadOptions(streams: number): ReadAheadOptions {
    return { limit: this.config.readEntriesMax, depth: Math.max(1, Math.floor(this.config.readAheadPages / streams)) }
  }

  /** Closes the subscription and drops what it pushed; the pump opens it again from `synced`. */
  private pauseSubscription(): void {
    this.subscription?.close()
    this.subscription = null
    this.subGen++
    this.pushes = []
  }

  /** Catches pending objects up to `synced` on their own streams, joins them, renews the subscription. */
  private async catchUpPending(): Promise<void> {
    const batch = this.pending
    for (const hosted of batch) {
      try {
        // A fresh object starts from its newest checkpoint (time ~ state, not history).
        const trimmed = hosted.trimmedBehind
        hosted.trimmedBehind = undefined
        if (trimmed !== undefined) {
          if (!(await this.restoreFromCheckpoint(hosted, hosted.cursor + 1))) throw this.historyTrimmed(hosted, trimmed)
        } else if (hosted.core.version === -1 && hosted.cursor === 0) {
          await this.restoreFromCheckpoint(hosted, 0)
        }
        let chased = false
        while (!this.closed) {
          // Loaded a checkpoint ahead of `synced`: bring the joined objects up to it first.
          if (hosted.cursor > this.syncedPosition) {
            await this.fetchUpTo(hosted.cursor)
            continue
          }
          // With no object joined, `synced` holds nobody back: the first object reads on to
          // the end of the log and takes `synced` there, so that the subscription opens near
          // the tail instead of pushing the whole history.
          const open = !chased && this.joined.size === 0
          if (!open && hosted.cursor === this.syncedPosition) break
          if (!(await this.catchUpStream(hosted, open ? undefined : this.syncedPosition))) continue
          if (open) {
            chased = true
            if (hosted.cursor > this.syncedPosition && this.joined.size === 0) this.syncedPosition = hosted.cursor
          }
        }
        this.joined.set(hosted.core.stream, hosted)
      } catch (err) {
        // This object cannot catch up (its history was trimmed, the log is unreachable):
        // its calls fail with the cause, the other objects go on, its next call retries.
        hosted.failure = err
      }
      this.pending = this.pending.filter((p) => p !== hosted)
    }
    this.resubscribe()
  }

  /**
   * Reads a pending object's stream from its cursor up to `to` (undefined: the end of the
   * log) with read-ahead, applying page by page. False if the stream was trimmed above the
   * cursor and the object was loaded from a newer checkpoint instead (the caller goes on
   * from its new cursor).
   */
  private async catchUpStream(hosted: HostedObject, to: number | undefined): Promise<boolean> {
    const reader = new StreamReadAhead((r) => this.log.readStream(hosted.core.stream, r), hosted.cursor, to, this.readAheadOptions(1))
    try {
      for (;;) {
        let page: ReadAheadPage | null
        try {
          page = await reader.next()
        } catch (err) {
          if (!isLogError(err, 'trimmed')) throw err
          // Trimmed below the cursor: a newer checkpoint covers it, or the history is lost.
          if (!(await this.restoreFromCheckpoint(hosted, hosted.cursor + 1))) throw this.historyTrimmed(hosted, err)
          return false
        }
        if (page === null || this.closed) return true
        if (page.entries.length > 0) this.applyToOne(hosted, inRange(page.entries, page.from, page.next))
        if (page.next <= hosted.cursor) {
          if (to === undefined) return true // the end of the log
          throw new Error(`internal: readStream(${hosted.core.stream}) made no progress from ${hosted.cursor}`)
        }
        hosted.cursor = page.next
      }
    } finally {
      this.stats.reads += reader.requests
      reader.close()
    }
  }

  private historyTrimmed(hosted: HostedObject, cause: unknown): ObjectError {
    return new ObjectError(
      'history_trimmed',
      `object "${hosted.core.name}": its stream ${hosted.core.stream} is trimmed above position ${hosted.cursor}, and no complete checkpoint covers the trim point`,
      cause === undefined ? undefined : { cause },
    )
  }

  /** Loads the newest checkpoint covering at least `minUpTo` into a pending object; false if there is none. */
  private async restoreFromCheckpoint(hosted: HostedObject, minUpTo: number): Promise<boolean> {
    const core = hosted.core
    const loaded = await loadCheckpoint(this.log, { objectName: core.name, type: core.def.name, typeVersion: core.def.version }, this.checkpointPolicy, minUpTo)
    if (loaded === null || loaded.upTo <= hosted.cursor) return false
    core.restore(loaded.state, loaded.version)
    hosted.cursor = loaded.upTo
    hosted.restoredUpTo = loaded.upTo
    return true
  }

  private applyToOne(hosted: HostedObject, entries: readonly LogEntry[]): void {
    const records: DecodedRecord[] = []
    for (const e of entries) records.push(decodeRecord(e.data))
    this.applyOps(hosted, entries, records)
  }

  /** Applies entries (increasing positions) to the joined objects they name, one pass per object. */
  private applyEntries(entries: readonly LogEntry[]): void {
    if (this.joined.size === 1) {
      const [stream, hosted] = this.joined.entries().next().value!
      const names = (e: LogEntry): boolean => (e.streams.length === 1 ? e.streams[0] === stream : e.streams.includes(stream))
      const mine = entries.every(names) ? entries : entries.filter(names)
      const records: DecodedRecord[] = []
      for (const e of mine) records.push(hosted.sent.take(e.data) ?? decodeRecord(e.data))
      this.applyOps(hosted, mine, records)
      return
    }
    const perObject = new Map<HostedObject, { entries: LogEntry[]; records: DecodedRecord[] }>()
    for (const e of entries) {
      let record: DecodedRecord | undefined
      for (const s of e.streams) {
        const hosted = this.joined.get(s)
        if (hosted === undefined) continue
        record ??= hosted.sent.take(e.data) ?? decodeRecord(e.data)
        let batch = perObject.get(hosted)
        if (batch === undefined) perObject.set(hosted, (batch = { entries: [], records: [] }))
        batch.entries.push(e)
        batch.records.push(record)
      }
    }
    for (const [hosted, batch] of perObject) this.applyOps(hosted, batch.entries, batch.records)
  }

  private applyOps(hosted: HostedObject, entries: readonly LogEntry[], records: readonly DecodedRecord[]): void {
    // Entries at or below the object's version were applied already (a multi-stream entry
    // met again, or a read that overlapped a push).
    let first = 0
    while (first < entries.length && entries[first]!.position <= hosted.core.version) first++
    if (first === entries.length) return
    const fresh = first === 0 ? entries : entries.slice(first)
    const freshRecords = first === 0 ? records : records.slice(first)
    // Results are kept only for positions an in-flight call of this runtime may own.
    hosted.core.applyBatch(fresh, freshRecords, hosted.lowestStart(), hosted.recordResult)
    this.stats.batchesApplied++
    this.stats.entriesApplied += fresh.length
    if (this.autoCheckpoints) {
      hosted.sinceCheckpointEntries += fresh.length
      for (const e of fresh) hosted.sinceCheckpointBytes += e.data.byteLength
      this.maybeAutoCheckpoint(hosted)
    }
  }

  private assertOpen(): void {
    if (this.closed) throw new ObjectError('runtime_closed', 'runtime closed')
  }
}

/** The entries of a page within [from, next) (all of them, unless a log client answered more than asked). */
function inRange(entries: readonly LogEntry[], from: number, next: number): readonly LogEntry[] {
  if (entries.length === 0 || (entries[0]!.position >= from && entries[entries.length - 1]!.position < next)) return entries
  return entries.filter((e) => e.position >= from && e.position < next)
}

function isReadOptions(value: unknown): value is ReadOptions {
  if (typeof value !== 'object' || value === null || Object.getPrototypeOf(value) !== Object.prototype) return false
  for (const key of Object.keys(value)) if (key !== 'consistency') return false
  const c = (value as ReadOptions).consistency
  return c === undefined || c === 'linearizable' || c === 'cached'
}
