// Bounds of the storage layer. Every batch, queue and read has a bound here;
// validateLogStoreOptions rejects nonsense with a message naming the field.

import { StorageError } from './errors.ts'

export interface LogStoreOptions {
  /**
   * Writes (core `Write`s) merged into one group-commit batch, at most. A single
   * persist() call larger than this still goes as one batch (atomicity wins), alone.
   */
  readonly groupCommitWritesMax: number
  /** Encoded bytes merged into one group-commit batch, at most (same exception). */
  readonly groupCommitBytesMax: number
  /** Writes waiting behind the in-flight batch, at most; past it persist() rejects with `overloaded`. */
  readonly queueWritesMax: number
  /** Chosen records load() returns in `recentChosen` (the newest ones), at most. */
  readonly recentChosenMax: number
  /** Entries one readLog()/readStream() returns, at most (a larger `limit` is clamped). */
  readonly readEntriesMax: number
  /** Bytes of entry data one read returns, at most (at least one entry is always returned). */
  readonly readBytesMax: number
  /**
   * Bytes of slot records one read decodes, at most (at least one record). A sparse
   * stream costs a whole slot record per few entries; this bounds that amplification.
   */
  readonly readScanBytesMax: number
  /** Bytes of records one chosenRange() returns, at most (at least one record is always returned). */
  readonly chosenRangeBytesMax: number
  /** Slot records one compact() call examines, at most (bounds the work of one step). */
  readonly compactSlotsMax: number
  /** fsync every batch (LevelDB `sync: true`). Only tests and benchmarks turn this off. */
  readonly sync: boolean
}

/**
 * Defaults:
 * - groupCommitWritesMax 4096: the core emits ~1 write per chosen slot; 4096 slots is
 *   far more than one fsync interval ever accumulates.
 * - groupCommitBytesMax 32 MiB: ~32 full 1 MiB slots per fsync; keeps one LevelDB
 *   batch (held twice in memory while written) well under 100 MiB.
 * - queueWritesMax 1,000,000: a runaway driver is refused rather than exhausting memory.
 * - recentChosenMax 4096 and chosenRangeBytesMax 64 MiB: matches the core's default
 *   recentChosenMax.
 * - readEntriesMax 10,000 and readBytesMax 4 MiB: one HTTP read answer;
 *   readScanBytesMax 16 MiB: records decoded per read (16 full 1 MiB slots).
 * - compactSlotsMax 1024: one compact() step reads 1024 small slot-index values and
 *   deletes at most that many records.
 * - sync true.
 */
export const DEFAULT_LOG_STORE_OPTIONS: LogStoreOptions = Object.freeze({
  groupCommitWritesMax: 4096,
  groupCommitBytesMax: 32 << 20,
  queueWritesMax: 1_000_000,
  recentChosenMax: 4096,
  readEntriesMax: 10_000,
  readBytesMax: 4 << 20,
  readScanBytesMax: 16 << 20,
  chosenRangeBytesMax: 64 << 20,
  compactSlotsMax: 1024,
  sync: true,
})

export function validateLogStoreOptions(partial: Partial<LogStoreOptions> = {}): LogStoreOptions {
  const o: LogStoreOptions = { ...DEFAULT_LOG_STORE_OPTIONS, ...partial }
  for (const k of Object.keys(DEFAULT_LOG_STORE_OPTIONS) as (keyof LogStoreOptions)[]) {
    if (k === 'sync') continue
    const v: unknown = o[k]
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) {
      throw new StorageError('bad_config', `${k} must be a positive integer, got ${String(v)}`)
    }
  }
  if (typeof o.sync !== 'boolean') throw new StorageError('bad_config', `sync must be a boolean, got ${String(o.sync)}`)
  for (const k of Object.keys(o)) {
    if (!(k in DEFAULT_LOG_STORE_OPTIONS)) throw new StorageError('bad_config', `unknown option ${k}`)
  }
  return o
}
