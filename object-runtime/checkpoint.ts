// Checkpoints: an object's state at a point of the log, written into the log itself, so
// that the history below it can be trimmed and a new client opens the object in time
// proportional to its state, not to its history.
//
// Streams of object `name` (besides its op stream `obj/<name>`):
//
//   cp/<name>   checkpoint data: START, then CHUNKs (each at most `chunkBytesMax` bytes of
//               encoded state; see checkpoint-format.ts for the state encoding)
//   ci/<name>   checkpoint index: one END per complete checkpoint. The server's stream index
//               gives its last position (`tail([ci/<name>])`), so opening finds the newest
//               complete checkpoint without scanning.
//
// Records (msgpack arrays; kind RECORD_CHECKPOINT, never on an op stream, so playback of
// `obj/<name>` never meets them and clients that do not know checkpoints are unaffected):
//
//   START [2, 'start', id, format, type, typeVersion, version, upTo, bytes, chunks]
//   CHUNK [2, 'chunk', id, index, data]
//   END   [2, 'end',   id, format, type, typeVersion, version, upTo, bytes, chunks, crc32, startPosition, prevEnd]
//
// `version` is the object's version (position of its last applied op), `upTo` the
// position below which every entry of its stream is in the state: loading a checkpoint
// sets the state and version, and playback goes on at `upTo`. Op entries that land on the
// stream while the checkpoint is being written are simply replayed after loading it.
//
// Writing (writeCheckpoint), in this order:
//   1. encode the snapshot (immutable: writers and readers go on meanwhile);
//   2. append START on cp; read the newest END position e on ci (the previous checkpoint,
//      which this one is chained to) and that END; check fence rules F1 and F2 (below);
//      ELECTION: read the cp entries in (e, START]: the first START there whose log time
//      is within `takeoverMs` of ours wins; others give up (outcome `busy`). A crashed
//      checkpointer's START goes stale after `takeoverMs` of log time and is taken over.
//      The log's order decides, so every contender reaches the same verdict;
//   3. append the CHUNKs; 4. append END on ci, fenced (F3); the checkpoint is complete
//      once it is chosen;
//   5. trim: obj below `upTo`; cp below the START of the previous checkpoint (the END
//      at e), ci below e — the previous checkpoint stays as a fallback for readers in the
//      middle of loading it, everything older goes, so every stream is trimmed and
//      storage reclaiming never stalls.
//
// Fencing. The election alone cannot stop overlapping checkpointers: one paused past its
// lease (GC, a stalled connection) resumes while another has taken over, and trims are
// not ordered with appends. So every END is chained to the END before it, and a
// checkpoint breaking one of these rules is abandoned before it writes its END or trims
// anything (outcome `superseded`):
//   F1  its START comes after e (else a checkpoint completed since it started);
//   F2  its `upTo` is at least the `upTo` of the END at e;
//   F3  its END is appended only if e is still the newest END: a fresh tail shows no ci
//       entry after e, and the END is a conditional append (conflict key END_KEY on ci,
//       read at that tail) refused if any END was written since.
// By F3 the ENDs form one chain E1 < E2 < ... (positions), each naming its predecessor
// as `prevEnd`; only a checkpoint whose END is on the chain trims, and E(k) trims obj
// below upTo(k), cp below start(k-1), ci below E(k-1). Then for every j >= k:
// upTo(j) >= upTo(k) (F2, by induction), start(j) > E(j-1) >= E(k-1) > start(k-1) (F1),
// E(j) > E(k-1): no trim, however late it runs, reaches the data, END or op history of
// a checkpoint at or after its own; in particular the newest complete checkpoint (the
// END at ci's tail) always loads. (An END written without the key, by an older client,
// is outside this guarantee.)
//
// Loading (loadCheckpoint): the END at ci's last position, plus the ENDs still on ci
// between its `prevEnd` and it, newest `upTo` first; each is read (chunks between its
// START and its END, filtered by id), checked (count, size, CRC) and decoded; the first
// good one wins. An incomplete checkpoint has no END and is never considered; a corrupt
// one is skipped in favour of the previous one. No usable checkpoint: null, and the
// caller replays from position 0 — which answers a clear `history_trimmed` error if the
// stream was trimmed.

