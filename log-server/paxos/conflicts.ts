// The leader's conflict table: for each (stream, key) written lately, the position of its
// last applied write and the number of its writes queued or in flight. The sequencer
// checks a conditional append's reads against it (core.ts, "Conditional appends").
//
// One record per (stream, key), found through a map per stream: no joined key string is
// built or hashed per read or write, and a queued op keeps its records, so releasing
// them when its slot is applied needs no lookup.
//
// Bounded: past `max` records the earliest first-written are forgotten, and the watermark
// rises to their last write; a read of a key not remembered conflicts when its version is
// below the watermark (conservative: an abort without a real conflict, never a wrong
// commit). A record with writes pending is never forgotten: a read of its key must conflict.

import type { AppendOp, ConflictInfo, Entry, ReadDependency } from './types.ts'

export interface ConflictRecord {
  readonly stream: string
  readonly key: string
  /** Position of the last applied write since the table was (re)started; -1: none seen. */
  last: number
  /** Writes of this key queued or in flight at the leader. */
  pending: number
}

export class ConflictTable {
  private streams = new Map<string, Map<string, ConflictRecord>>()
  /** The records an entry held when it was queued (holdEntry), for recordEntry. */
  private byEntry = new WeakMap<Entry, readonly ConflictRecord[]>()
  private heldOps = new WeakSet<AppendOp>()
  /**
   * Records in first-write order from orderHead on: eviction takes them from the front.
   * (Not a Map's own order: taking a Map's first entry after many deletions at its front
   * walks the deleted slots every time, ~40 µs per eviction at 200,000 keys.)
   */
  private order: ConflictRecord[] = []
  private orderHead = 0
  private count = 0
  /** Writes of keys not remembered are at or below this position (-1: none). */
  watermark = -1

  constructor(private readonly max: number) {}

  get size(): number {
    return this.count
  }

  /**
   * The first read that a later write invalidates, or null if every read still holds.
   * `found` (optional) gets the record of each read, by index (undefined: not remembered),
   * for holdEntry to reuse: a read-modify-write looks each key up once.
   */
  check(reads: readonly ReadDependency[], found?: (ConflictRecord | undefined)[]): ConflictInfo | null {
    for (let i = 0; i < reads.length; i++) {
      const r = reads[i]!
      const rec = this.existingTableOf(r.stream)?.get(r.key)
      if (found !== undefined) found[i] = rec
      if (rec !== undefined && rec.pending > 0) return { stream: r.stream, key: r.key, version: r.version, position: -1 }
      if (rec !== undefined && rec.last >= 0) {
        if (rec.last > r.version) return { stream: r.stream, key: r.key, version: r.version, position: rec.last }
      } else if (r.version < this.watermark) {
        return { stream: r.stream, key: r.key, version: r.version, position: -1, watermark: this.watermark }
      }
    }
    return null
  }

  /**
   * Counts a queued write of the entry's keys on each of its streams; the records go into
   * `held` (once per listing) and are remembered for `as` (the entry as proposed: without
   * its keys, which only this table needs), so that recording it once applied needs no
   * lookup (see recordOp). `reads`/`found`: what check() found for the reads that go with
   * it (a key read and written is not looked up again).
   */
  holdEntry(entry: Entry, held: ConflictRecord[], as: Entry, reads?: readonly ReadDependency[], found?: readonly (ConflictRecord | undefined)[]): void {
    const keys = entry.keys!
    const mine: ConflictRecord[] = []
    for (const st of entry.streams) {
      let table: Map<string, ConflictRecord> | undefined
      for (const key of keys) {
        let rec: ConflictRecord | undefined
        if (reads !== undefined && found !== undefined) {
          for (let i = 0; i < reads.length; i++) {
            if (reads[i]!.key === key && reads[i]!.stream === st) {
              rec = found[i]
              break
            }
          }
        }
        if (rec === undefined) {
          table ??= this.tableOf(st)
          rec = table.get(key) ?? this.add(table, st, key)
        }
        rec.pending++
        held.push(rec)
        mine.push(rec)
      }
    }
    this.byEntry.set(as, mine)
  }

  /** `op` (as proposed) has entries registered by holdEntry. */
  markHeld(op: AppendOp): void {
    this.heldOps.add(op)
  }

