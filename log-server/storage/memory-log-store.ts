// The in-memory LogStore: PersistedImage (the reference meaning of the core's writes)
// plus the indexes that reads need. Used by the simulator and tests. Its "disk" is a
// MemoryDisk that outlives the store object: a restart is close() + a new
// MemoryLogStore over the same disk; a lost disk is a new MemoryDisk.
//
// Same semantics as LevelLogStore, minus checksums (memory does not rot): reclaiming is
// done by compact() over the prefix of held slots, trim points only rise.

import { PersistedImage } from '../paxos/image.ts'
import type { ChosenRecord, Entry, PersistedState, Write } from '../paxos/types.ts'
import { recordEnd, storedEntries, streamOffsets } from './entries.ts'
import { StorageError, TrimmedError } from './errors.ts'
import type { CompactResult, LogStore, LogStoreStats, ReadRange, ReadResult, ReclaimedPrefix } from './log-store.ts'
import { validateLogStoreOptions, type LogStoreOptions } from './options.ts'
import { ReadCollector, checkSlotArgs, checkStreamName, checkWrites } from './reads.ts'

interface HeldSlot {
  readonly slot: number
  readonly first: number
  readonly end: number
}

interface StreamIndex {
  /** Positions of the stream's held entries, ascending. */
  readonly positions: number[]
  /** Slot of each position. */
  readonly slots: number[]
}

/** What a MemoryLogStore's "disk" holds; survives close()/reopen. */
export class MemoryDisk {
  readonly image = new PersistedImage()
  /** Held slot records in slot order (image.chosen holds the records themselves). */
  readonly held: HeldSlot[] = []
  readonly streams = new Map<string, StreamIndex>()
  /** Last position of streams whose index entries were all reclaimed. */
  readonly streamLastReclaimed = new Map<string, number>()
  readonly trims = new Map<string, number>()
  nextPosition = 0
  reclaimed: ReclaimedPrefix = { slot: 0, position: 0 }
}

/** Index of the first element for which `pred` is true, in an array where pred is monotone. */
function lowerBound<T>(arr: readonly T[], pred: (x: T) => boolean): number {
  let lo = 0
  let hi = arr.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (pred(arr[mid]!)) hi = mid
    else lo = mid + 1
  }
  return lo
}

const entryCache = new WeakMap<ChosenRecord, Entry[]>()
function entriesOf(r: ChosenRecord): Entry[] {
  let e = entryCache.get(r)
  if (e === undefined) {
    e = storedEntries(r)
    entryCache.set(r, e)
  }
  return e
}

export class MemoryLogStore implements LogStore {
  readonly disk: MemoryDisk
  readonly options: LogStoreOptions
  private isOpen = false

  constructor(disk: MemoryDisk = new MemoryDisk(), options: Partial<LogStoreOptions> = {}) {
    this.disk = disk
    this.options = validateLogStoreOptions(options)
  }

  async open(): Promise<void> {
    this.isOpen = true
  }

  async close(): Promise<void> {
    this.isOpen = false
  }

  private checkOpen(): void {
    if (!this.isOpen) throw new StorageError('closed', 'store is not open')
  }

  async load(): Promise<PersistedState | null> {
    this.checkOpen()
    return this.disk.image.load(this.options.recentChosenMax)
  }

  async persist(writes: readonly Write[]): Promise<void> {
    this.checkOpen()
    checkWrites(writes)
    const d = this.disk
    // Trim points only rise; the image sets whatever it is given, so clamp first.
    const clamped = writes.map((w): Write => {
      if (w.kind !== 'chosen' || w.trims.length === 0) return w
      return { ...w, trims: w.trims.map((t) => ({ stream: t.stream, before: Math.max(t.before, d.trims.get(t.stream) ?? 0) })) }
    })
    for (const w of clamped) {
      if (w.kind !== 'chosen') continue
      const r = w.record
      for (const t of w.trims) d.trims.set(t.stream, t.before)
      d.nextPosition = recordEnd(r)
      if (r.slot < d.reclaimed.slot) continue
      this.index(r)
    }
    d.image.apply(clamped)
    // Records of reclaimed slots are not stored again (the image would keep them).
    for (const w of clamped) if (w.kind === 'chosen' && w.record.slot < d.reclaimed.slot) d.image.chosen.delete(w.record.slot)
  }

  private index(r: ChosenRecord): void {
    const d = this.disk
    const at = lowerBound(d.held, (h) => h.slot >= r.slot)
    if (d.held[at]?.slot === r.slot) return // a slot is chosen once: same record, already indexed
    d.held.splice(at, 0, { slot: r.slot, first: r.firstPosition, end: recordEnd(r) })
    for (const [stream, offsets] of streamOffsets(r)) {
      let ix = d.streams.get(stream)
      if (ix === undefined) {
        ix = { positions: [], slots: [] }
        d.streams.set(stream, ix)
      }
      const first = r.firstPosition + offsets[0]!
      const i = lowerBound(ix.positions, (p) => p >= first)
      ix.positions.splice(i, 0, ...offsets.map((o) => r.firstPosition + o))
      ix.slots.splice(i, 0, ...offsets.map(() => r.slot))
    }
  }

