// Argument checks and result assembly shared by every LogStore's reads, so that
// `next`, clamping and byte bounds mean the same thing everywhere.

import type { Write } from '../paxos/types.ts'
import { entryBytes } from './entries.ts'
import { StorageError } from './errors.ts'
import type { LogEntry, ReadRange, ReadResult } from './log-store.ts'
import type { LogStoreOptions } from './options.ts'

function checkPosition(name: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
    throw new StorageError('bad_request', `${name} must be a non-negative integer, got ${String(v)}`)
  }
  return v
}

export function checkSlotArgs(fromSlot: number, toSlot: number, maxRecords: number): void {
  checkPosition('fromSlot', fromSlot)
  checkPosition('toSlot', toSlot)
  if (!Number.isSafeInteger(maxRecords) || maxRecords < 1) {
    throw new StorageError('bad_request', `maxRecords must be a positive integer, got ${String(maxRecords)}`)
  }
}

/** Stream names are keys in the stream index: non-empty, no NUL (the key separator). */
export function checkStreamName(stream: unknown): string {
  if (typeof stream !== 'string' || stream.length === 0 || stream.includes('\0')) {
    throw new StorageError('bad_request', `bad stream name ${JSON.stringify(stream)}`)
  }
  return stream
}

/** Checks what a store needs of the writes before applying any of them (atomicity). */
export function checkWrites(writes: readonly Write[]): void {
  if (!Array.isArray(writes)) throw new StorageError('bad_request', 'writes must be an array')
  for (const w of writes) {
    if (w.kind === 'chosen') {
      const r = w.record
      checkPosition('record.slot', r.slot)
      checkPosition('record.firstPosition', r.firstPosition)
      if (r.outcomes.length !== r.value.ops.length) {
        throw new StorageError('bad_request', `slot ${r.slot}: ${r.outcomes.length} outcomes for ${r.value.ops.length} ops`)
      }
      for (const op of r.value.ops) {
        if (op.kind === 'append') for (const e of op.entries) for (const s of e.streams) checkStreamName(s)
        else checkStreamName(op.stream)
      }
      for (const t of w.trims) {
        checkStreamName(t.stream)
        checkPosition('trim.before', t.before)
      }
    } else if (w.kind === 'accept') {
      checkPosition('accept.slot', w.slot)
    }
  }
}

/** Collects entries of one read within its range and bounds. */
export class ReadCollector {
  readonly from: number
  readonly to: number
  readonly limit: number
  private readonly bytesMax: number
  private bytes = 0
  /** True once nothing more is accepted (a bound was hit, or `to` was reached). */
  full = false
  /** True when a bound (limit, bytes, or the store's scan bound via stop()) ended the read early. */
  private bounded = false
  readonly entries: LogEntry[] = []

  constructor(range: ReadRange, options: LogStoreOptions) {
    if (range === null || typeof range !== 'object') throw new StorageError('bad_request', 'range must be an object')
    this.from = checkPosition('from', range.from)
    this.to = range.to === undefined ? Number.MAX_SAFE_INTEGER : checkPosition('to', range.to)
    if (typeof range.limit !== 'number' || !Number.isSafeInteger(range.limit) || range.limit < 1) {
      throw new StorageError('bad_request', `limit must be a positive integer, got ${String(range.limit)}`)
    }
    this.limit = Math.min(range.limit, options.readEntriesMax)
    this.bytesMax = options.readBytesMax
    if (this.to <= this.from) this.full = true
  }

  /** Adds the entry at `position` if it lies in range; returns false once nothing more fits. */
  add(position: number, streams: readonly string[], data: Uint8Array, ts: number): boolean {
    if (this.full) return false
    if (position < this.from) return true
    if (position >= this.to) {
      this.full = true
      return false
    }
    this.entries.push({ position, streams, data, ts })
    this.bytes += entryBytes({ streams, data })
    if (this.entries.length >= this.limit || this.bytes >= this.bytesMax) this.stop()
    return !this.full
  }

  /** The store stopped the read at a bound of its own: `next` is one past the last entry. */
  stop(): void {
    this.full = true
    if (this.entries.length > 0) this.bounded = true
  }

  /** `scannedEnd`: the position up to which the store examined everything (its tail, as of the read). */
  result(scannedEnd: number): ReadResult {
    const last = this.entries[this.entries.length - 1]
    const next = this.bounded && last !== undefined ? last.position + 1 : Math.min(this.to, Math.max(scannedEnd, last === undefined ? 0 : last.position + 1))
    return { entries: this.entries, next: Math.max(this.from, next) }
  }
}
