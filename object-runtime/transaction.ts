// Transactions across objects (optimistic, serializable) and snapshot reads.
//
//   await rt.transaction(async () => {
//     const a = await accounts.get('alice'), b = await accounts.get('bob')
//     await accounts.set('alice', a - 10)
//     await accounts.set('bob', b + 10)
//   })
//
// Who does what, in which order:
// - begin: every hosted object's snapshot is captured at the same point `synced` (so the
//   transaction reads ONE version of the log: `base = synced - 1`). The first attempt
//   takes the state this runtime has already applied (no round trip: the subscription
//   keeps it fresh); attempts after a conflict begin with a linearizable sync. Views are
//   copies made from those snapshots on first use.
// - inside: accessors run on the view and record their read keys; mutators are checked
//   (plain-data args), applied to the view (reads see the transaction's own writes; the
//   result is computed there) and buffered. Nothing is appended. The view sees args as
//   playback will: flat ones (ASCII strings, numbers but -0, booleans, null) as they are,
//   others as frozen copies through the codec. Once its view exists, a call answers
//   synchronously (no promise or await of its own: with AsyncLocalStorage enabled, every
//   promise in the process pays the async hooks).
// - commit (only if something was written): ONE conditional append of ONE entry on every
//   written object's stream; its data lists the ops per object (RECORD_TX), its `keys` the
//   written conflict keys, its `reads` every read key at version `base` — including the
//   keys of the transaction's own mutators, so that the results they returned are the ones
//   the ops compute at the commit position. The log (the leader, as sequencer) commits it
//   only if no read key was written after `base`; else `conflict`, nothing is logged, and
//   the transaction runs again on a fresh snapshot after a backoff, up to `retries` times.
// - read-only transactions commit nothing and never abort: their reads all come from the
//   snapshot at `base`, a prefix of the log. One that began on local state is confirmed by
//   a sync: if none of the objects it read changed between `base` and the tail, its
//   answer is the tail's (linearizable); else it runs again on the synced state.
// - why a transaction that writes needs no sync at begin: its commit is checked against
//   every write after `base`, so reads from a stale state conflict (and the retry syncs);
//   a committed transaction's reads equal the state just before its commit position,
//   which is chosen during the call — it takes effect there.
// - commits of concurrent transactions travel together (the HTTP client sends them in one
//   POST /v1/append/batch, each with its own seq and answer; the leader sequences them in
//   one slot where they fit).
//
// Conflict keys (define.ts `conflictKeys`, per mutator/accessor) are mapped to log keys:
//   a declared key k          written as "=k"; read as "=k" and "*"
//   WHOLE_OBJECT, or nothing  written as "*";  read as "+"
//   every write also writes "+" (so whole-object reads see any change)
// Keys longer than the log's 256 characters are replaced by a hash (a collision can only
// cause a needless abort).

import { AsyncLocalStorage } from 'node:async_hooks'
import { createHash } from 'node:crypto'
import type { AccessorFn, ConflictKey } from './define.ts'
import { conflictKeysOf, WHOLE_OBJECT } from './define.ts'
import { ObjectError } from './errors.ts'
import type { ConflictDetails, LogClient, LogEntry, ReadDependency } from './log-client.ts'
import { isLogError } from './log-client.ts'
import type { ObjectCore } from './object-core.ts'
import { decodeRecord, encodeOp, encodeTx, isFlatOp } from './op-codec.ts'
import type { DecodedRecord, TxOpRecord } from './op-codec.ts'

/** What a transaction needs from its runtime (runtime.ts builds it). */
export interface TransactionHost {
  readonly log: LogClient
  /** Linearizable sync of every hosted object. */
  sync(): Promise<void>
  /** Waits until playback has passed `target` (exclusive). */
  syncTo(target: number): Promise<void>
  /** Whether syncTo(target) would resolve at once (then it need not be called). */
  applied(target: number): boolean
  /** Every hosted object has applied its stream below this position. */
  synced(): number
  /** The hosted objects' cores. */
  cores(): Iterable<ObjectCore>
  readonly readEntriesMax: number
}

export interface TransactionOptions {
  /** Attempts after the first when the commit conflicts. Default 10. */
  readonly retries?: number
  /** First backoff before a retry, ms; doubled per retry (with jitter) up to backoffMaxMs. Default 1. */
  readonly backoffMs?: number
  /** Largest backoff, ms. Default 100. */
  readonly backoffMaxMs?: number
}

/** The transaction lost to conflicting writes on its last attempt; nothing of it entered the log. */
export class TransactionAborted extends ObjectError {
  override name = 'TransactionAborted'
  /** The object whose key was written after the transaction read it. */
  readonly objectName: string
  /** The conflict key as declared by the object's definition (`*`: the whole object). */
  readonly key: string
  /** Log position of the conflicting write; -1 when not chosen yet or not remembered (see `watermark`). */
  readonly position: number
  /** Set when the log no longer remembered the key: the read's version was below this position. */
  readonly watermark: number | undefined
  /** The version (log position) the transaction had read. */
  readonly version: number
  readonly attempts: number