  async chosenRange(fromSlot: number, toSlot: number, maxRecords: number): Promise<ChosenRecord[]> {
    this.checkOpen()
    checkSlotArgs(fromSlot, toSlot, maxRecords)
    return this.disk.image.chosenRange(fromSlot, Math.min(toSlot, fromSlot + maxRecords))
  }

  async readLog(range: ReadRange): Promise<ReadResult> {
    this.checkOpen()
    const c = new ReadCollector(range, this.options)
    const d = this.disk
    if (c.from < d.reclaimed.position) {
      throw new TrimmedError(`positions below ${d.reclaimed.position} are reclaimed`, d.reclaimed.position)
    }
    for (let i = lowerBound(d.held, (h) => h.end > c.from); i < d.held.length; i++) {
      const h = d.held[i]!
      const rec = d.image.chosen.get(h.slot)!
      const entries = entriesOf(rec)
      let going = true
      for (let off = Math.max(0, c.from - h.first); off < entries.length && going; off++) {
        const e = entries[off]!
        going = c.add(h.first + off, e.streams, e.data, rec.ts)
      }
      if (!going) break
    }
    return c.result(d.nextPosition)
  }

  async readStream(stream: string, range: ReadRange): Promise<ReadResult> {
    this.checkOpen()
    checkStreamName(stream)
    const c = new ReadCollector(range, this.options)
    const d = this.disk
    const trim = d.trims.get(stream) ?? 0
    if (c.from < trim) throw new TrimmedError(`stream ${stream} is trimmed before ${trim}`, trim, stream)
    const ix = d.streams.get(stream)
    if (ix !== undefined) {
      for (let i = lowerBound(ix.positions, (p) => p >= c.from); i < ix.positions.length; i++) {
        const pos = ix.positions[i]!
        const r = d.image.chosen.get(ix.slots[i]!)!
        const e = entriesOf(r)[pos - r.firstPosition]!
        if (!c.add(pos, e.streams, e.data, r.ts)) break
      }
    }
    return c.result(d.nextPosition)
  }

  async streamLast(stream: string): Promise<number> {
    this.checkOpen()
    checkStreamName(stream)
    const ix = this.disk.streams.get(stream)
    const last = ix?.positions[ix.positions.length - 1]
    return last ?? this.disk.streamLastReclaimed.get(stream) ?? -1
  }

  tail(): number {
    return this.disk.nextPosition
  }

  trimPoint(stream: string): number {
    return this.disk.trims.get(stream) ?? 0
  }

  reclaimed(): ReclaimedPrefix {
    return this.disk.reclaimed
  }

  async compact(): Promise<CompactResult> {
    this.checkOpen()
    const d = this.disk
    let n = 0
    let done = true
    for (const h of d.held) {
      if (n >= this.options.compactSlotsMax) {
        done = false
        break
      }
      const r = d.image.chosen.get(h.slot)!
      const offsets = streamOffsets(r)
      let reclaimable = true
      for (const [s, offs] of offsets) {
        if ((d.trims.get(s) ?? 0) <= r.firstPosition + offs[offs.length - 1]!) reclaimable = false
      }
      if (!reclaimable) break
      for (const s of offsets.keys()) {
        const ix = d.streams.get(s)!
        const k = lowerBound(ix.positions, (p) => p >= h.end)
        d.streamLastReclaimed.set(s, ix.positions[k - 1]!)
        ix.positions.splice(0, k)
        ix.slots.splice(0, k)
        if (ix.positions.length === 0) d.streams.delete(s)
      }
      d.image.chosen.delete(h.slot)
      d.reclaimed = { slot: h.slot + 1, position: h.end }
      n++
    }
    d.held.splice(0, n)
    return { reclaimedSlots: n, done }
  }

  async repair(records: readonly ChosenRecord[]): Promise<void> {
    this.checkOpen()
    // Memory does not rot: a held slot keeps its record; nothing else to do.
    void records
  }

  missingSlots(): readonly number[] {
    return []
  }

  async stats(): Promise<LogStoreStats> {
    this.checkOpen()
    let keys = 0
    for (const h of this.disk.held) keys += streamOffsets(this.disk.image.chosen.get(h.slot)!).size
    return { slotRecords: this.disk.held.length, streamIndexKeys: keys, reclaimed: this.disk.reclaimed }
  }
}
