// The LevelDB LogStore (classic-level). Key layout: see level-codec.ts.
//
// Writes: persist() prepares (encodes and checksums) its writes at once, in the
// caller's turn, then queues them. One batch is in flight at a time; when it
// completes, everything queued since (up to groupCommitWritesMax writes /
// groupCommitBytesMax bytes, whole calls only) becomes the next batch: one LevelDB
// batch, one fsync, shared by all those callers (group commit). Calls complete in call
// order. compact() and repair() batches go through the same queue, alone, so that
// every mutation of the store is ordered by one queue. A failed batch stops the store
// (fail-stop): its callers and every later call reject with `failed`.
//
// In-memory state (read at open(), updated only after a batch is durable): the
// promise ballot, the applied meta, the trim points, the reclaimed prefix. Reads use a
// LevelDB snapshot so that what they see (trim point, reclaimed prefix, index, records)
// is one consistent state even while compact() deletes.
//
// Throughput check (this machine: 2 vCPU shared, Node 20, ext4; measured once with a
// throwaway script): persist() of chosen slots of 1000 entries x 100 bytes over 4
// streams, one slot per call, sync: true:
//   - 8 calls in flight (group commit: ~4 slots per batch): ~780K entries/s for 300
//     slots (30 MB); ~440K entries/s for 1000 slots (100 MB, memtable flushes and
//     LevelDB compaction included); ~1.4M entries/s with sync: false;
//   - 1 call in flight: ~490K entries/s (300 slots).
// One LevelDB record per entry would top out near 90K entries/s (PEERS.md). Reads of
// the same data: readLog ~750-850K entries/s; readStream of 1 of 4 streams
// ~200-300K entries/s (it decodes whole slot records, 4x the entries it returns).

import { ClassicLevel } from 'classic-level'
import {
  ZERO_BALLOT,
  compareBallots,
  type AppliedState,
  type Ballot,
  type ChosenRecord,
  type PersistedState,
  type SessionState,
  type SlotValue,
  type Write,
} from '../paxos/types.ts'
import { recordEnd, storedEntries, streamOffsets } from './entries.ts'
import { CorruptionError, StorageError, TrimmedError } from './errors.ts'
import {
  FORMAT_VERSION,
  acceptKey,
  asArray,
  asInt,
  asObject,
  checkedPayload,
  frame,
  frameAccept,
  frameRecord,
  keyspace,
  metaKey,
  nameOf,
  parseAcceptKey,
  parseRecordKey,
  parseSlotKey,
  recordKey,
  recordsFrom,
  sessionKey,
  slotKey,
  streamKey,
  streamKeyPosition,
  streamLastKey,
  streamRange,
  trimKey,
  unframe,
  type Where,
} from './level-codec.ts'
import type { CompactResult, LogStore, LogStoreStats, ReadRange, ReadResult, ReclaimedPrefix } from './log-store.ts'
import { validateLogStoreOptions, type LogStoreOptions } from './options.ts'
import { ReadCollector, checkSlotArgs, checkStreamName, checkWrites } from './reads.ts'
import { RecordEntries, RecordShapeError } from './record-reader.ts'

export interface LevelLogStoreOptions extends LogStoreOptions {
  /** LevelDB write buffer (memtable) size in bytes. Default 16 MiB: ~160 full slots before a flush. */
  readonly writeBufferBytes: number
  /** LevelDB block cache in bytes. Default 32 MiB. */
  readonly cacheBytes: number
  /** Snappy compression of table blocks. Default true. */
  readonly compression: boolean
}

export const DEFAULT_LEVEL_OPTIONS = Object.freeze({
  writeBufferBytes: 16 << 20,
  cacheBytes: 32 << 20,
  compression: true,
})

export function validateLevelLogStoreOptions(partial: Partial<LevelLogStoreOptions> = {}): LevelLogStoreOptions {
  const base: Partial<LogStoreOptions> = {}
  const level: Record<string, unknown> = { ...DEFAULT_LEVEL_OPTIONS }
  for (const [k, v] of Object.entries(partial)) {
    if (k in DEFAULT_LEVEL_OPTIONS) level[k] = v
    else (base as Record<string, unknown>)[k] = v
  }
  const o = validateLogStoreOptions(base)
  for (const k of ['writeBufferBytes', 'cacheBytes'] as const) {
    const v = level[k]
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) {
      throw new StorageError('bad_config', `${k} must be a positive integer, got ${String(v)}`)
    }
  }
  if (typeof level.compression !== 'boolean') throw new StorageError('bad_config', `compression must be a boolean`)
  return { ...o, ...(level as typeof DEFAULT_LEVEL_OPTIONS) }
}

type Db = ClassicLevel<Uint8Array, Uint8Array>
type BatchOp = { type: 'put'; key: Uint8Array; value: Uint8Array } | { type: 'del'; key: Uint8Array }

/** classic-level's implementation of batch (what abstract-level's batch() calls after its checks). */
interface RawBatchDb {
  _batch(ops: readonly BatchOp[], options: { sync: boolean }): Promise<void>
}

/** A chosen write, encoded; the state-dependent parts (trims, applied meta) are resolved at flush. */
interface PreparedChosen {
  readonly slot: number
  readonly end: number
  readonly lastTs: number
  /** Record, slot index and stream index puts. */
  readonly recordOps: BatchOp[]
  /** Accept delete and session puts/deletes. */
  readonly metaOps: BatchOp[]
  readonly trims: readonly { readonly stream: string; readonly before: number }[]
}