  constructor(conflict: ConflictDetails, attempts: number) {
    const objectName = conflict.stream.startsWith('obj/') ? conflict.stream.slice(4) : conflict.stream
    const key = conflict.key.startsWith('=') ? conflict.key.slice(1) : conflict.key === '+' ? WHOLE_OBJECT.toString() : conflict.key
    const where =
      conflict.position >= 0
        ? `at position ${conflict.position}`
        : conflict.watermark !== undefined
          ? `at or before ${conflict.watermark} (the log no longer remembers it: conservative abort)`
          : 'by a write not yet chosen'
    super('transaction_aborted', `transaction aborted after ${attempts} attempts: key ${JSON.stringify(key)} of object "${objectName}" was written ${where}, after the version read (${conflict.version})`)
    this.objectName = objectName
    this.key = key
    this.position = conflict.position
    this.watermark = conflict.watermark
    this.version = conflict.version
    this.attempts = attempts
  }
}

// ---------------------------------------------------------------------------------------
// Conflict keys

const KEY_CHARS_MAX = 256

function logKey(prefix: string, k: ConflictKey): string {
  const s = `${prefix}${String(k)}`
  return s.length <= KEY_CHARS_MAX ? s : `${prefix}#${createHash('sha256').update(String(k)).digest('base64')}`
}

function declared(core: ObjectCore, op: string, args: readonly unknown[]): readonly ConflictKey[] | null {
  const keys = conflictKeysOf(core.def, op, args)
  if (keys === undefined || keys.length === 0 || keys.includes(WHOLE_OBJECT)) return null
  return keys
}

/** Adds the log keys a call with these declared keys reads (as readKeysOf) to `into`. */
function addReadKeys(keys: readonly ConflictKey[] | null, into: Set<string>): void {
  if (keys === null) {
    into.add('+')
    return
  }
  for (let i = 0; i < keys.length; i++) into.add(logKey('=', keys[i]!))
  into.add('*')
}

/** The log keys a mutator call writes (plain ops carry them too). */
export function writeKeysOf(core: ObjectCore, mutator: string, args: readonly unknown[]): string[] {
  const keys = declared(core, mutator, args)
  if (keys === null) return ['*', '+']
  if (keys.length === 1) return [logKey('=', keys[0]!), '+'] // the common op: one literal, sized once
  const out = keys.map((k) => logKey('=', k))
  out.push('+')
  return out
}

/** The log keys a call reads (an accessor, or a mutator computing its result). */
export function readKeysOf(core: ObjectCore, op: string, args: readonly unknown[]): string[] {
  const keys = declared(core, op, args)
  if (keys === null) return ['+']
  const out = keys.map((k) => logKey('=', k))
  out.push('*')
  return out
}

// ---------------------------------------------------------------------------------------
// The transaction context

const active = new AsyncLocalStorage<Transaction>()

/** The transaction (or snapshot) the current async context runs in, for this runtime's host. */
export function activeTransaction(host: TransactionHost): Transaction | undefined {
  const tx = active.getStore()
  if (tx === undefined) return undefined
  if (tx.host !== host) throw new ObjectError('bad_argument', 'an object of another runtime was used inside a transaction: a transaction spans the objects of one runtime')
  return tx
}

interface View {
  readonly core: ObjectCore
  /** Position of the last synthetic op applied to the view. */
  nextPosition: number
  /** The streams of the view's synthetic entries: [core.stream]. */
  readonly streams: readonly string[]
  /** The log keys of this object the transaction read (all at version `base`). */
  readonly reads: Set<string>
}

/** The `data` of a view's synthetic entries: the view applies decoded records, never bytes. */
const NO_DATA = new Uint8Array(0)

export class Transaction {
  readonly host: TransactionHost
  /** The log version this transaction reads: every hosted stream applied up to and including it. */
  readonly base: number
  private readonly captured: Map<ObjectCore, unknown>
  private readonly views = new Map<ObjectCore, View>()
  private readonly writeStreams: string[] = []
  private readonly writeKeys = new Set<string>()
  private readonly ops: TxOpRecord[] = []
  /** Snapshot reads (rt.snapshot): mutators are refused. */
  private readonly readOnly: boolean
  private readonly loader: ((core: ObjectCore) => Promise<ObjectCore>) | null

  constructor(host: TransactionHost, base: number, captured: Map<ObjectCore, unknown>, readOnly: boolean, loader: ((core: ObjectCore) => Promise<ObjectCore>) | null = null) {
    this.host = host
    this.base = base
    this.captured = captured
    this.readOnly = readOnly
    this.loader = loader
  }

