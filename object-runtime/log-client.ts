// The runtime's only door to the log. Everything in object-runtime reaches the log
// through a `LogClient`: the in-memory one (memory-log.ts) today, an HTTP client and an
// embedded one later. The shape follows the log HTTP contract (DESIGN.md, "HTTP API
// contract (v1)") so that an HTTP implementation is a thin translation:
//
//   append      POST /v1/append            (the client adds clientId + seq: exactly-once)
//   read        GET  /v1/log
//   readStream  GET  /v1/streams/:name
//   tail        GET  /v1/tail              (linearizable)
//   trim        POST /v1/streams/:name/trim
//   subscribe   push of newly committed entries (extension of the contract)
//
// Every implementation runs the conformance suite in test/runtime/log-client-conformance.ts.

/** One entry to append: the streams it belongs to (1 or more) and its opaque bytes. */
export interface AppendEntry {
  readonly streams: readonly string[]
  readonly data: Uint8Array
  /**
   * Conflict keys this entry writes, on each of its streams (1-256 characters each). The
   * log remembers the last position that wrote each (stream, key) so that conditional
   * appends (transactions) can see the write. Omitted: the entry conflicts with nothing.
   */
  readonly keys?: readonly string[]
}

/** A read a conditional append depends on: `key` of `stream` as applied up to and including `version` (-1: nothing). */
export interface ReadDependency {
  readonly stream: string
  readonly key: string
  readonly version: number
}

export interface AppendOptions {
  /**
   * Makes the append conditional: it is sequenced only if no (stream, key) read here was
   * written after the version read; otherwise it fails with LogError `conflict` (details in
   * `err.conflict`) and nothing enters the log. A conditional append is always its own
   * request (never batched with other appends), still exactly-once.
   */
  readonly reads?: readonly ReadDependency[]
}

/** Why a conditional append was refused: the first read found written after its version. */
export interface ConflictDetails {
  readonly stream: string
  readonly key: string
  /** The read's version. */
  readonly version: number
  /**
   * Position of the conflicting write; -1 when it is not chosen yet, or when the key is not
   * remembered and the version is below the watermark (then `watermark` is set).
   */
  readonly position: number
  readonly watermark?: number
}

/** One committed entry as read back from the log. */
export interface LogEntry {
  /** Global position, from 0, dense (no-op fills never consume positions). */
  readonly position: number
  readonly streams: readonly string[]
  readonly data: Uint8Array
  /**
   * Log time in ms: the timestamp of the Paxos slot that carries the entry, assigned by the
   * leader and non-decreasing along the log (entries of one slot share it). Every client
   * sees the same value for the same entry, so objects may base decisions on it (Lock
   * expiry). Optional in the type because old servers may not send it; the memory log and
   * the v1 server always do.
   */
  readonly ts?: number
}

/**
 * A range to read: positions in [from, to), at most `limit` entries. `to` defaults to the
 * tail; `limit` to the implementation's page size (and is capped by it).
 */
export interface ReadRange {
  readonly from: number
  readonly to?: number
  readonly limit?: number
}

export interface ReadResult {
  /** In increasing position order. */
  readonly entries: readonly LogEntry[]
  /**
   * Where to continue: every matching entry with position in [from, next) has been
   * returned. When the page is full, `next` = last returned position + 1; otherwise
   * `next` = min(to, tail) — so a caller that reaches `next >= to` has seen the whole range.
   */
  readonly next: number
}

export interface TailResult {
  /** The next position to be assigned. Linearizable: it covers every append acknowledged before the call. */
  readonly tail: number
  /** For each requested stream, the position of its last entry, or -1 if it has none. */
  readonly streams: Readonly<Record<string, number>>
}

export interface Subscription {
  /** Stops the push. Idempotent. No callback runs after close() returns. */
  close(): void
}

/**
 * Called with newly committed entries of the subscribed streams, in position order,
 * without gaps: over the life of a subscription opened at `from`, the calls together
 * deliver every entry of those streams with position in [from, next) exactly once, where
 * `next` is the last value passed. `next` may run ahead of the last entry (positions
 * that belong to other streams).
 */
export type EntriesListener = (entries: readonly LogEntry[], next: number) => void

/** Called once if a subscription fails for good (for example `trimmed`); no further calls follow. */
export type SubscriptionErrorListener = (error: LogError) => void

export interface LogClient {
  /**
   * Appends entries and resolves with their positions, in the order given. Entries of one
   * call are appended together (contiguously, one slot) when they fit in one batch.
   * Concurrent calls are batched into one log append. Exactly-once: the client attaches
   * (clientId, seq) to every request it sends and retries a failed request with the same
   * seq, so a retried append is stored once and answers its original positions.
   * Errors: `too_large` (an entry or the call exceeds the limits), `bad_request` (bad
   * stream name, no streams), `unavailable` (retries exhausted), `closed`, and for a
   * conditional append (`options.reads`) `conflict`.
   */
  append(entries: readonly AppendEntry[], options?: AppendOptions): Promise<number[]>
  /** Entries of the whole log in [from, to). `trimmed` if any of them has been reclaimed. */
  read(range: ReadRange): Promise<ReadResult>
  /** Entries of one stream in [from, to). `trimmed` if `from` is below the stream's trim point. */
  readStream(stream: string, range: ReadRange): Promise<ReadResult>
  /** Linearizable tail, plus the last position of each named stream. */
  tail(streams?: readonly string[]): Promise<TailResult>
  /** Trims `stream` below `before`. Resolves with the stream's trim point afterwards (never lowered). */
  trim(stream: string, before: number): Promise<{ trimmedBefore: number }>
  /**
   * Push of committed entries of `streams` from position `from` on (catch-up first, then
   * live). Resumable: after a failure, subscribe again from the last `next` seen.
   */
  subscribe(
    streams: readonly string[],
    from: number,
    onEntries: EntriesListener,
    onError?: SubscriptionErrorListener,
  ): Subscription
  /** Fails pending and later calls with `closed`, ends subscriptions. Idempotent. */
  close(): Promise<void>
}