import { randomUUID } from 'node:crypto'
import { Decoder, Encoder } from '@msgpack/msgpack'
import { STATE_FORMAT_VERSION, crc32, decodeState, encodeState } from './checkpoint-format.ts'
import { ObjectError } from './errors.ts'
import { isLogError } from './log-client.ts'
import type { LogClient, LogEntry } from './log-client.ts'

export const RECORD_CHECKPOINT = 2

/** Data stream of an object's checkpoints. */
export function checkpointDataStream(objectName: string): string {
  return `cp/${objectName}`
}

/** Index stream of an object's checkpoints: one END entry per complete checkpoint. */
export function checkpointIndexStream(objectName: string): string {
  return `ci/${objectName}`
}

// ---------------------------------------------------------------------------------------
// Policy

/** Checkpoint settings of a runtime (`connect({ config: { checkpoint: { everyEntries: 10_000 } } })`). */
export interface CheckpointPolicy {
  /** Checkpoint an object after this many entries of its stream were applied since the last one. 0 = off (default). */
  readonly everyEntries: number
  /** ... or after this many bytes of op data. 0 = off (default). */
  readonly everyBytes: number
  /** Largest chunk of encoded state per entry, bytes. Default 256 KiB (entries are limited to 1 MiB). */
  readonly chunkBytesMax: number
  /** Log time after which an unfinished checkpoint (a crashed checkpointer) is taken over, ms. Default 10,000. */
  readonly takeoverMs: number
  /** ENDs read and data tried while opening before giving up and replaying. Default 4. */
  readonly loadAttemptsMax: number
}

export const DEFAULT_CHECKPOINT_POLICY: CheckpointPolicy = Object.freeze({
  everyEntries: 0,
  everyBytes: 0,
  chunkBytesMax: 256 * 1024,
  takeoverMs: 10_000,
  loadAttemptsMax: 4,
})

export function validateCheckpointPolicy(partial: Partial<CheckpointPolicy> = {}): CheckpointPolicy {
  const p: CheckpointPolicy = { ...DEFAULT_CHECKPOINT_POLICY, ...partial }
  const int = (name: keyof CheckpointPolicy, min: number, max = Number.MAX_SAFE_INTEGER): void => {
    const v = p[name]
    if (!Number.isSafeInteger(v) || v < min || v > max) throw new RangeError(`CheckpointPolicy.${name} must be an integer in [${min}, ${max}], got ${v}`)
  }
  int('everyEntries', 0)
  int('everyBytes', 0)
  int('chunkBytesMax', 1024, 1024 * 1024 - 4096)
  int('takeoverMs', 1)
  int('loadAttemptsMax', 1)
  return Object.freeze(p)
}

export function policyEnabled(p: CheckpointPolicy): boolean {
  return p.everyEntries > 0 || p.everyBytes > 0
}

// ---------------------------------------------------------------------------------------
// Records

const encoder = new Encoder()
const decoder = new Decoder()

interface StartRecord {
  readonly kind: 'start'
  readonly id: string
  readonly format: number
  readonly type: string
  readonly typeVersion: number
  readonly version: number
  readonly upTo: number
  readonly bytes: number
  readonly chunks: number
}

interface ChunkRecord {
  readonly kind: 'chunk'
  readonly id: string
  readonly index: number
  readonly data: Uint8Array
}

interface EndRecord {
  readonly kind: 'end'
  readonly id: string
  readonly format: number
  readonly type: string
  readonly typeVersion: number
  readonly version: number
  readonly upTo: number
  readonly bytes: number
  readonly chunks: number
  readonly crc: number
  readonly startPosition: number
  /** Position (on ci) of the newest complete checkpoint when this one started, -1 if none. */
  readonly prevEnd: number
}

