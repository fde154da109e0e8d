// The replica's storage interface. Two implementations pass one conformance suite
// (test/storage/conformance.ts): MemoryLogStore (simulator, tests) and LevelLogStore
// (production, LevelDB).
//
// Who calls what, in which order:
// - the driver calls open(), then load() once to build the core;
// - for every core Output it awaits persist(output.writes) BEFORE sending
//   output.messages (types.ts `Output`); concurrent persist() calls are group-committed
//   and complete in call order;
// - HTTP reads call readLog()/readStream()/streamLast()/tail(); catch-up of peers calls
//   chosenRange(); a CorruptionError makes the driver refetch the slot from a peer and
//   call repair();
// - the driver calls compact() after chosen writes that carried trims (and may call it
//   on a timer): reclaiming storage is NOT done inside persist(), so the write path
//   never reads. Each compact() does bounded work and says whether more is left.

import type { ChosenRecord, PersistedState, Write } from '../paxos/types.ts'

/** One stored entry as readers see it. */
export interface LogEntry {
  readonly position: number
  readonly streams: readonly string[]
  readonly data: Uint8Array
  /** Log time (ms) of the slot that holds the entry: non-decreasing along the log. */
  readonly ts: number
}

export interface ReadRange {
  /** First position wanted (inclusive), >= 0. */
  readonly from: number
  /** End of the range (exclusive); default: the tail. */
  readonly to?: number
  /** Entries wanted, at most (>= 1; clamped to the store's readEntriesMax). */
  readonly limit: number
}

export interface ReadResult {
  readonly entries: LogEntry[]
  /**
   * Where the next read should start: one past the last returned entry when a bound
   * (limit, bytes) stopped the read, else the end of the examined range
   * (min(to, tail)), and never below `from`.
   */
  readonly next: number
}

/** The prefix of the log whose storage was reclaimed: slots < slot, positions < position. */
export interface ReclaimedPrefix {
  readonly slot: number
  readonly position: number
}

export interface CompactResult {
  /** Slot records reclaimed by this call. */
  readonly reclaimedSlots: number
  /** False when the call stopped at its bound (compactSlotsMax) and another call may reclaim more. */
  readonly done: boolean
}

/** What the store holds, counted (O(held data) for LevelDB: for tests and status pages). */
export interface LogStoreStats {
  readonly slotRecords: number
  readonly streamIndexKeys: number
  readonly reclaimed: ReclaimedPrefix
}

export interface LogStore {
  /** Open (create if missing) the store and read its small in-memory state. */
  open(): Promise<void>
  /** Wait for queued persists, then close. Reads and writes after close reject with `closed`. */
  close(): Promise<void>

  /** The state a restarted core starts from; null for an empty disk (no identity ever written). */
  load(): Promise<PersistedState | null>

  /**
   * Make `writes` durable as ONE atomic batch (fsynced unless options.sync is false).
   * Concurrent calls are group-committed: while a batch is in flight, later callers
   * queue and are flushed together in call order; each promise resolves only once its
   * own writes are durable. Persist order = call order.
   */
  persist(writes: readonly Write[]): Promise<void>
  // (fsync policy: a group is fsynced when any of its writes is a promise, an accept or
  // an identity; a group of chosen records only is written without fsync: see
  // LevelLogStore's PersistJob.)

  /**
   * Chosen records for slots in [fromSlot, toSlot), in slot order, at most maxRecords,
   * stopping at the first slot not held (reclaimed, or not chosen yet): catch-up of peers.
   */
  chosenRange(fromSlot: number, toSlot: number, maxRecords: number): Promise<ChosenRecord[]>

  /** Entries by global position. Throws TrimmedError below the reclaimed prefix. */
  readLog(range: ReadRange): Promise<ReadResult>
  /** Entries of one stream only. Throws TrimmedError below the stream's trim point. */
  readStream(stream: string, range: ReadRange): Promise<ReadResult>
  /** The last position of a stream, -1 if it never had an entry. */
  streamLast(stream: string): Promise<number>

  /** Next position to be assigned, as durably applied (the tail). */
  tail(): number
  /** A stream's trim point: positions below it are trimmed (0 if never trimmed). */
  trimPoint(stream: string): number
  /** The reclaimed prefix. */
  reclaimed(): ReclaimedPrefix

  /** One bounded reclaiming step (see the header comment). */
  compact(): Promise<CompactResult>
  /**
   * Rewrite chosen records refetched from a peer, under the same keys, so that they
   * replace corrupt ones (record, slot index and stream index). Records of slots that
   * are reclaimed or not yet chosen are ignored.
   */
  repair(records: readonly ChosenRecord[]): Promise<void>

  /**
   * Slots below commitSlot found absent at open() (LevelDB dropped a damaged part of
   * its write-ahead log) and not repaired since, ascending. Reads overlapping them raise
   * CorruptionError; the driver may also refetch them from peers right away and
   * repair(). Always empty for memory.
   */
  missingSlots(): readonly number[]

  stats(): Promise<LogStoreStats>
}