  /**
   * Starts a transaction on the runtime's state: after one linearizable sync when `sync`,
   * else on what this runtime has already applied (no round trip; see runTransaction).
   */
  static async begin(host: TransactionHost, readOnly: boolean, sync = true): Promise<Transaction> {
    if (sync) await host.sync()
    return Transaction.capture(host, readOnly, sync)
  }

  /** begin without the sync: on what the runtime has applied now (`synced` says whether that follows a sync). */
  static capture(host: TransactionHost, readOnly: boolean, synced: boolean): Transaction {
    // Synchronously: every hosted object is at exactly `synced`.
    const captured = new Map<ObjectCore, unknown>()
    for (const core of host.cores()) captured.set(core, core.snapshot())
    const tx = new Transaction(host, host.synced() - 1, captured, readOnly)
    tx.synced = synced
    return tx
  }

  /** Began after a linearizable sync (else on the runtime's local state). */
  synced = true

  /**
   * After a sync of the runtime: true if no object this transaction read has changed since
   * its version, i.e. its reads equal the state at the log's tail.
   */
  readsStillCurrent(): boolean {
    for (const core of this.views.keys()) if (core.version > this.base) return false
    return true
  }

  get hasWrites(): boolean {
    return this.ops.length > 0
  }

  run<T>(fn: () => Promise<T>): Promise<T> {
    return active.run(this, fn)
  }

  // access and mutate answer synchronously once the object's view exists (or can be made
  // from the captured snapshot): no promise of their own, and the runtime's async method
  // resolves with the value directly.

  private view(core: ObjectCore): View | Promise<View> {
    const v = this.views.get(core)
    if (v !== undefined) return v
    if (this.loader === null && this.captured.has(core)) return this.addView(core, core.forkAt(this.captured.get(core), Math.max(core.version, this.base)))
    return this.slowView(core)
  }

  private async slowView(core: ObjectCore): Promise<View> {
    let fork: ObjectCore
    if (this.loader !== null) {
      fork = await this.loader(core)
    } else {
      // Opened after the transaction began: caught up now. Its reads still carry `base`,
      // so a later write makes the commit conflict (never a wrong commit).
      await this.host.sync()
      if (!this.captured.has(core)) this.captured.set(core, core.snapshot())
      fork = core.forkAt(this.captured.get(core), Math.max(core.version, this.base))
    }
    return this.views.get(core) ?? this.addView(core, fork)
  }

  private addView(core: ObjectCore, fork: ObjectCore): View {
    const v: View = { core: fork, nextPosition: this.base + 1, streams: [core.stream], reads: new Set() }
    this.views.set(core, v)
    return v
  }

  access(core: ObjectCore, fn: AccessorFn<never>, accessor: string, args: unknown[]): unknown {
    const v = this.view(core)
    if (v instanceof Promise) return v.then((view) => this.accessOn(view, core, fn, accessor, args))
    return this.accessOn(v, core, fn, accessor, args)
  }

  private accessOn(v: View, core: ObjectCore, fn: AccessorFn<never>, accessor: string, args: unknown[]): unknown {
    const poison = v.core.poisonError()
    if (poison !== undefined) throw poison
    addReadKeys(declared(core, accessor, args), v.reads)
    return (fn as (state: unknown, ...a: unknown[]) => unknown)(v.core.snapshot(), ...args)
  }

  mutate(core: ObjectCore, mutator: string, args: unknown[]): unknown {
    if (this.readOnly) throw new ObjectError('bad_argument', `${core.name}.${mutator}: a snapshot is read-only`)
    const op = { type: core.def.name, version: core.def.version, mutator, args }
    let rec: DecodedRecord
    if (isFlatOp(op)) {
      // Flat args (primitives) are immutable and decode to themselves: used as they are.
      rec = { kind: 'op', type: op.type, version: op.version, mutator, args }
    } else {
      rec = decodeRecord(encodeOp(op)) // checks the args; frozen copies, as playback will see them
      if (rec.kind !== 'op') throw new Error(`internal: op did not round-trip: ${rec.kind === 'invalid' ? rec.reason : rec.kind}`)
    }
    const v = this.view(core)
    if (v instanceof Promise) return v.then((view) => this.mutateOn(view, core, rec as DecodedRecord & { kind: 'op' }))
    return this.mutateOn(v, core, rec)
  }