type CheckpointRecord = StartRecord | ChunkRecord | EndRecord

function encodeRecord(r: CheckpointRecord): Uint8Array {
  switch (r.kind) {
    case 'start':
      return encoder.encode([RECORD_CHECKPOINT, 'start', r.id, r.format, r.type, r.typeVersion, r.version, r.upTo, r.bytes, r.chunks])
    case 'chunk':
      return encoder.encode([RECORD_CHECKPOINT, 'chunk', r.id, r.index, r.data])
    case 'end':
      return encoder.encode([
        RECORD_CHECKPOINT, 'end', r.id, r.format, r.type, r.typeVersion, r.version, r.upTo, r.bytes, r.chunks, r.crc, r.startPosition, r.prevEnd,
      ])
  }
}

/** Decodes a checkpoint record; undefined for anything else (garbage is ignored, never trusted). */
function decodeCheckpointRecord(data: Uint8Array): CheckpointRecord | undefined {
  let v: unknown
  try {
    v = decoder.decode(data)
  } catch {
    return undefined
  }
  if (!Array.isArray(v) || v[0] !== RECORD_CHECKPOINT) return undefined
  const a = v as unknown[]
  const num = (i: number): number | undefined => (typeof a[i] === 'number' && Number.isSafeInteger(a[i]) ? (a[i] as number) : undefined)
  const str = (i: number): string | undefined => (typeof a[i] === 'string' ? (a[i] as string) : undefined)
  const id = str(2)
  if (id === undefined) return undefined
  if (a[1] === 'chunk' && a.length === 5) {
    const index = num(3)
    const chunk = a[4]
    if (index === undefined || !(chunk instanceof Uint8Array)) return undefined
    return { kind: 'chunk', id, index, data: chunk }
  }
  const format = num(3)
  const type = str(4)
  const typeVersion = num(5)
  const version = num(6)
  const upTo = num(7)
  const bytes = num(8)
  const chunks = num(9)
  if (format === undefined || type === undefined || typeVersion === undefined || version === undefined || upTo === undefined || bytes === undefined || chunks === undefined) {
    return undefined
  }
  if (a[1] === 'start' && a.length === 10) return { kind: 'start', id, format, type, typeVersion, version, upTo, bytes, chunks }
  if (a[1] === 'end' && a.length === 13) {
    const crc = num(10)
    const startPosition = num(11)
    const prevEnd = num(12)
    if (crc === undefined || startPosition === undefined || prevEnd === undefined) return undefined
    return { kind: 'end', id, format, type, typeVersion, version, upTo, bytes, chunks, crc, startPosition, prevEnd }
  }
  return undefined
}

// ---------------------------------------------------------------------------------------
// Writing

/** What is checkpointed: a snapshot taken synchronously from a joined object. */
export interface CheckpointSource {
  readonly objectName: string
  readonly objectStream: string
  readonly type: string
  readonly typeVersion: number
  /** Immutable snapshot of the state. */
  readonly state: unknown
  /** The object's version (last applied op position, -1 if none). */
  readonly version: number
  /** Every entry of the object's stream below this position is in `state`. */
  readonly upTo: number
}

/** Where a checkpoint write stops, for crash tests: after that step, as if the process died. */
export type CheckpointStage = 'start' | 'some-chunks' | 'chunks' | 'end' | 'trim-object'

export interface CheckpointInfo {
  readonly outcome: 'written'
  readonly version: number
  readonly upTo: number
  readonly startPosition: number
  readonly endPosition: number
  readonly bytes: number
  readonly chunks: number
}

export type CheckpointResult =
  | CheckpointInfo
  /** Another client's checkpoint of this object is in progress (it won the election). */
  | { readonly outcome: 'busy'; readonly holderStart: number }
  /**
   * Abandoned, nothing trimmed: a checkpoint completed after this one started (its END
   * at `newestEnd`), or the newest one already covers more of the stream than this one.
   */
  | { readonly outcome: 'superseded'; readonly newestEnd: number }
  /** Stopped at a stage on request (crash tests). */
  | { readonly outcome: 'halted'; readonly stage: CheckpointStage }