// ---------------------------------------------------------------------------------------
// Errors: one catalog, stable codes. Callers branch on `err.code`, never on the message.

/** What each code means; the conformance tests check that every code is documented here. */
export const LOG_ERROR_CODES = Object.freeze({
  trimmed: 'The requested range starts below a trim point: that history is gone (HTTP 410).',
  unavailable: 'The log could not be reached or has no quorum, and retries are exhausted (HTTP 503).',
  too_large: 'An entry or a request exceeds the size limits (HTTP 413).',
  bad_request: 'Malformed request: bad stream name, empty streams, bad range (HTTP 400).',
  not_found: 'No such route or resource (HTTP 404).',
  closed: 'The client has been closed; no further calls are served.',
  conflict: 'A conditional append lost: a key it read was written after the version read (HTTP 409); `err.conflict` names it. Nothing entered the log.',
} as const)

export type LogErrorCode = keyof typeof LOG_ERROR_CODES

export class LogError extends Error {
  override readonly name = 'LogError'
  readonly code: LogErrorCode
  /** Set for `conflict`: which read lost. */
  readonly conflict: ConflictDetails | undefined

  constructor(code: LogErrorCode, message: string, options?: { cause?: unknown; conflict?: ConflictDetails }) {
    // A conflict is an expected outcome (a transaction lost a race and is retried), as
    // common as a commit under contention: it skips capturing a stack trace, which costs
    // more than the rest of a commit's client work. Its message and `conflict` say it all.
    const limit = Error.stackTraceLimit
    if (code === 'conflict') Error.stackTraceLimit = 0
    try {
      super(message, options?.cause === undefined ? undefined : { cause: options.cause })
    } finally {
      Error.stackTraceLimit = limit
    }
    this.code = code
    this.conflict = options?.conflict
  }
}

export function isLogError(err: unknown, code?: LogErrorCode): err is LogError {
  return err instanceof LogError && (code === undefined || err.code === code)
}

// ---------------------------------------------------------------------------------------
// Validation shared by implementations (the server applies the same rules).

const STREAM_NAME = /^[A-Za-z0-9._:/-]{1,200}$/

export function isValidStreamName(name: string): boolean {
  // The pattern is ASCII-only, so characters = bytes.
  return STREAM_NAME.test(name)
}

/** The last name found valid: appends mostly name the same stream again (a compare, not a regex). */
let lastValidStream = ''

export function assertStreamName(name: unknown): asserts name is string {
  if (name === lastValidStream && name !== '') return
  if (typeof name !== 'string' || !isValidStreamName(name)) {
    throw new LogError('bad_request', `bad stream name ${JSON.stringify(name)}: 1-200 characters of [A-Za-z0-9._:/-]`)
  }
  lastValidStream = name
}

export function assertRange(range: ReadRange): void {
  const { from, to, limit } = range
  if (!Number.isSafeInteger(from) || from < 0) throw new LogError('bad_request', `bad range: from=${from}`)
  if (to !== undefined && (!Number.isSafeInteger(to) || to < from)) throw new LogError('bad_request', `bad range: to=${to} (from=${from})`)
  if (limit !== undefined && (!Number.isSafeInteger(limit) || limit < 1)) throw new LogError('bad_request', `bad range: limit=${limit}`)
}

export function assertTrimPoint(before: number): void {
  if (!Number.isSafeInteger(before) || before < 0) throw new LogError('bad_request', `bad trim point ${before}`)
}

/** Bytes an entry occupies in a batch: its data plus its stream names. */
export function entryBytes(entry: AppendEntry): number {
  let bytes = entry.data.byteLength
  for (let i = 0; i < entry.streams.length; i++) bytes += entry.streams[i]!.length
  const keys = entry.keys
  if (keys !== undefined) for (let i = 0; i < keys.length; i++) bytes += keys[i]!.length
  return bytes
}

/** Conflict keys and reads: 1-256 characters (the server's rule). */
export const CONFLICT_KEY_CHARS_MAX = 256

export function assertConflictKeys(keys: unknown): void {
  if (keys === undefined) return
  if (!Array.isArray(keys)) throw new LogError('bad_request', 'entry keys must be an array of strings')
  for (let i = 0; i < keys.length; i++) {
    const k: unknown = keys[i]
    if (typeof k !== 'string' || k.length < 1 || k.length > CONFLICT_KEY_CHARS_MAX) {
      throw new LogError('bad_request', `bad conflict key ${JSON.stringify(k)}: 1-${CONFLICT_KEY_CHARS_MAX} characters`)
    }
  }
}

export function assertReads(reads: readonly ReadDependency[]): void {
  for (const r of reads) {
    assertStreamName(r.stream)
    assertConflictKeys([r.key])
    if (!Number.isSafeInteger(r.version) || r.version < -1) throw new LogError('bad_request', `bad read version ${r.version}: an integer >= -1`)
  }
}

/** Parses the details of a 409 `conflict` answer (undefined when they are not there). */
export function parseConflictDetails(v: unknown): ConflictDetails | undefined {
  if (typeof v !== 'object' || v === null) return undefined
  const o = v as Record<string, unknown>
  if (typeof o['stream'] !== 'string' || typeof o['key'] !== 'string' || typeof o['version'] !== 'number' || typeof o['position'] !== 'number') return undefined
  const base = { stream: o['stream'], key: o['key'], version: o['version'], position: o['position'] }
  return typeof o['watermark'] === 'number' ? { ...base, watermark: o['watermark'] } : base
}