  private mutateOn(v: View, core: ObjectCore, rec: DecodedRecord & { kind: 'op' }): unknown {
    const entry: LogEntry = { position: v.nextPosition++, streams: v.streams, data: NO_DATA, ts: Date.now() }
    const result = v.core.applySingle(entry, rec)
    const poison = v.core.poisonError()
    // The op would poison the object for every client: the transaction fails instead, and nothing is logged.
    if (poison !== undefined) throw poison
    const keys = declared(core, rec.mutator, rec.args)
    addReadKeys(keys, v.reads)
    if (keys === null) {
      this.writeKeys.add('*')
    } else {
      for (let i = 0; i < keys.length; i++) this.writeKeys.add(logKey('=', keys[i]!))
    }
    this.writeKeys.add('+')
    if (!this.writeStreams.includes(core.stream)) this.writeStreams.push(core.stream)
    this.ops.push({ object: core.name, type: rec.type, version: rec.version, mutator: rec.mutator, args: rec.args })
    return result
  }

  /** Every read key, at version `base`. */
  private readDependencies(): ReadDependency[] {
    const out: ReadDependency[] = []
    for (const [core, v] of this.views) {
      for (const key of v.reads) out.push({ stream: core.stream, key, version: this.base })
    }
    return out
  }

  /** The commit: one conditional append (see runTransaction), answering its position. */
  append(): Promise<number[]> {
    const entry = { streams: this.writeStreams, data: encodeTx(this.ops), keys: [...this.writeKeys] }
    const reads = this.readDependencies()
    // The views and snapshots are not read again (a retry begins a new transaction): let
    // the collector have them now rather than after the round trip (many transactions
    // wait at once; what they hold would otherwise survive into the old generation).
    this.views.clear()
    this.captured.clear()
    return this.host.log.append([entry], { reads })
  }
}

/** rt.transaction: run, commit, retry on conflict; the final conflict is TransactionAborted. */
export async function runTransaction<T>(host: TransactionHost, fn: () => Promise<T>, options: TransactionOptions = {}): Promise<T> {
  const outer = active.getStore()
  if (outer !== undefined) {
    if (outer.host !== host) throw new ObjectError('bad_argument', 'a transaction of one runtime cannot nest in a transaction of another')
    return fn() // nested: part of the outer transaction
  }
  const retries = options.retries ?? 10
  const backoffMaxMs = options.backoffMaxMs ?? 100
  let backoffMs = options.backoffMs ?? 1
  if (!Number.isSafeInteger(retries) || retries < 0) throw new RangeError(`TransactionOptions.retries must be an integer >= 0, got ${retries}`)
  // The first attempt begins on local state, later ones after a sync (see the top of this file).
  let sync = false
  for (let attempt = 1; ; attempt++) {
    const tx = sync ? await Transaction.begin(host, false) : Transaction.capture(host, false, false)
    sync = true
    const value = await tx.run(fn)
    if (!tx.hasWrites) {
      if (tx.synced) return value
      await host.sync()
      if (tx.readsStillCurrent()) return value
      attempt-- // not a conflict: the read-only transaction reruns on the synced state
      continue
    }
    try {
      const [position] = await tx.append()
      if (position === undefined) throw new Error('internal: commit answered no position')
      // Answered once this runtime has applied the commit.
      if (!host.applied(position + 1)) await host.syncTo(position + 1)
      return value
    } catch (err) {
      if (!isLogError(err, 'conflict') || err.conflict === undefined) throw err
      if (attempt > retries) throw new TransactionAborted(err.conflict, attempt)
    }
    await new Promise((resolve) => setTimeout(resolve, backoffMs * (0.5 + Math.random())))
    backoffMs = Math.min(backoffMaxMs, backoffMs * 2)
  }
}

/**
 * A read-only view of every object as of log position `version` (inclusive): each object
 * is rebuilt from its own stream up to there. Fails with `trimmed` below a trim point.
 */
export async function openSnapshot(host: TransactionHost, version?: number): Promise<Snapshot> {
  if (version === undefined) {
    const tx = await Transaction.begin(host, true)
    return new Snapshot(tx)
  }
  if (!Number.isSafeInteger(version) || version < -1) throw new ObjectError('bad_argument', `snapshot version must be an integer >= -1, got ${version}`)
  await host.syncTo(version + 1)
  const loader = async (core: ObjectCore): Promise<ObjectCore> => {
    const fresh = core.fresh()
    let from = 0
    while (from <= version) {
      const page = await host.log.readStream(core.stream, { from, to: version + 1, limit: host.readEntriesMax })
      if (page.entries.length > 0) fresh.applyBatch(page.entries, page.entries.map((e) => decodeRecord(e.data)))
      if (page.next <= from) break
      from = page.next
    }
    return fresh
  }
  return new Snapshot(new Transaction(host, version, new Map(), true, loader))
}

export class Snapshot {
  constructor(private readonly tx: Transaction) {}

  /** The log position this snapshot reflects (inclusive). */
  get version(): number {
    return this.tx.base
  }

  /** Runs `fn`; accessor calls inside it read this snapshot; mutators are refused. */
  read<T>(fn: () => Promise<T>): Promise<T> {
    return this.tx.run(fn)
  }
}