export interface WriteOptions {
  /** For fault tests only: stop after this step, leaving the log as a crash there would. */
  readonly haltAfter?: CheckpointStage
}

async function readAll(log: LogClient, stream: string, from: number, to: number): Promise<LogEntry[]> {
  const out: LogEntry[] = []
  let cursor = from
  while (cursor < to) {
    const page = await log.readStream(stream, { from: cursor, to })
    out.push(...page.entries)
    if (page.next <= cursor) break
    cursor = page.next
  }
  return out
}

async function readOne(log: LogClient, stream: string, position: number): Promise<LogEntry | undefined> {
  const page = await log.readStream(stream, { from: position, to: position + 1, limit: 1 })
  return page.entries.find((e) => e.position === position)
}

export async function writeCheckpoint(log: LogClient, src: CheckpointSource, policy: CheckpointPolicy, options: WriteOptions = {}): Promise<CheckpointResult> {
  const cp = checkpointDataStream(src.objectName)
  const ci = checkpointIndexStream(src.objectName)
  const bytes = encodeState(src.state)
  const crc = crc32(bytes)
  const chunkCount = Math.max(1, Math.ceil(bytes.length / policy.chunkBytesMax))
  const id = randomUUID()
  const head = { id, format: STATE_FORMAT_VERSION, type: src.type, typeVersion: src.typeVersion, version: src.version, upTo: src.upTo, bytes: bytes.length, chunks: chunkCount }

  const [startPosition] = await log.append([{ streams: [cp], data: encodeRecord({ kind: 'start', ...head }) }])
  if (startPosition === undefined) throw new Error('internal: append answered no position')
  if (options.haltAfter === 'start') return { outcome: 'halted', stage: 'start' }

  // The newest complete checkpoint, which ours will be chained to (fence rules F1, F2).
  const tail = await log.tail([ci])
  const prevEnd = tail.streams[ci] ?? -1
  // F1: our START must follow prevEnd (a checkpoint completed since ours started: its
  // successor may already have trimmed cp below our START).
  if (prevEnd > startPosition) return { outcome: 'superseded', newestEnd: prevEnd }
  let prevStart = -1
  if (prevEnd >= 0) {
    let prev: CheckpointRecord | undefined
    try {
      const e = await readOne(log, ci, prevEnd)
      prev = e === undefined ? undefined : decodeCheckpointRecord(e.data)
    } catch (err) {
      // ci is trimmed past its newest END only by a checkpoint chained after it.
      if (isLogError(err, 'trimmed')) return { outcome: 'superseded', newestEnd: prevEnd }
      throw err
    }
    if (prev?.kind === 'end') {
      // F2: `upTo` never goes down along the chain (the previous checkpoint's own trim
      // may already have removed the op history below its `upTo`).
      if (src.upTo < prev.upTo) return { outcome: 'superseded', newestEnd: prevEnd }
      prevStart = prev.startPosition
    }
  }
  // Election: the first live START after the newest END.
  const holder = await electedStart(log, cp, prevEnd, startPosition, policy.takeoverMs)
  if (holder !== startPosition) return { outcome: 'busy', holderStart: holder }

  const chunks = []
  for (let i = 0; i < chunkCount; i++) {
    const data = bytes.subarray(i * policy.chunkBytesMax, Math.min(bytes.length, (i + 1) * policy.chunkBytesMax))
    chunks.push({ streams: [cp], data: encodeRecord({ kind: 'chunk', id, index: i, data }) })
  }
  if (options.haltAfter === 'some-chunks') {
    await log.append(chunks.slice(0, Math.max(1, chunks.length >> 1)))
    return { outcome: 'halted', stage: 'some-chunks' }
  }
  // Appended in groups that fit a request; every chunk is chosen before the END is sent.
  const groupBytesMax = 4 * 1024 * 1024
  let group: typeof chunks = []
  let groupBytes = 0
  for (const c of chunks) {
    if (groupBytes + c.data.length > groupBytesMax && group.length > 0) {
      await log.append(group)
      group = []
      groupBytes = 0
    }
    group.push(c)
    groupBytes += c.data.length
  }
  if (group.length > 0) await log.append(group)
  if (options.haltAfter === 'chunks') return { outcome: 'halted', stage: 'chunks' }

  const end: EndRecord = { kind: 'end', ...head, crc, startPosition, prevEnd }
  const endPosition = await appendChainedEnd(log, ci, prevEnd, encodeRecord(end))
  if (endPosition === undefined) return { outcome: 'superseded', newestEnd: (await log.tail([ci])).streams[ci] ?? -1 }
  if (options.haltAfter === 'end') return { outcome: 'halted', stage: 'end' }

  // Trims (safe by F1-F3, see the header): history our checkpoint covers, and everything
  // older than the previous checkpoint, which stays as a fallback for readers mid-load.
  if (src.upTo > 0) await log.trim(src.objectStream, src.upTo)
  if (options.haltAfter === 'trim-object') return { outcome: 'halted', stage: 'trim-object' }
  if (prevEnd >= 0) await log.trim(ci, prevEnd)
  // Without a previous checkpoint, older cp entries (crashed attempts) go with the next one.
  if (prevStart >= 0) await log.trim(cp, prevStart)
  return { outcome: 'written', version: src.version, upTo: src.upTo, startPosition, endPosition, bytes: bytes.length, chunks: chunkCount }
}