  /** The applied writes of `op`, its first entry at `first`; then forgets past the bound. */
  recordOp(op: AppendOp, first: number): void {
    const held = this.heldOps.has(op)
    for (let j = 0; j < op.entries.length; j++) {
      const e = op.entries[j]!
      if (held) {
        // Held since it was queued: pending, so still in the table.
        const recs = this.byEntry.get(e)
        if (recs !== undefined) {
          for (const rec of recs) rec.last = first + j
          continue
        }
      }
      // An entry that still carries its keys (proposed by an earlier version or term).
      if (e.keys != null && e.keys.length > 0) this.record(e.streams, e.keys, first + j)
    }
    this.evict()
  }

  /** The held writes were applied (or dropped). */
  release(held: readonly ConflictRecord[]): void {
    for (const rec of held) rec.pending--
  }

  /** An applied write of `keys` on each of `streams` at `position`. */
  record(streams: readonly string[], keys: readonly string[], position: number): void {
    for (const st of streams) {
      const table = this.tableOf(st)
      // Updated in place, not moved to the end: eviction goes by first write, and an
      // evicted key raises the watermark to its LAST write, so that stays conservative.
      for (const key of keys) (table.get(key) ?? this.add(table, st, key)).last = position
    }
  }

  /** Forgets the earliest first-written records past the bound (never one with writes pending). */
  evict(): void {
    let skipped = 0
    while (this.count > this.max && this.orderHead < this.order.length) {
      const rec = this.order[this.orderHead++]!
      if (rec.pending > 0) {
        // Kept, and moved to the back; if every record has writes pending, stop.
        this.order.push(rec)
        if (++skipped > this.count) break
        continue
      }
      const table = this.streams.get(rec.stream)!
      table.delete(rec.key)
      if (table.size === 0) {
        this.streams.delete(rec.stream)
        if (this.lastTable === table) this.lastTable = undefined
      }
      this.count--
      if (rec.last > this.watermark) this.watermark = rec.last
    }
    if (this.orderHead > 1024 && this.orderHead * 2 > this.order.length) {
      this.order = this.order.slice(this.orderHead)
      this.orderHead = 0
    }
  }

  /**
   * Starts over knowing no applied write: reads below `watermark` conflict. Records with
   * writes pending stay (their reads must still conflict), with no last write known.
   */
  restart(watermark: number): void {
    const pending = this.order.slice(this.orderHead).filter((r) => r.pending > 0)
    this.streams = new Map()
    this.lastTable = undefined
    this.order = []
    this.orderHead = 0
    this.count = 0
    for (const rec of pending) {
      rec.last = -1
      this.tableOf(rec.stream).set(rec.key, rec)
      this.order.push(rec)
      this.count++
    }
    this.watermark = watermark
  }

  /** Forgets everything, pending writes included (the leader stepped down: its queue is gone). */
  clear(): void {
    // Entries held before may be proposed again by a later term: their records are gone.
    this.byEntry = new WeakMap()
    this.heldOps = new WeakSet()
    this.streams = new Map()
    this.lastTable = undefined
    this.order = []
    this.orderHead = 0
    this.count = 0
    this.watermark = -1
  }

  private tableOf(stream: string): Map<string, ConflictRecord> {
    let t = this.existingTableOf(stream)
    if (t === undefined) {
      t = new Map()
      this.streams.set(stream, t)
    }
    return t
  }

  /**
   * The stream's table, if any. Consecutive reads and writes mostly name the same stream:
   * the last one found is compared first (a string compare, not a hash and a lookup).
   */
  private existingTableOf(stream: string): Map<string, ConflictRecord> | undefined {
    if (stream === this.lastStream && this.lastTable !== undefined) return this.lastTable
    const t = this.streams.get(stream)
    if (t !== undefined) {
      this.lastStream = stream
      this.lastTable = t
    }
    return t
  }

  private lastStream = ''
  private lastTable: Map<string, ConflictRecord> | undefined = undefined

  private add(table: Map<string, ConflictRecord>, stream: string, key: string): ConflictRecord {
    const rec: ConflictRecord = { stream, key, last: -1, pending: 0 }
    table.set(key, rec)
    this.order.push(rec)
    this.count++
    return rec
  }
}
