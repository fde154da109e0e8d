// Coded errors of the storage layer. Callers branch on `err.code`, never on the
// message (STYLE §5). `trimmed` maps to HTTP 410; `corrupt` makes the replica refuse
// to serve the range and refetch the slot from a peer (then `repair()`).

export type StorageErrorCode =
  /** A read below a stream's trim point, or below the globally reclaimed prefix. */
  | 'trimmed'
  /** Stored bytes failed their checksum or disagree with their key/index. */
  | 'corrupt'
  /** Malformed arguments (negative position, limit < 1, bad stream name...). */
  | 'bad_request'
  /** More writes queued behind the in-flight batch than `queueWritesMax`. */
  | 'overloaded'
  /** The store is not open (never opened, closed, or failed). */
  | 'closed'
  /** A batch failed to write: the store stopped (fail-stop) and rejects everything after. */
  | 'failed'
  /** Options failed validation. */
  | 'bad_config'

export class StorageError extends Error {
  readonly code: StorageErrorCode
  constructor(code: StorageErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.code = code
    this.name = 'StorageError'
  }
}

/** A read that reaches below a trim point: never partial data. */
export class TrimmedError extends StorageError {
  /** The first position still readable for this read (a stream's trim point or the reclaimed prefix). */
  readonly trimmedBefore: number
  /** The stream whose trim point was hit; null for the global reclaimed prefix. */
  readonly stream: string | null
  constructor(message: string, trimmedBefore: number, stream: string | null = null) {
    super('trimmed', message)
    this.name = 'TrimmedError'
    this.trimmedBefore = trimmedBefore
    this.stream = stream
  }
}

/**
 * Stored bytes are damaged (checksum mismatch, a record that disagrees with its key,
 * a missing record inside the held range, or LevelDB's own block checksums). `slot`
 * and `position` locate the damaged slot record when known, so that the replica can
 * refetch that slot from a peer and `repair()` it.
 */
export class CorruptionError extends StorageError {
  readonly slot: number | null
  readonly position: number | null
  constructor(message: string, where: { slot?: number | null; position?: number | null; cause?: unknown } = {}) {
    super('corrupt', message, where.cause === undefined ? undefined : { cause: where.cause })
    this.name = 'CorruptionError'
    this.slot = where.slot ?? null
    this.position = where.position ?? null
  }
}

export function isStorageError(err: unknown): err is StorageError {
  return err instanceof StorageError
}