/** Conflict key that every END writes on ci/<name>: the fence of the chain of ENDs. */
const END_KEY = 'end'

/**
 * F3: appends an END only if the newest END on ci is still `prevEnd`: a fresh
 * (linearizable) tail shows no ci entry in (prevEnd, tail), and the conditional append
 * (reads: END_KEY at version tail - 1) is refused if an END was written since. Answers
 * the END's position, or undefined if another END got there first. A `conflict` without
 * a newer END (the log forgot the key: leader change, evicted conflict table) is retried
 * with a fresh tail.
 */
async function appendChainedEnd(log: LogClient, ci: string, prevEnd: number, data: Uint8Array): Promise<number | undefined> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const t = await log.tail([ci])
    if ((t.streams[ci] ?? -1) !== prevEnd) return undefined
    try {
      const [position] = await log.append([{ streams: [ci], data, keys: [END_KEY] }], { reads: [{ stream: ci, key: END_KEY, version: t.tail - 1 }] })
      if (position === undefined) throw new Error('internal: append answered no position')
      return position
    } catch (err) {
      if (!isLogError(err, 'conflict')) throw err
    }
  }
  return undefined
}

/** The START that holds the election among those in (prevEnd, mine]: the first one still live in log time. */
async function electedStart(log: LogClient, cp: string, prevEnd: number, mine: number, takeoverMs: number): Promise<number> {
  let entries: LogEntry[]
  try {
    entries = await readAll(log, cp, prevEnd + 1, mine + 1)
  } catch (err) {
    // Part of that range is trimmed: a newer checkpoint completed meanwhile; only ours is left.
    if (isLogError(err, 'trimmed')) return mine
    throw err
  }
  const myTs = entries.find((e) => e.position === mine)?.ts
  for (const e of entries) {
    if (e.position === mine) return mine
    const rec = decodeCheckpointRecord(e.data)
    if (rec?.kind !== 'start') continue
    const stale = myTs !== undefined && e.ts !== undefined && myTs - e.ts >= takeoverMs
    if (!stale) return e.position
  }
  return mine
}

// ---------------------------------------------------------------------------------------
// Loading

export interface LoadedCheckpoint {
  readonly state: unknown
  readonly version: number
  readonly upTo: number
  readonly endPosition: number
}