type Prepared =
  | { readonly kind: 'ops'; readonly ops: BatchOp[] }
  | { readonly kind: 'promise'; readonly ballot: Ballot }
  | { readonly kind: 'identity'; readonly op: BatchOp }
  | ({ readonly kind: 'chosen' } & PreparedChosen)

interface PersistJob {
  readonly kind: 'persist'
  readonly prepared: Prepared[]
  /**
   * Whether the batch must be fsynced: promises, accepts and identity must be durable
   * before the messages that depend on them leave; a batch of only `chosen` records
   * need not be (a quorum's fsynced accepts already make the value durable, and a
   * restarted replica learns chosen slots again), which keeps an fsync off the path
   * of every acknowledged append. A later fsync covers it anyway (one ordered WAL).
   */
  readonly sync: boolean
  readonly writes: number
  readonly bytes: number
  readonly resolve: () => void
  readonly reject: (err: unknown) => void
}

/** A batch that goes alone (compact, repair): build() runs when its turn comes. */
interface ExclusiveJob {
  readonly kind: 'exclusive'
  readonly build: (db: Db) => Promise<{ ops: BatchOp[]; after: () => void }>
  readonly resolve: () => void
  readonly reject: (err: unknown) => void
}

type Job = PersistJob | ExclusiveJob

/** Missing slots open() remembers, at most. */
const MISSING_SLOTS_MAX = 100_000

function opBytes(op: BatchOp): number {
  return op.key.length + (op.type === 'put' ? op.value.length : 0)
}

function isLevelCorruption(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    const code = (e as { code?: unknown }).code
    if (code === 'LEVEL_CORRUPTION' || /corrupt/i.test(e.message)) return true
  }
  return false
}

/** Maps LevelDB's own corruption reports to CorruptionError; passes our coded errors through. */
function mapError(err: unknown, where: { slot?: number | null; position?: number | null } = {}): unknown {
  if (err instanceof StorageError) return err
  if (isLevelCorruption(err)) {
    return new CorruptionError(`LevelDB reports corruption: ${(err as Error).message}`, { ...where, cause: err })
  }
  return err
}

/** The stored runs (offset, count) of one stream's offsets within a slot. */
function toRuns(offsets: readonly number[]): number[] {
  const runs: number[] = []
  for (const o of offsets) {
    const n = runs.length
    if (n >= 2 && runs[n - 2]! + runs[n - 1]! === o) runs[n - 1]!++
    else runs.push(o, 1)
  }
  return runs
}

function decodeBallot(v: unknown, where: Where): Ballot {
  const a = asArray(v, where)
  return { round: asInt(a[0], where), replica: asInt(a[1], where) }
}

/** Everything a chosen record stores, besides meta: record, slot index, stream index. */
function recordOps(r: ChosenRecord): { ops: BatchOp[]; end: number } {
  const end = recordEnd(r)
  const body = frameRecord(r)
  const ops: BatchOp[] = [{ type: 'put', key: recordKey(end, r.slot), value: body }]
  const summary: [string, number][] = []
  for (const [stream, offsets] of streamOffsets(r)) {
    const last = r.firstPosition + offsets[offsets.length - 1]!
    summary.push([stream, last])
    ops.push({ type: 'put', key: streamKey(stream, last), value: frame([r.slot, r.firstPosition, end, body.length, toRuns(offsets)]) })
  }
  ops.push({ type: 'put', key: slotKey(r.slot), value: frame([r.firstPosition, end, summary]) })
  return { ops, end }
}

interface SlotIndexValue {
  readonly first: number
  readonly end: number
  readonly streams: readonly (readonly [string, number])[]
}

function decodeSlotIndex(v: Uint8Array, slot: number): SlotIndexValue {
  const where: Where = { what: `slot index of slot ${slot}`, slot }
  const a = asArray(unframe(v, where), where)
  const streams = asArray(a[2], where).map((p) => {
    const pair = asArray(p, where)
    if (typeof pair[0] !== 'string') throw new CorruptionError(`${where.what}: bad stream`, { slot })
    return [pair[0], asInt(pair[1], where)] as const
  })
  return { first: asInt(a[0], where), end: asInt(a[1], where), streams }
}

/** Decodes and checks a slot record against the key it was found under. */
function decodeRecord(value: Uint8Array, end: number, slot: number): ChosenRecord {
  const where: Where = { what: `slot record of slot ${slot}`, slot }
  const r = asObject(unframe(value, where), where) as unknown as ChosenRecord
  let ok: boolean
  try {
    ok = r.slot === slot && typeof r.firstPosition === 'number' && recordEnd(r) === end
  } catch {
    ok = false // a shape no writer produces (only reachable if the checksum collided)
  }
  if (!ok) throw new CorruptionError(`${where.what}: record disagrees with its key`, { slot, position: end })
  return r
}

/** What reads need of a slot record: its stored entries one by one (record-reader.ts). */
interface StoredEntries {
  readonly slot: number
  readonly firstPosition: number
  readonly ts: number
  readonly count: number
  streams(i: number): readonly string[]
  data(i: number): Uint8Array
}

/**
 * A slot record for a read: walked in place (RecordEntries), checked against its key like
 * decodeRecord. A record the walk does not understand is decoded the general way, which
 * reports corruption (or, for a shape the walk does not know, reads it all the same).
 */
