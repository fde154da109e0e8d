// Bounds and timings of the core. Every queue, batch and window has a bound here;
// validateCoreConfig rejects nonsense with a message that names the field.

import type { ReplicaId } from './types.ts'

export interface CoreConfig {
  readonly id: ReplicaId
  /** Cluster size: 3 or 5 (1 for a single-node development log with no fault tolerance). */
  readonly replicas: number
  /** A follower that hears no leader for a random number of ticks in [t, 2t) starts an election. */
  readonly electionTimeoutTicks: number
  /** The leader sends heartbeats (commit index, read-index rounds) every this many ticks. */
  readonly heartbeatTicks: number
  /** Entries in one slot, at most. */
  readonly batchEntriesMax: number
  /** Bytes of entry data (plus stream names) in one slot, at most. */
  readonly batchBytesMax: number
  /** Bytes of one entry's data, at most. */
  readonly entryBytesMax: number
  /** Slots proposed and not yet chosen, at most (the pipeline window). */
  readonly inflightSlotsMax: number
  /** Ops waiting at the leader for a slot, at most; past it proposals fail with `overloaded`. */
  readonly queueOpsMax: number
  /** Bytes waiting at the leader for a slot, at most. */
  readonly queueBytesMax: number
  /** Chosen records kept in memory to serve catch-up and promises without a storage read. */
  readonly recentChosenMax: number
  /**
   * Payload bytes (entry data and stream names) of those records, at most: slots of up to
   * batchBytesMax each would otherwise let recentChosenMax of them hold gigabytes. Past
   * either bound the oldest go; catch-up of older slots reads storage.
   */
  readonly recentChosenBytesMax: number
  /** Records in one catch-up reply, at most. */
  readonly catchupSlotsMax: number
  /**
   * Bytes of entry data in one catch-up reply or promise, at most (at least one record
   * always goes): keeps every peer message well below the transport's frame limit.
   */
  readonly catchupBytesMax: number
  /** Ticks before an unanswered catch-up request is sent again. */
  readonly catchupRetryTicks: number
  /** Clients whose exactly-once state is kept; the least recently active is evicted past it. */
  readonly sessionsMax: number
  /** Recent sequence numbers kept per client; a retry older than that is rejected (`sequence_too_old`). */
  readonly sessionWindow: number
  /** Ticks between join probes of a replica with an empty disk. */
  readonly joinRetryTicks: number
  /** Read-index requests waiting for a confirmation round, at most. */
  readonly readQueueMax: number
  /**
   * Conflict keys whose last write the leader remembers for conditional appends; the
   * earliest first written is evicted past it and raises the watermark (reads of keys
   * not remembered, at versions below the watermark, conservatively conflict).
   */
  readonly conflictKeysMax: number
  /** Reads in one conditional append, at most. */
  readonly conditionReadsMax: number
  /**
   * The leader counts keyed writes in its conflict table only while conditional appends
   * are in use: from the first one until none has arrived for this long (ms of the
   * leader's clock). Plain writes then cost nothing extra; the next conditional append
   * waits until the writes in flight are applied (see docs/http-api.md).
   */
  readonly conflictIdleMs: number
  /**
   * A leader sends its accept requests before its own accept is durable, and counts
   * its own vote only when the driver reports the write persisted (core.persisted):
   * the leader's fsync then overlaps the followers' instead of preceding them.
   * Off by default (every driver must call persisted() when it is on).
   */
  readonly earlyAccepts: boolean
}

export const DEFAULT_CORE_CONFIG: Omit<CoreConfig, 'id' | 'replicas'> = Object.freeze({
  earlyAccepts: false,
  electionTimeoutTicks: 10,
  heartbeatTicks: 2,
  batchEntriesMax: 4096,
  batchBytesMax: 1 << 20,
  entryBytesMax: 1 << 20,
  inflightSlotsMax: 64,
  queueOpsMax: 100_000,
  queueBytesMax: 64 << 20,
  recentChosenMax: 4096,
  recentChosenBytesMax: 32 << 20,
  catchupSlotsMax: 256,
  catchupBytesMax: 16 << 20,
  catchupRetryTicks: 5,
  sessionsMax: 10_000,
  sessionWindow: 64,
  joinRetryTicks: 5,
  readQueueMax: 100_000,
  conflictKeysMax: 200_000,
  conditionReadsMax: 1_000,
  conflictIdleMs: 60_000,
})

export class ConfigError extends Error {
  readonly code = 'bad_config'
}

function positiveInt(name: string, v: unknown): void {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) {
    throw new ConfigError(`${name} must be a positive integer, got ${String(v)}`)
  }
}

export function validateCoreConfig(partial: Partial<CoreConfig> & Pick<CoreConfig, 'id' | 'replicas'>): CoreConfig {
  const c: CoreConfig = { ...DEFAULT_CORE_CONFIG, ...partial }
  if (c.replicas !== 1 && c.replicas !== 3 && c.replicas !== 5) throw new ConfigError(`replicas must be 3 or 5 (or 1 for a single-node dev log), got ${String(c.replicas)}`)
  if (!Number.isSafeInteger(c.id) || c.id < 0 || c.id >= c.replicas) {
    throw new ConfigError(`id must be an integer in [0, ${c.replicas - 1}], got ${String(c.id)}`)
  }
  for (const k of Object.keys(DEFAULT_CORE_CONFIG) as (keyof typeof DEFAULT_CORE_CONFIG)[]) {
    if (k === 'earlyAccepts') {
      if (typeof c[k] !== 'boolean') throw new ConfigError(`earlyAccepts must be a boolean, got ${String(c[k])}`)
    } else positiveInt(k, c[k])
  }
  if (c.heartbeatTicks >= c.electionTimeoutTicks) {
    throw new ConfigError(`heartbeatTicks (${c.heartbeatTicks}) must be below electionTimeoutTicks (${c.electionTimeoutTicks})`)
  }
  if (c.entryBytesMax > c.batchBytesMax) {
    throw new ConfigError(`entryBytesMax (${c.entryBytesMax}) must not exceed batchBytesMax (${c.batchBytesMax})`)
  }
  if (c.recentChosenMax < c.catchupSlotsMax) {
    throw new ConfigError(`recentChosenMax (${c.recentChosenMax}) must be at least catchupSlotsMax (${c.catchupSlotsMax})`)
  }
  return c
}

export function quorum(replicas: number): number {
  return Math.floor(replicas / 2) + 1
}