export interface LoadTarget {
  readonly objectName: string
  readonly type: string
  readonly typeVersion: number
}

/**
 * The newest complete, intact checkpoint of an object whose `upTo` is at least `minUpTo`,
 * or null if there is none. Never returns a partial state.
 */
export async function loadCheckpoint(log: LogClient, target: LoadTarget, policy: CheckpointPolicy, minUpTo = 0): Promise<LoadedCheckpoint | null> {
  const ci = checkpointIndexStream(target.objectName)
  const cp = checkpointDataStream(target.objectName)
  let lastSeen = -2
  for (let attempt = 0; attempt < policy.loadAttemptsMax; attempt++) {
    const tail = await log.tail([ci])
    const newest = tail.streams[ci] ?? -1
    if (newest < 0) return null
    if (newest === lastSeen) return null // nothing new since the last attempt: give up
    lastSeen = newest
    let ends: Array<{ position: number; rec: EndRecord }>
    try {
      const e = await readOne(log, ci, newest)
      const rec = e === undefined ? undefined : decodeCheckpointRecord(e.data)
      ends = rec?.kind === 'end' ? [{ position: newest, rec }] : []
      if (rec?.kind === 'end' && rec.prevEnd >= 0 && rec.prevEnd < newest) {
        try {
          for (const older of await readAll(log, ci, rec.prevEnd, newest)) {
            const r = decodeCheckpointRecord(older.data)
            if (r?.kind === 'end') ends.push({ position: older.position, rec: r })
          }
        } catch (err) {
          if (!isLogError(err, 'trimmed')) throw err
        }
      }
    } catch (err) {
      if (isLogError(err, 'trimmed')) continue
      throw err
    }
    ends.sort((a, b) => b.rec.upTo - a.rec.upTo || b.position - a.position)
    for (const { position, rec } of ends) {
      if (rec.upTo < minUpTo) break
      if (rec.type !== target.type) {
        throw new ObjectError('type_mismatch', `object "${target.objectName}": its checkpoint at ${position} holds a ${rec.type}, not a ${target.type}`)
      }
      if (rec.typeVersion !== target.typeVersion) {
        throw new ObjectError(
          'type_mismatch',
          `object "${target.objectName}": its checkpoint at ${position} holds ${rec.type} v${rec.typeVersion}, but this client's definition is v${target.typeVersion}`,
        )
      }
      if (rec.format !== STATE_FORMAT_VERSION) continue // a format this client cannot read
      const state = await readCheckpointData(log, cp, rec, position)
      if (state === undefined) continue
      return { state: state.value, version: rec.version, upTo: rec.upTo, endPosition: position }
    }
  }
  return null
}

/** The decoded state of one checkpoint, or undefined if its data is gone, incomplete or corrupt. */
async function readCheckpointData(log: LogClient, cp: string, end: EndRecord, endPosition: number): Promise<{ value: unknown } | undefined> {
  let entries: LogEntry[]
  try {
    entries = await readAll(log, cp, end.startPosition, endPosition)
  } catch (err) {
    if (isLogError(err, 'trimmed')) return undefined
    throw err
  }
  const parts = new Array<Uint8Array | undefined>(end.chunks)
  for (const e of entries) {
    const rec = decodeCheckpointRecord(e.data)
    if (rec?.kind === 'chunk' && rec.id === end.id && rec.index >= 0 && rec.index < end.chunks) parts[rec.index] ??= rec.data
  }
  let total = 0
  for (const p of parts) {
    if (p === undefined) return undefined
    total += p.length
  }
  if (total !== end.bytes) return undefined
  const bytes = new Uint8Array(total)
  let at = 0
  for (const p of parts) {
    bytes.set(p!, at)
    at += p!.length
  }
  if (crc32(bytes) !== end.crc) return undefined
  try {
    return { value: decodeState(bytes) }
  } catch {
    return undefined
  }
}