function readRecordEntries(value: Uint8Array, end: number, slot: number): StoredEntries {
  const where: Where = { what: `slot record of slot ${slot}`, slot }
  const payload = checkedPayload(value, where)
  let r: StoredEntries
  try {
    r = new RecordEntries(payload)
  } catch (err) {
    if (!(err instanceof RecordShapeError)) throw err
    const record = decodeRecord(value, end, slot)
    const entries = storedEntries(record)
    return {
      slot: record.slot,
      firstPosition: record.firstPosition,
      ts: record.ts,
      count: entries.length,
      streams: (i) => entries[i]!.streams,
      data: (i) => entries[i]!.data,
    }
  }
  if (r.slot !== slot || r.firstPosition + r.count !== end) throw new CorruptionError(`${where.what}: record disagrees with its key`, { slot, position: end })
  return r
}

export class LevelLogStore implements LogStore {
  readonly location: string
  readonly options: LevelLogStoreOptions
  private db: Db | null = null
  private closing = false
  private failure: StorageError | null = null

  private promised: Ballot = ZERO_BALLOT
  private applied = { commitSlot: 0, nextPosition: 0, lastTs: 0 }
  private trims = new Map<string, number>()
  private reclaimedPrefix: ReclaimedPrefix = { slot: 0, position: 0 }
  /**
   * Slots below commitSlot whose slot index is absent although nothing reclaimed them:
   * LevelDB dropped them (a damaged write-ahead log is skipped on recovery). Found by
   * open(); reads overlapping their positions raise CorruptionError until repair().
   */
  private missing: { slot: number; from: number; to: number }[] = []

  private readonly queue: Job[] = []
  private queuedWrites = 0
  private draining: Promise<void> | null = null
  private compactChain: Promise<unknown> = Promise.resolve()

  /** Counters for tests and status: batches written and core writes they carried. */
  readonly metrics = { batches: 0, writes: 0, persistCalls: 0 }

  constructor(location: string, options: Partial<LevelLogStoreOptions> = {}) {
    this.location = location
    this.options = validateLevelLogStoreOptions(options)
  }

  // -------------------------------------------------------------------------------
  // Lifecycle

  async open(): Promise<void> {
    if (this.db !== null) throw new StorageError('bad_request', 'store is already open')
    const db: Db = new ClassicLevel<Uint8Array, Uint8Array>(this.location, {
      keyEncoding: 'view',
      valueEncoding: 'view',
      writeBufferSize: this.options.writeBufferBytes,
      cacheSize: this.options.cacheBytes,
      compression: this.options.compression,
    })
    try {
      await db.open()
      const format = await db.get(metaKey('format'))
      if (format === undefined) {
        await db.put(metaKey('format'), frame(FORMAT_VERSION), { sync: this.options.sync })
      } else {
        const v = unframe(format, { what: 'format meta' })
        if (v !== FORMAT_VERSION) throw new StorageError('bad_config', `${this.location}: storage format ${String(v)}, expected ${FORMAT_VERSION}`)
      }
      const promise = await db.get(metaKey('promise'))
      this.promised = promise === undefined ? ZERO_BALLOT : decodeBallot(unframe(promise, { what: 'promise meta' }), { what: 'promise meta' })
      const applied = await db.get(metaKey('applied'))
      if (applied !== undefined) {
        const w: Where = { what: 'applied meta' }
        const a = asArray(unframe(applied, w), w)
        this.applied = { commitSlot: asInt(a[0], w), nextPosition: asInt(a[1], w), lastTs: asInt(a[2], w) }
      }
      const reclaimed = await db.get(metaKey('reclaimed'))
      if (reclaimed !== undefined) {
        const w: Where = { what: 'reclaimed meta' }
        const a = asArray(unframe(reclaimed, w), w)
        this.reclaimedPrefix = { slot: asInt(a[0], w), position: asInt(a[1], w) }
      }
      this.trims = await this.readTrims(db, undefined)
      this.missing = await this.findMissing(db)
    } catch (err) {
      await db.close().catch(() => undefined)
      throw mapError(err)
    }
    this.db = db
    this.closing = false
  }

  async close(): Promise<void> {
    const db = this.db
    if (db === null) return
    this.closing = true
    await this.compactChain.catch(() => undefined)
    while (this.draining !== null) await this.draining
    this.db = null
    await db.close()
  }

  /**
   * Scans the slot index keys (keys only: ~1 s per million slots) of the held range
   * [reclaimed slot, commitSlot) for slots that are absent. Bounded: at most
   * MISSING_SLOTS_MAX are remembered (the replica repairs them, then restarts find more).
   */
  private async findMissing(db: Db): Promise<{ slot: number; from: number; to: number }[]> {
    const lo = this.reclaimedPrefix.slot
    const hi = this.applied.commitSlot
    if (hi <= lo) return []
    const gaps: { fromSlot: number; toSlot: number }[] = []
    let expected = lo
    for await (const k of db.keys({ gte: slotKey(lo), lt: slotKey(hi) })) {
      const slot = parseSlotKey(k)
      if (slot === null) continue
      if (slot > expected) gaps.push({ fromSlot: expected, toSlot: slot })
      expected = slot + 1
    }
    if (expected < hi) gaps.push({ fromSlot: expected, toSlot: hi })
    const out: { slot: number; from: number; to: number }[] = []
    const neighbour = async (slot: number, side: 'end' | 'first', fallback: number): Promise<number> => {
      const v = await db.get(slotKey(slot)).catch(() => undefined)
      if (v === undefined) return fallback
      try {
        return decodeSlotIndex(v, slot)[side]
      } catch {
        return fallback
      }
    }
    for (const g of gaps) {
      const from = g.fromSlot > lo ? await neighbour(g.fromSlot - 1, 'end', this.reclaimedPrefix.position) : this.reclaimedPrefix.position
      const to = g.toSlot < hi ? await neighbour(g.toSlot, 'first', this.applied.nextPosition) : this.applied.nextPosition
      for (let slot = g.fromSlot; slot < g.toSlot && out.length < MISSING_SLOTS_MAX; slot++) out.push({ slot, from, to })
    }
    return out
  }

  /** CorruptionError if a missing slot may hold positions in [from, to). */
  private checkMissing(from: number, to: number): void {
    for (const m of this.missing) {
      if (m.from < m.to && m.from < to && m.to > from) {
        throw new CorruptionError(`slot ${m.slot} (positions ${m.from}..${m.to - 1} at most) is missing from storage`, { slot: m.slot, position: m.from })
      }
    }
  }

  missingSlots(): readonly number[] {
    return this.missing.map((m) => m.slot)
  }

  private openDb(): Db {
    if (this.failure !== null) throw this.failure
    if (this.db === null || this.closing) throw new StorageError('closed', 'store is not open')
    return this.db
  }

  // -------------------------------------------------------------------------------
  // Writes

  async persist(writes: readonly Write[]): Promise<void> {
    this.openDb()
    checkWrites(writes)
    if (this.queuedWrites + writes.length > this.options.queueWritesMax && this.queue.length > 0) {
      throw new StorageError('overloaded', `more than ${this.options.queueWritesMax} writes queued`)
    }
    const prepared: Prepared[] = []
    let bytes = 0
    for (const w of writes) {
      const p = this.prepare(w)
      prepared.push(p)
      if (p.kind === 'ops') for (const op of p.ops) bytes += opBytes(op)
      else if (p.kind === 'identity') bytes += opBytes(p.op)
      else if (p.kind === 'chosen') for (const op of [...p.recordOps, ...p.metaOps]) bytes += opBytes(op)
      else bytes += 16
    }
    this.metrics.persistCalls++
    return new Promise<void>((resolve, reject) => {
      const sync = writes.some((w) => w.kind !== 'chosen')
      this.queue.push({ kind: 'persist', prepared, sync, writes: writes.length, bytes, resolve, reject })
      this.queuedWrites += writes.length
      this.kick()
    })
  }

  private prepare(w: Write): Prepared {
    switch (w.kind) {
      case 'promise':
        return { kind: 'promise', ballot: w.ballot }
      case 'accept':
        return {
          kind: 'ops',
          ops: [{ type: 'put', key: acceptKey(w.slot), value: frameAccept(w.ballot, w.value) }],
        }
      case 'identity':
        return {
          kind: 'identity',
          op: { type: 'put', key: metaKey('identity'), value: frame([w.incarnation, w.incarnations, w.voting]) },
        }
      case 'chosen': {
        const r = w.record
        const { ops, end } = recordOps(r)
        const metaOps: BatchOp[] = [{ type: 'del', key: acceptKey(r.slot) }]
        for (const s of w.sessions) {
          if (s.state === null) metaOps.push({ type: 'del', key: sessionKey(s.clientId) })
          else metaOps.push({ type: 'put', key: sessionKey(s.clientId), value: frame(s.state) })
        }
        return { kind: 'chosen', slot: r.slot, end, lastTs: r.ts, recordOps: ops, metaOps, trims: w.trims }
      }
    }
  }

  private kick(): void {
    if (this.draining !== null) return
    this.draining = this.drain().finally(() => {
      this.draining = null
    })
  }

  /** Writes queued jobs, one batch at a time, until the queue is empty. */
  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      const head = this.queue[0]!
      if (head.kind === 'exclusive') {
        this.queue.shift()
        try {
          if (this.failure !== null) throw this.failure
          if (this.db === null) throw new StorageError('closed', 'store is not open')
          const { ops, after } = await head.build(this.db)
          if (ops.length > 0) await this.write(ops)
          after()
          head.resolve()
        } catch (err) {
          head.reject(mapError(err))
        }
        continue
      }
      // Group commit: whole persist calls, in order, within the bounds (the first always).
      const group: PersistJob[] = []
      let writes = 0
      let bytes = 0
      while (this.queue.length > 0) {
        const j = this.queue[0]!
        if (j.kind !== 'persist') break
        if (group.length > 0 && (writes + j.writes > this.options.groupCommitWritesMax || bytes + j.bytes > this.options.groupCommitBytesMax)) break
        this.queue.shift()
        group.push(j)
        writes += j.writes
        bytes += j.bytes
      }
      this.queuedWrites -= writes
      try {
        if (this.failure !== null) throw this.failure
        const { ops, commit } = this.buildBatch(group)
        await this.write(ops, group.some((j) => j.sync))
        commit()
        this.metrics.writes += writes
        for (const j of group) j.resolve()
      } catch (err) {
        for (const j of group) j.reject(err)
      }
    }
  }

  private async write(ops: BatchOp[], sync = true): Promise<void> {
    const db = this.db
    if (db === null || db.status !== 'open') throw new StorageError('closed', 'store is not open')
    for (const op of ops) {
      if (!(op.key instanceof Uint8Array) || (op.type === 'put' && !(op.value instanceof Uint8Array))) throw new Error('internal: a batch op without bytes')
    }
    try {
      // Straight to classic-level's own batch (the abstract-level implementation hook):
      // our ops are already {type, key, value} of bytes, and abstract-level's public batch()
      // re-validates, re-encodes and copies each op (~5 µs per op, ~half the CPU of a
      // 15-op batch in a micro-benchmark). We use no hooks, events or sublevels.
      await (db as unknown as RawBatchDb)._batch(ops, { sync: this.options.sync && sync })
      this.metrics.batches++
    } catch (err) {
      // Fail-stop: after a failed batch we no longer know what the disk holds.
      this.failure = new StorageError('failed', `LevelDB batch failed: ${(err as Error).message}`, { cause: err })
      for (const j of this.queue.splice(0)) j.reject(this.failure)
      this.queuedWrites = 0
      throw this.failure
    }
  }

  /** Resolves the state-dependent parts of a group against the in-memory state. */
  private buildBatch(group: readonly PersistJob[]): { ops: BatchOp[]; commit: () => void } {
    const ops: BatchOp[] = []
    let promised = this.promised
    let applied: typeof this.applied | null = null
    const trims = new Map<string, number>()
    for (const j of group) {
      for (const p of j.prepared) {
        switch (p.kind) {
          case 'ops':
            ops.push(...p.ops)
            break
          case 'identity':
            ops.push(p.op)
            break
          case 'promise':
            if (compareBallots(p.ballot, promised) > 0) {
              promised = p.ballot
              ops.push({ type: 'put', key: metaKey('promise'), value: frame([p.ballot.round, p.ballot.replica]) })
            }
            break
          case 'chosen':
            // Records of reclaimed slots are not stored again.
            if (p.slot >= this.reclaimedPrefix.slot) ops.push(...p.recordOps)
            ops.push(...p.metaOps)
            for (const t of p.trims) {
              // Trim points only rise (a lower one is ignored); an equal one is stored so
              // that a first trim at 0 is remembered, as the image does.
              const cur = trims.get(t.stream) ?? this.trims.get(t.stream) ?? 0
              if (t.before >= cur) {
                trims.set(t.stream, t.before)
                ops.push({ type: 'put', key: trimKey(t.stream), value: frame(t.before) })
              }
            }
            applied = { commitSlot: p.slot + 1, nextPosition: p.end, lastTs: p.lastTs }
            break
        }
      }
    }
    if (applied !== null) {
      ops.push({ type: 'put', key: metaKey('applied'), value: frame([applied.commitSlot, applied.nextPosition, applied.lastTs]) })
    }
    const finalApplied = applied
    return {
      ops,
      commit: () => {
        this.promised = promised
        if (finalApplied !== null) this.applied = finalApplied
        for (const [s, b] of trims) this.trims.set(s, b)
      },
    }
  }

  private enqueueExclusive(build: ExclusiveJob['build']): Promise<void> {
    this.openDb()
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ kind: 'exclusive', build, resolve, reject })
      this.kick()
    })
  }

  // -------------------------------------------------------------------------------
  // Reads

  /** Runs `fn` with a snapshot of the database, mapping LevelDB corruption reports. */
  private async withSnapshot<T>(fn: (db: Db, snapshot: ReturnType<Db['snapshot']>) => Promise<T>): Promise<T> {
    const db = this.openDb()
    const snapshot = db.snapshot()
    try {
      return await fn(db, snapshot)
    } catch (err) {
      throw mapError(err)
    } finally {
      await snapshot.close()
    }
  }

  async load(): Promise<PersistedState | null> {
    return this.withSnapshot(async (db, snapshot) => {
      const idv = await db.get(metaKey('identity'), { snapshot })
      if (idv === undefined) return null
      const iw: Where = { what: 'identity meta' }
      const id = asArray(unframe(idv, iw), iw)
      const incarnations = asArray(id[1], iw).map((x) => asInt(x, iw))
      if (typeof id[2] !== 'boolean') throw new CorruptionError('identity meta: bad voting flag')

      const promiseV = await db.get(metaKey('promise'), { snapshot })
      const promised = promiseV === undefined ? ZERO_BALLOT : decodeBallot(unframe(promiseV, { what: 'promise meta' }), { what: 'promise meta' })
      const appliedV = await db.get(metaKey('applied'), { snapshot })
      let applied = { commitSlot: 0, nextPosition: 0, lastTs: 0 }
      if (appliedV !== undefined) {
        const w: Where = { what: 'applied meta' }
        const a = asArray(unframe(appliedV, w), w)
        applied = { commitSlot: asInt(a[0], w), nextPosition: asInt(a[1], w), lastTs: asInt(a[2], w) }
      }
      const reclaimedV = await db.get(metaKey('reclaimed'), { snapshot })
      const reclaimedSlot = reclaimedV === undefined ? 0 : asInt(asArray(unframe(reclaimedV, { what: 'reclaimed meta' }), { what: 'reclaimed meta' })[0], { what: 'reclaimed meta' })

      const accepted: { slot: number; ballot: Ballot; value: SlotValue }[] = []
      for await (const [k, v] of db.iterator({ gte: acceptKey(applied.commitSlot), lt: keyspace('a').lt, snapshot })) {
        const slot = parseAcceptKey(k) ?? -1
        const w: Where = { what: `accept record of slot ${slot}`, slot }
        const a = asArray(unframe(v, w), w)
        accepted.push({ slot, ballot: decodeBallot(a[0], w), value: asObject(a[1], w) as unknown as SlotValue })
      }

      const sessionList: [string, SessionState][] = []
      for await (const [k, v] of db.iterator({ ...keyspace('e'), snapshot })) {
        const clientId = nameOf(k)
        const w: Where = { what: `session of ${clientId}` }
        sessionList.push([clientId, asObject(unframe(v, w), w) as unknown as SessionState])
      }
      sessionList.sort((a, b) => a[1].lastSlot - b[1].lastSlot || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))

      const trims = await this.readTrims(db, snapshot)

      // recentChosen: the newest records of [commitSlot - recentChosenMax, commitSlot).
      // A damaged record cuts the tail there: load() never fails on slot records (the
      // replica must be able to start and refetch them); reads of them raise CorruptionError.
      const fromSlot = Math.max(reclaimedSlot, applied.commitSlot - this.options.recentChosenMax)
      const slotEntries: { slot: number; idx: SlotIndexValue | null }[] = []
      for await (const [k, v] of db.iterator({ gte: slotKey(fromSlot), lt: slotKey(Math.max(fromSlot, applied.commitSlot)), snapshot })) {
        const slot = parseSlotKey(k) ?? -1
        let idx: SlotIndexValue | null = null
        try {
          idx = decodeSlotIndex(v, slot)
        } catch (err) {
          if (!(err instanceof CorruptionError)) throw err
        }
        slotEntries.push({ slot, idx })
      }
      const present = slotEntries.filter((e) => e.idx !== null)
      const values = await db.getMany(present.map((e) => recordKey(e.idx!.end, e.slot)), { snapshot })
      // Only a contiguous run of slots ending at commitSlot - 1 is a tail of the log.
      let recent: ChosenRecord[] = []
      let vi = 0
      let expected = fromSlot
      for (const e of slotEntries) {
        if (e.slot !== expected) recent = []
        expected = e.slot + 1
        if (e.idx === null) {
          recent = []
          continue
        }
        const v = values[vi++]
        try {
          if (v === undefined) throw new CorruptionError(`slot record of slot ${e.slot} is missing`, { slot: e.slot })
          recent.push(decodeRecord(v, e.idx.end, e.slot))
        } catch (err) {
          if (!(err instanceof CorruptionError)) throw err
          recent = []
        }
      }

      if (expected !== applied.commitSlot) recent = []

      const appliedState: AppliedState = {
        commitSlot: applied.commitSlot,
        nextPosition: applied.nextPosition,
        lastTs: applied.lastTs,
        sessions: new Map(sessionList),
        trims,
      }
      return {
        incarnation: asInt(id[0], iw),
        incarnations,
        voting: id[2],
        promised,
        accepted,
        applied: appliedState,
        recentChosen: recent,
      }
    })
  }

  private async readTrims(db: Db, snapshot: ReturnType<Db['snapshot']> | undefined): Promise<Map<string, number>> {
    const trims = new Map<string, number>()
    for await (const [k, v] of db.iterator({ ...keyspace('t'), snapshot })) {
      const stream = nameOf(k)
      const w: Where = { what: `trim point of ${stream}` }
      trims.set(stream, asInt(unframe(v, w), w))
    }
    return trims
  }

  async chosenRange(fromSlot: number, toSlot: number, maxRecords: number): Promise<ChosenRecord[]> {
    checkSlotArgs(fromSlot, toSlot, maxRecords)
    if (toSlot <= fromSlot) return []
    return this.withSnapshot(async (db, snapshot) => {
      const sv = await db.get(slotKey(fromSlot), { snapshot })
      if (sv === undefined) {
        const rv = await db.get(metaKey('reclaimed'), { snapshot })
        const reclaimedSlot = rv === undefined ? 0 : asInt(asArray(unframe(rv, { what: 'reclaimed meta' }), { what: 'reclaimed meta' })[0], { what: 'reclaimed meta' })
        if (fromSlot >= reclaimedSlot && fromSlot < this.applied.commitSlot) {
          throw new CorruptionError(`slot ${fromSlot} is missing from storage`, { slot: fromSlot })
        }
        return []
      }
      const start = decodeSlotIndex(sv, fromSlot)
      const out: ChosenRecord[] = []
      let bytes = 0
      let expected = fromSlot
      const it = db.iterator({ ...recordsFrom(start.end, fromSlot), snapshot })
      try {
        for await (const [k, v] of it) {
          const key = parseRecordKey(k)
          if (key === null || key.slot !== expected) {
            throw new CorruptionError(`slot record of slot ${expected} is missing or misplaced`, { slot: expected })
          }
          out.push(decodeRecord(v, key.end, key.slot))
          bytes += v.length
          expected++
          if (expected >= toSlot || out.length >= maxRecords || bytes >= this.options.chosenRangeBytesMax) break
        }
      } finally {
        await it.close()
      }
      return out
    })
  }

  async readLog(range: ReadRange): Promise<ReadResult> {
    const c = new ReadCollector(range, this.options)
    if (c.from < this.reclaimedPrefix.position) {
      throw new TrimmedError(`positions below ${this.reclaimedPrefix.position} are reclaimed`, this.reclaimedPrefix.position)
    }
    if (c.full) return c.result(c.from)
    const tailBefore = this.applied.nextPosition
    return this.withSnapshot(async (db, snapshot) => {
      // The record holding `from` is the first whose end > from.
      const it = db.iterator({ ...recordsFrom(c.from + 1, 0), snapshot })
      let scannedEnd = c.from
      let expectedFirst: number | null = null
      let prevSlot = -1
      let scanBytes = 0
      try {
        for await (const [k, v] of it) {
          const key = parseRecordKey(k)
          if (key === null) throw new CorruptionError('bad slot record key', { position: scannedEnd })
          const r = readRecordEntries(v, key.end, key.slot)
          if (expectedFirst === null && r.firstPosition > c.from) {
            // [from, firstPosition) is held by no record: reclaimed meanwhile, or lost.
            const rv = await db.get(metaKey('reclaimed'), { snapshot })
            const reclaimedPos = rv === undefined ? 0 : asInt(asArray(unframe(rv, { what: 'reclaimed meta' }), { what: 'reclaimed meta' })[1], { what: 'reclaimed meta' })
            if (c.from < reclaimedPos) throw new TrimmedError(`positions below ${reclaimedPos} are reclaimed`, reclaimedPos)
            this.checkMissing(c.from, c.from + 1)
            throw new CorruptionError(`no slot record holds position ${c.from}`, { slot: key.slot - 1, position: c.from })
          }
          if (expectedFirst !== null && r.firstPosition !== expectedFirst) {
            throw new CorruptionError(`no slot record holds position ${expectedFirst}`, { slot: prevSlot + 1, position: expectedFirst })
          }
          expectedFirst = key.end
          prevSlot = key.slot
          if (r.firstPosition >= c.to) break
          let going = true
          for (let off = Math.max(0, c.from - r.firstPosition); off < r.count && going; off++) {
            going = c.add(r.firstPosition + off, r.streams(off), r.data(off), r.ts)
          }
          scannedEnd = key.end
          scanBytes += v.length
          if (!going) break
          if (scanBytes >= this.options.readScanBytesMax) {
            c.stop()
            break
          }
        }
      } finally {
        await it.close()
      }
      if (!c.full && scannedEnd < Math.min(c.to, tailBefore)) {
        // The newest records are gone although the applied meta counts them.
        this.checkMissing(scannedEnd, scannedEnd + 1)
        throw new CorruptionError(`no slot record holds position ${scannedEnd}`, { slot: prevSlot + 1, position: scannedEnd })
      }
      return c.result(scannedEnd)
    })
  }

  async readStream(stream: string, range: ReadRange): Promise<ReadResult> {
    checkStreamName(stream)
    const c = new ReadCollector(range, this.options)
    const tailBefore = this.applied.nextPosition
    return this.withSnapshot(async (db, snapshot) => {
      const tv = await db.get(trimKey(stream), { snapshot })
      const trim = tv === undefined ? 0 : asInt(unframe(tv, { what: `trim point of ${stream}` }), { what: `trim point of ${stream}` })
      if (c.from < trim) throw new TrimmedError(`stream ${stream} is trimmed before ${trim}`, trim, stream)
      if (c.full) return c.result(c.from)

      // Plan from the stream index: which records, which runs of offsets (offset, count pairs) in range.
      const plan: { slot: number; first: number; end: number; runs: number[]; last: number }[] = []
      let planned = 0
      let scanBytes = 0
      let bounded = false
      const it = db.iterator({ ...streamRange(stream, c.from), snapshot })
      try {
        for await (const [k, v] of it) {
          const last = streamKeyPosition(k)
          const w: Where = { what: `stream index ${stream}@${last}`, position: last }
          const a = asArray(unframe(v, w), w)
          const slot = asInt(a[0], w)
          const first = asInt(a[1], w)
          const end = asInt(a[2], w)
          const recordBytes = asInt(a[3], w)
          const runs = asArray(a[4], w)
          const wanted: number[] = []
          let count = 0
          let lastOffset = -1
          for (let i = 0; i + 1 < runs.length; i += 2) {
            const o = asInt(runs[i], w)
            const n = asInt(runs[i + 1], w)
            const lo = Math.max(o, c.from - first)
            const hi = Math.min(o + n, c.to - first)
            if (hi <= lo) continue
            wanted.push(lo, hi - lo)
            count += hi - lo
            lastOffset = hi - 1
          }
          if (count === 0) {
            if (first + asInt(runs[0], w) >= c.to) break // the stream's next entries are all past `to`
            continue
          }
          plan.push({ slot, first, end, runs: wanted, last: lastOffset })
          planned += count
          scanBytes += recordBytes
          if (planned >= this.options.readEntriesMax || planned >= c.limit || scanBytes >= this.options.readScanBytesMax) {
            bounded = true
            break
          }
        }
      } finally {
        await it.close()
      }
      // A slot lost by LevelDB may have held entries of this stream before those planned.
      const lastPlanned = plan[plan.length - 1]
      this.checkMissing(c.from, bounded && lastPlanned !== undefined ? lastPlanned.first + lastPlanned.last + 1 : c.to)
      const values = await db.getMany(plan.map((p) => recordKey(p.end, p.slot)), { snapshot })
      for (let i = 0; i < plan.length; i++) {
        const p = plan[i]!
        const v = values[i]
        if (v === undefined) {
          throw new CorruptionError(`slot record of slot ${p.slot} is missing (indexed by stream ${stream})`, { slot: p.slot, position: p.first })
        }
        const r = readRecordEntries(v, p.end, p.slot)
        if (r.firstPosition !== p.first) throw new CorruptionError(`slot record of slot ${p.slot} disagrees with the stream index`, { slot: p.slot, position: p.first })
        let checked: readonly string[] | null = null // (entries share streams arrays: one check per run of them)
        for (let k = 0; k < p.runs.length && !c.full; k += 2) {
          for (let off = p.runs[k]!, stop = off + p.runs[k + 1]!; off < stop; off++) {
            const streams = off < r.count ? r.streams(off) : undefined
            if (streams === undefined || (streams !== checked && !streams.includes(stream))) {
              throw new CorruptionError(`slot record of slot ${p.slot} disagrees with the stream index`, { slot: p.slot, position: p.first + off })
            }
            checked = streams
            if (!c.add(p.first + off, streams, r.data(off), r.ts)) break
          }
        }
        if (c.full) break
      }
      if (bounded) c.stop()
      const last = c.entries[c.entries.length - 1]
      // Not the tail as of now: a batch that landed after the snapshot may hold entries we did not see.
      return c.result(Math.max(tailBefore, last === undefined ? 0 : last.position + 1))
    })
  }

  async streamLast(stream: string): Promise<number> {
    checkStreamName(stream)
    return this.withSnapshot(async (db, snapshot) => {
      const keys = await db.keys({ ...streamRange(stream, 0), reverse: true, limit: 1, snapshot }).all()
      const k = keys[0]
      if (k !== undefined) return streamKeyPosition(k)
      const lv = await db.get(streamLastKey(stream), { snapshot })
      return lv === undefined ? -1 : asInt(unframe(lv, { what: `last position of ${stream}` }), { what: `last position of ${stream}` })
    })
  }

  tail(): number {
    return this.applied.nextPosition
  }

  trimPoint(stream: string): number {
    return this.trims.get(stream) ?? 0
  }

  reclaimed(): ReclaimedPrefix {
    return this.reclaimedPrefix
  }

  // -------------------------------------------------------------------------------
  // Reclaiming and repair

  /**
   * One bounded reclaiming step: examines at most compactSlotsMax slot-index values
   * from the reclaimed prefix on, and reclaims the longest prefix of them whose every
   * stored entry is trimmed in every stream it belongs to (record, slot index and
   * stream index keys deleted in one batch; the reclaimed prefix moves). Reclaiming is
   * prefix-only so that readLog can promise "below the prefix: trimmed; above: all
   * there": a record that is reclaimable behind one that is not waits for it.
   */
  compact(): Promise<CompactResult> {
    this.openDb()
    const step = this.compactChain.then(() => this.compactStep())
    this.compactChain = step.catch(() => undefined)
    return step
  }

  private async compactStep(): Promise<CompactResult> {
    const start = this.reclaimedPrefix.slot
    const trims = this.trims // durable trim points; they only rise, so a decision stays valid
    const doomed: { slot: number; idx: SlotIndexValue }[] = []
    let examined = 0
    await this.withSnapshot(async (db, snapshot) => {
      let expected = start
      for await (const [k, v] of db.iterator({ gte: slotKey(start), lt: keyspace('s').lt, limit: this.options.compactSlotsMax, snapshot })) {
        examined++
        const slot = parseSlotKey(k)
        if (slot !== expected) return
        const idx = decodeSlotIndex(v, slot)
        for (const [s, last] of idx.streams) if ((trims.get(s) ?? 0) <= last) return
        doomed.push({ slot, idx })
        expected++
      }
    })
    const done = examined < this.options.compactSlotsMax || doomed.length < examined
    if (doomed.length === 0) return { reclaimedSlots: 0, done }
    let reclaimedSlots = 0
    await this.enqueueExclusive(async () => {
      // Only if nothing moved the prefix meanwhile (compact steps are chained, so this holds).
      if (this.reclaimedPrefix.slot !== start) return { ops: [], after: () => undefined }
      const ops: BatchOp[] = []
      const lastOf = new Map<string, number>()
      for (const { slot, idx } of doomed) {
        ops.push({ type: 'del', key: recordKey(idx.end, slot) }, { type: 'del', key: slotKey(slot) })
        for (const [s, last] of idx.streams) {
          ops.push({ type: 'del', key: streamKey(s, last) })
          lastOf.set(s, last)
        }
      }
      for (const [s, last] of lastOf) ops.push({ type: 'put', key: streamLastKey(s), value: frame(last) })
      const tip = doomed[doomed.length - 1]!
      const next: ReclaimedPrefix = { slot: tip.slot + 1, position: tip.idx.end }
      ops.push({ type: 'put', key: metaKey('reclaimed'), value: frame([next.slot, next.position]) })
      return {
        ops,
        after: () => {
          this.reclaimedPrefix = next
          reclaimedSlots = doomed.length
        },
      }
    })
    return { reclaimedSlots, done }
  }

  async repair(records: readonly ChosenRecord[]): Promise<void> {
    checkWrites(records.map((record) => ({ kind: 'chosen', record, sessions: [], trims: [] })))
    await this.enqueueExclusive(async (db) => {
      const ops: BatchOp[] = []
      for (const r of records) {
        if (r.slot < this.reclaimedPrefix.slot || r.slot >= this.applied.commitSlot) continue
        const fresh = recordOps(r)
        // If the old slot index is readable and names other keys, drop them first.
        const old = await db.get(slotKey(r.slot)).catch(() => undefined)
        if (old !== undefined) {
          try {
            const idx = decodeSlotIndex(old, r.slot)
            if (idx.end !== fresh.end) ops.push({ type: 'del', key: recordKey(idx.end, r.slot) })
            for (const [s, last] of idx.streams) ops.push({ type: 'del', key: streamKey(s, last) })
          } catch (err) {
            if (!(err instanceof CorruptionError)) throw err
          }
        }
        ops.push(...fresh.ops)
      }
      const repaired = new Set(records.map((r) => r.slot))
      return { ops, after: () => void (this.missing = this.missing.filter((m) => !repaired.has(m.slot))) }
    })
  }

  async stats(): Promise<LogStoreStats> {
    return this.withSnapshot(async (db, snapshot) => {
      let slotRecords = 0
      let streamIndexKeys = 0
      for await (const _k of db.keys({ ...keyspace('r'), snapshot })) slotRecords++
      for await (const _k of db.keys({ ...keyspace('x'), snapshot })) streamIndexKeys++
      return { slotRecords, streamIndexKeys, reclaimed: this.reclaimedPrefix }
    })
  }
}
