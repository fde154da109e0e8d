// The shared conformance suite of LogStore (STYLE §7): every implementation runs it;
// a new adapter is one line in test/storage/log-store.test.ts.
//
// The reference meaning of the core's writes is PersistedImage (log-server/paxos/
// image.ts): a store must load() what the image loads, minus the slot records it
// reclaimed (the image never reclaims).

import fc from 'fast-check'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { PersistedImage } from '../../log-server/paxos/image.ts'
import type {
  Ballot,
  ChosenRecord,
  Entry,
  Op,
  Outcome,
  PersistedState,
  SessionUpdate,
  TrimUpdate,
  Write,
} from '../../log-server/paxos/types.ts'
import { recordEnd, storedEntries } from '../../log-server/storage/entries.ts'
import type { LogEntry, LogStore } from '../../log-server/storage/log-store.ts'
import type { LogStoreOptions } from '../../log-server/storage/options.ts'

export interface LogStoreHarness {
  /** A new, opened store over an empty disk. */
  create(options?: Partial<LogStoreOptions>): Promise<LogStore>
  /** A restart: close `store`, open a new store (same options) over the same disk. */
  reopen(store: LogStore): Promise<LogStore>
  /** Remove whatever create() made (temp dirs); closes stores still open. */
  cleanup(): Promise<void>
}

// ---------------------------------------------------------------------------------
// Helpers: a tiny stand-in for the core that numbers slots and positions.

const enc = new TextEncoder()
export const bytes = (s: string): Uint8Array => enc.encode(s)
export const entry = (data: string, ...streams: string[]): Entry => ({ streams, data: bytes(data) })
export const append = (entries: Entry[], clientId?: string, seq?: number): Op =>
  clientId === undefined ? { kind: 'append', entries } : { kind: 'append', clientId, seq: seq ?? 0, entries }
export const trimOp = (stream: string, before: number): Op => ({ kind: 'trim', stream, before })

/** Numbers chosen slots like the core: consecutive slots, positions from stored entries. */
export class ChosenLog {
  slot = 0
  nextPosition = 0
  ts = 0
  readonly records: ChosenRecord[] = []

  /** The 'chosen' write of the next slot. Outcomes default to 'new'. */
  chosen(
    ops: readonly Op[],
    opts: { outcomes?: readonly Outcome[]; sessions?: readonly SessionUpdate[]; trims?: readonly TrimUpdate[]; ts?: number } = {},
  ): Write & { kind: 'chosen' } {
    const ts = Math.max(opts.ts ?? this.ts + 1, this.ts)
    const record: ChosenRecord = {
      slot: this.slot,
      value: { ts, ops },
      firstPosition: this.nextPosition,
      ts,
      outcomes: opts.outcomes ?? ops.map(() => ({ kind: 'new' as const })),
    }
    this.slot++
    this.nextPosition = recordEnd(record)
    this.ts = ts
    this.records.push(record)
    return { kind: 'chosen', record, sessions: opts.sessions ?? [], trims: opts.trims ?? [] }
  }

  /** Every stored entry, by position. */
  entries(): LogEntry[] {
    const out: LogEntry[] = []
    for (const r of this.records) storedEntries(r).forEach((e, i) => out.push({ position: r.firstPosition + i, streams: e.streams, data: e.data, ts: r.ts }))
    return out
  }
}

export const identity = (incarnation = 1, voting = true): Write => ({ kind: 'identity', incarnation, incarnations: [incarnation, 0, 0], voting })
export const promise = (round: number, replica = 0): Write => ({ kind: 'promise', ballot: { round, replica } })

/** A comparable form of a PersistedState (Map order is not part of the contract beyond lastSlot). */
export function normalize(s: PersistedState | null): unknown {
  if (s === null) return null
  return {
    ...s,
    applied: {
      ...s.applied,
      sessions: [...s.applied.sessions].sort((a, b) => a[1].lastSlot - b[1].lastSlot || (a[0] < b[0] ? -1 : 1)),
      trims: [...s.applied.trims].sort((a, b) => (a[0] < b[0] ? -1 : 1)),
    },
  }
}

/** What `store.load()` must equal: the image's load without records the store reclaimed. */
function expectedLoad(image: PersistedImage, recentChosenMax: number, reclaimedSlot: number): unknown {
  const s = image.load(recentChosenMax)
  if (s === null) return null
  return normalize({ ...s, recentChosen: s.recentChosen.filter((r) => r.slot >= reclaimedSlot) })
}

async function readAll(read: (from: number) => Promise<{ entries: LogEntry[]; next: number }>, from: number): Promise<LogEntry[]> {
  const out: LogEntry[] = []
  for (let guard = 0; guard < 10_000; guard++) {
    const r = await read(from)
    out.push(...r.entries)
    if (r.entries.length === 0) return out
    expect(r.next).toBeGreaterThan(from)
    from = r.next
  }
  throw new Error('readAll did not finish')
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p
  } catch (err) {
    return String((err as { code?: unknown }).code)
  }
  return 'resolved'
}

const pos = (es: readonly LogEntry[]): number[] => es.map((e) => e.position)

// ---------------------------------------------------------------------------------

export function logStoreConformance(name: string, makeHarness: () => LogStoreHarness): void {
  describe(`LogStore conformance: ${name}`, () => {
    let h: LogStoreHarness
    beforeEach(() => {
      h = makeHarness()
    })
    afterEach(async () => {
      await h.cleanup()
    })

    it('an empty disk loads as null and reads as empty', async () => {
      const s = await h.create()
      expect(await s.load()).toBeNull()
      expect(s.tail()).toBe(0)
      expect(await s.readLog({ from: 0, limit: 10 })).toEqual({ entries: [], next: 0 })
      expect(await s.readStream('a', { from: 0, limit: 10 })).toEqual({ entries: [], next: 0 })
      expect(await s.streamLast('a')).toBe(-1)
      expect(await s.chosenRange(0, 10, 10)).toEqual([])
      expect(s.reclaimed()).toEqual({ slot: 0, position: 0 })
      // Writes without an identity still load as null (the image's rule).
      await s.persist([promise(3)])
      expect(await s.load()).toBeNull()
    })

    it('persist/load round trip, also across a restart, equals PersistedImage', async () => {
      let s = await h.create({ recentChosenMax: 3 })
      const image = new PersistedImage()
      const log = new ChosenLog()
      const v = { ts: 5, ops: [append([entry('x', 'a')])] }
      const batches: Write[][] = [
        [identity(1), promise(1)],
        [{ kind: 'accept', slot: 0, ballot: { round: 1, replica: 0 }, value: v }, { kind: 'accept', slot: 1, ballot: { round: 1, replica: 0 }, value: v }],
        [log.chosen([append([entry('e0', 'a'), entry('e1', 'b')], 'c1', 1)], { sessions: [{ clientId: 'c1', state: { seqs: [{ seq: 1, first: 0, count: 2 }], lastSlot: 0 } }] })],
        [promise(2, 1), promise(1, 2)], // the promise only rises
        [log.chosen([append([entry('e2', 'a', 'b')])], { ts: 100 })],
        [log.chosen([])],
        [log.chosen([append([entry('e3', 'c')], 'c2', 7)], { sessions: [{ clientId: 'c2', state: { seqs: [{ seq: 7, first: 3, count: 1 }], lastSlot: 3 } }] })],
        [{ kind: 'accept', slot: 5, ballot: { round: 2, replica: 1 }, value: v }, { kind: 'identity', incarnation: 2, incarnations: [2, 1, 0], voting: false }],
        [log.chosen([trimOp('a', 1)], { trims: [{ stream: 'a', before: 1 }], sessions: [{ clientId: 'c1', state: null }] })],
      ]
      for (const b of batches) {
        image.apply(b)
        await s.persist(b)
        expect(normalize(await s.load())).toEqual(expectedLoad(image, 3, 0))
      }
      const want = expectedLoad(image, 3, 0)
      s = await h.reopen(s)
      expect(normalize(await s.load())).toEqual(want)
      const loaded = (await s.load())!
      expect(loaded.applied).toMatchObject({ commitSlot: 5, nextPosition: 4, lastTs: 103 })
      expect(loaded.promised).toEqual({ round: 2, replica: 1 })
      expect(loaded.accepted.map((a) => a.slot)).toEqual([5]) // accepts of chosen slots are gone
      expect([...loaded.applied.sessions.keys()]).toEqual(['c2']) // c1 was evicted
      expect(loaded.recentChosen.map((r) => r.slot)).toEqual([2, 3, 4])
      expect(s.tail()).toBe(4)
      expect(s.trimPoint('a')).toBe(1)
      expect(s.trimPoint('zzz')).toBe(0)
      // Entry bytes come back as Uint8Array.
      expect(loaded.recentChosen[1]!.value.ops[0]!.kind).toBe('append')
    })

    it('chosenRange serves held slots in order within the bounds, stopping at the first slot not held', async () => {
      const s = await h.create()
      const log = new ChosenLog()
      for (let i = 0; i < 6; i++) await s.persist([log.chosen(i % 2 === 0 ? [append([entry(`d${i}`, 'a')])] : [])])
      expect(await s.chosenRange(0, 6, 100)).toEqual(log.records)
      expect(await s.chosenRange(2, 5, 100)).toEqual(log.records.slice(2, 5))
      expect(await s.chosenRange(1, 6, 2)).toEqual(log.records.slice(1, 3))
      expect(await s.chosenRange(4, 100, 100)).toEqual(log.records.slice(4))
      expect(await s.chosenRange(6, 10, 10)).toEqual([])
      expect(await s.chosenRange(3, 3, 10)).toEqual([])
      expect(await codeOf(s.chosenRange(-1, 3, 10))).toBe('bad_request')
      expect(await codeOf(s.chosenRange(0, 3, 0))).toBe('bad_request')
    })

    it('readLog: from/to/limit and next over global positions, from inside a slot, past the tail', async () => {
      const s = await h.create()
      const log = new ChosenLog()
      // slot 0: positions 0..2; slot 1: no-op; slot 2: 3..4; slot 3: 5..9
      await s.persist([log.chosen([append([entry('p0', 'a'), entry('p1', 'b'), entry('p2', 'a')])])])
      await s.persist([log.chosen([]), log.chosen([append([entry('p3', 'b')]), append([entry('p4', 'c')])])])
      await s.persist([log.chosen([append(Array.from({ length: 5 }, (_, i) => entry(`p${5 + i}`, 'a', 'c')))])])
      const all = log.entries()
      expect(all.map((e) => new TextDecoder().decode(e.data))).toEqual(Array.from({ length: 10 }, (_, i) => `p${i}`))
      expect(await s.readLog({ from: 0, limit: 100 })).toEqual({ entries: all, next: 10 })
      expect(await s.readLog({ from: 1, limit: 3 })).toEqual({ entries: all.slice(1, 4), next: 4 })
      expect(await s.readLog({ from: 4, to: 7, limit: 100 })).toEqual({ entries: all.slice(4, 7), next: 7 })
      expect(await s.readLog({ from: 4, to: 7, limit: 3 })).toEqual({ entries: all.slice(4, 7), next: 7 })
      expect(await s.readLog({ from: 6, limit: 1 })).toEqual({ entries: all.slice(6, 7), next: 7 })
      expect(await s.readLog({ from: 9, limit: 5 })).toEqual({ entries: all.slice(9), next: 10 })
      expect(await s.readLog({ from: 10, limit: 5 })).toEqual({ entries: [], next: 10 })
      expect(await s.readLog({ from: 15, limit: 5 })).toEqual({ entries: [], next: 15 })
      expect(await s.readLog({ from: 5, to: 5, limit: 5 })).toEqual({ entries: [], next: 5 })
      expect(await s.readLog({ from: 0, to: 100, limit: 100 })).toEqual({ entries: all, next: 10 })
      expect(await readAll((from) => s.readLog({ from, limit: 2 }), 0)).toEqual(all)
      expect(await codeOf(s.readLog({ from: -1, limit: 5 }))).toBe('bad_request')
      expect(await codeOf(s.readLog({ from: 0, limit: 0 }))).toBe('bad_request')
      expect(await codeOf(s.readLog({ from: 0.5, limit: 1 }))).toBe('bad_request')
    })

    it('readStream: only that stream, multi-stream entries in each of their streams; streamLast', async () => {
      const s = await h.create()
      const log = new ChosenLog()
      await s.persist([log.chosen([append([entry('p0', 'a'), entry('p1', 'b'), entry('p2', 'a', 'b')])])])
      await s.persist([log.chosen([append([entry('p3', 'b'), entry('p4', 'ab')])])])
      await s.persist([log.chosen([append([entry('p5', 'a', 'a'), entry('p6', 'b'), entry('p7', 'a')])])])
      const all = log.entries()
      const of = (st: string): LogEntry[] => all.filter((e) => e.streams.includes(st))
      expect(pos(of('a'))).toEqual([0, 2, 5, 7])
      expect(await s.readStream('a', { from: 0, limit: 100 })).toEqual({ entries: of('a'), next: 8 })
      expect(await s.readStream('b', { from: 0, limit: 100 })).toEqual({ entries: of('b'), next: 8 })
      expect(await s.readStream('ab', { from: 0, limit: 100 })).toEqual({ entries: of('ab'), next: 8 })
      expect(await s.readStream('a', { from: 1, limit: 2 })).toEqual({ entries: [all[2], all[5]], next: 6 })
      expect(await s.readStream('a', { from: 3, to: 7, limit: 100 })).toEqual({ entries: [all[5]], next: 7 })
      expect(await s.readStream('a', { from: 6, to: 7, limit: 100 })).toEqual({ entries: [], next: 7 })
      expect(await s.readStream('b', { from: 3, limit: 1 })).toEqual({ entries: [all[3]], next: 4 })
      expect(await s.readStream('nope', { from: 0, limit: 10 })).toEqual({ entries: [], next: 8 })
      expect(await s.readStream('a', { from: 20, limit: 10 })).toEqual({ entries: [], next: 20 })
      expect(await readAll((from) => s.readStream('b', { from, limit: 1 }), 0)).toEqual(of('b'))
      expect(await s.streamLast('a')).toBe(7)
      expect(await s.streamLast('b')).toBe(6)
      expect(await s.streamLast('ab')).toBe(4)
      expect(await s.streamLast('nope')).toBe(-1)
      expect(await codeOf(s.readStream('', { from: 0, limit: 1 }))).toBe('bad_request')
      expect(await codeOf(s.streamLast('a\0b'))).toBe('bad_request')
    })

    it("dup and rejected appends and trim ops take no positions; no-op slots keep numbering", async () => {
      const s = await h.create()
      const log = new ChosenLog()
      await s.persist([log.chosen([append([entry('k0', 'a')], 'c', 1), append([entry('x', 'a')], 'c', 1), append([entry('k1', 'b')], 'c', 2)], {
        outcomes: [{ kind: 'new' }, { kind: 'dup', first: 0 }, { kind: 'new' }],
      })])
      await s.persist([log.chosen([append([entry('r', 'a')]), trimOp('zz', 0), append([entry('k2', 'a'), entry('k3', 'b')])], {
        outcomes: [{ kind: 'rejected', code: 'sequence_too_old' }, { kind: 'new' }, { kind: 'new' }],
      })])
      await s.persist([log.chosen([]), log.chosen([append([entry('k4', 'a')])])])
      expect(log.records.map((r) => r.firstPosition)).toEqual([0, 2, 4, 4])
      const got = await s.readLog({ from: 0, limit: 100 })
      expect(got.entries.map((e) => new TextDecoder().decode(e.data))).toEqual(['k0', 'k1', 'k2', 'k3', 'k4'])
      expect(pos(got.entries)).toEqual([0, 1, 2, 3, 4])
      expect(pos((await s.readStream('a', { from: 0, limit: 100 })).entries)).toEqual([0, 2, 4])
      expect(s.tail()).toBe(5)
      expect(await s.chosenRange(2, 4, 10)).toEqual(log.records.slice(2))
    })

    it('reads are bounded by readEntriesMax and readBytesMax, and next resumes exactly', async () => {
      const s = await h.create({ readEntriesMax: 3, readBytesMax: 25 })
      const log = new ChosenLog()
      await s.persist([log.chosen([append(Array.from({ length: 10 }, (_, i) => entry(`entry-${i}`, 'a')))])])
      const first = await s.readLog({ from: 0, limit: 100 })
      expect(first.entries.length).toBeLessThanOrEqual(3)
      expect(first.entries.length).toBeGreaterThanOrEqual(1)
      expect(first.next).toBe(first.entries.length)
      expect(await readAll((from) => s.readLog({ from, limit: 100 }), 0)).toEqual(log.entries())
      expect(await readAll((from) => s.readStream('a', { from, limit: 100 }), 0)).toEqual(log.entries())
      const big = await h.create({ readBytesMax: 1 })
      await big.persist([new ChosenLog().chosen([append([entry('xxxx', 'a'), entry('yyyy', 'a')])])])
      expect(pos((await big.readLog({ from: 0, limit: 10 })).entries)).toEqual([0]) // at least one entry
    })

    it('trims raise trim points (never lower them); reads below them are `trimmed`, never partial', async () => {
      const s = await h.create()
      const log = new ChosenLog()
      await s.persist([identity()])
      await s.persist([log.chosen([append([entry('0', 'a'), entry('1', 'b'), entry('2', 'a')])])])
      await s.persist([log.chosen([append([entry('3', 'a'), entry('4', 'b')])])])
      await s.persist([log.chosen([trimOp('a', 3)], { trims: [{ stream: 'a', before: 3 }] })])
      expect(s.trimPoint('a')).toBe(3)
      const err = await s.readStream('a', { from: 2, limit: 10 }).catch((e: unknown) => e)
      expect(err).toMatchObject({ code: 'trimmed', trimmedBefore: 3, stream: 'a' })
      expect(await s.readStream('a', { from: 3, limit: 10 })).toMatchObject({ entries: [{ position: 3 }], next: 5 })
      expect(pos((await s.readStream('b', { from: 0, limit: 10 })).entries)).toEqual([1, 4])
      // Not reclaimed yet: the global log still reads from 0.
      expect(pos((await s.readLog({ from: 0, limit: 10 })).entries)).toEqual([0, 1, 2, 3, 4])
      await s.persist([log.chosen([trimOp('a', 1)], { trims: [{ stream: 'a', before: 1 }] })])
      expect(s.trimPoint('a')).toBe(3)
      const st = await h.reopen(s)
      expect(st.trimPoint('a')).toBe(3)
      expect((await st.load())!.applied.trims.get('a')).toBe(3)
      expect(await codeOf(st.readStream('a', { from: 0, limit: 1 }))).toBe('trimmed')
    })

    it('compact reclaims whole slot records once every stream of every entry is trimmed past it', async () => {
      let s = await h.create({ recentChosenMax: 10 })
      const log = new ChosenLog()
      await s.persist([identity()])
      await s.persist([log.chosen([append([entry('0', 'a'), entry('1', 'a', 'b')])])]) // slot 0: 0..1
      await s.persist([log.chosen([])]) // slot 1: no-op
      await s.persist([log.chosen([append([entry('2', 'a'), entry('3', 'b')])])]) // slot 2: 2..3
      await s.persist([log.chosen([append([entry('4', 'a')])])]) // slot 3: 4
      const before = await s.stats()
      expect(before).toMatchObject({ slotRecords: 4, streamIndexKeys: 5, reclaimed: { slot: 0, position: 0 } })

      // a trimmed past slot 0 but b is not (entry 1 is in b): nothing can go.
      await s.persist([log.chosen([trimOp('a', 4)], { trims: [{ stream: 'a', before: 4 }] })]) // slot 4: no entries
      expect(await s.compact()).toEqual({ reclaimedSlots: 0, done: true })
      expect(pos((await s.readLog({ from: 0, limit: 10 })).entries)).toEqual([0, 1, 2, 3, 4])

      // b trimmed past 1: slots 0 and 1 go; slot 2 holds b@3, which is not trimmed.
      await s.persist([log.chosen([trimOp('b', 2)], { trims: [{ stream: 'b', before: 2 }] })])
      expect(await s.compact()).toEqual({ reclaimedSlots: 2, done: true })
      expect(s.reclaimed()).toEqual({ slot: 2, position: 2 })
      expect(await s.stats()).toMatchObject({ slotRecords: 4, streamIndexKeys: 3 })
      const err = await s.readLog({ from: 1, limit: 10 }).catch((e: unknown) => e)
      expect(err).toMatchObject({ code: 'trimmed', trimmedBefore: 2 })
      expect(pos((await s.readLog({ from: 2, limit: 10 })).entries)).toEqual([2, 3, 4])
      expect(await s.chosenRange(0, 10, 10)).toEqual([])
      expect(await s.chosenRange(2, 10, 10)).toEqual(log.records.slice(2))
      expect(pos((await s.readStream('b', { from: 2, limit: 10 })).entries)).toEqual([3])
      expect((await s.load())!.recentChosen.map((r) => r.slot)).toEqual([2, 3, 4, 5])

      // Everything trimmed: all records go (no-op slots too); streamLast survives.
      await s.persist([log.chosen([trimOp('b', 5), trimOp('a', 5)], { trims: [{ stream: 'b', before: 5 }, { stream: 'a', before: 5 }] })])
      expect(await s.compact()).toEqual({ reclaimedSlots: 5, done: true })
      expect(s.reclaimed()).toEqual({ slot: 7, position: 5 })
      expect(await s.stats()).toMatchObject({ slotRecords: 0, streamIndexKeys: 0 })
      expect(await s.streamLast('a')).toBe(4)
      expect(await s.streamLast('b')).toBe(3)
      expect(await s.readLog({ from: 5, limit: 10 })).toEqual({ entries: [], next: 5 })
      expect(await codeOf(s.readLog({ from: 4, limit: 10 }))).toBe('trimmed')
      expect(await codeOf(s.readStream('a', { from: 4, limit: 10 }))).toBe('trimmed')
      expect(await s.readStream('a', { from: 5, limit: 10 })).toEqual({ entries: [], next: 5 })

      // Survives a restart; new slots are stored after the reclaimed prefix.
      s = await h.reopen(s)
      expect(s.reclaimed()).toEqual({ slot: 7, position: 5 })
      expect(await s.streamLast('b')).toBe(3)
      await s.persist([log.chosen([append([entry('5', 'b')])])])
      expect(pos((await s.readLog({ from: 5, limit: 10 })).entries)).toEqual([5])
      expect(await s.streamLast('b')).toBe(5)
      expect((await s.load())!.recentChosen.map((r) => r.slot)).toEqual([7])
    })

    it('compact does bounded work per call', async () => {
      const s = await h.create({ compactSlotsMax: 3 })
      const log = new ChosenLog()
      for (let i = 0; i < 7; i++) await s.persist([log.chosen([append([entry(`${i}`, 'a')])])])
      await s.persist([log.chosen([trimOp('a', 7)], { trims: [{ stream: 'a', before: 7 }] })])
      expect(await s.compact()).toEqual({ reclaimedSlots: 3, done: false })
      expect(await s.compact()).toEqual({ reclaimedSlots: 3, done: false })
      const last = await s.compact()
      expect(last.reclaimedSlots).toBe(2)
      expect(s.reclaimed()).toEqual({ slot: 8, position: 7 })
      expect(await s.compact()).toEqual({ reclaimedSlots: 0, done: true })
    })

    it('sessions: updated per client, evicted ones are deleted', async () => {
      let s = await h.create()
      const log = new ChosenLog()
      const st = (seq: number, lastSlot: number) => ({ seqs: [{ seq, first: seq, count: 1 }], lastSlot })
      await s.persist([identity()])
      await s.persist([log.chosen([append([entry('x', 'a')], 'c1', 0)], { sessions: [{ clientId: 'c1', state: st(0, 0) }] })])
      await s.persist([log.chosen([append([entry('y', 'a')], 'c2', 0)], { sessions: [{ clientId: 'c2', state: st(1, 1) }] })])
      await s.persist([log.chosen([append([entry('z', 'a')], 'c1', 1)], { sessions: [{ clientId: 'c1', state: st(2, 2) }] })])
      s = await h.reopen(s)
      let sessions = (await s.load())!.applied.sessions
      expect([...sessions]).toEqual([['c2', st(1, 1)], ['c1', st(2, 2)]]) // ordered by lastSlot
      await s.persist([log.chosen([append([entry('w', 'a')], 'c3', 0)], { sessions: [{ clientId: 'c3', state: st(3, 3) }, { clientId: 'c2', state: null }] })])
      s = await h.reopen(s)
      sessions = (await s.load())!.applied.sessions
      expect([...sessions.keys()]).toEqual(['c1', 'c3'])
    })

    it('concurrent persist calls all resolve, in call order, and all their writes land', async () => {
      let s = await h.create()
      const log = new ChosenLog()
      const image = new PersistedImage()
      const order: number[] = []
      const calls: Promise<void>[] = []
      const first: Write[] = [identity()]
      image.apply(first)
      calls.push(s.persist(first).then(() => void order.push(-1)))
      for (let i = 0; i < 50; i++) {
        const w: Write[] = [log.chosen([append([entry(`e${i}`, `s${i % 3}`), entry(`f${i}`, 'all')])])]
        if (i % 7 === 0) w.push(promise(i + 1))
        image.apply(w)
        calls.push(s.persist(w).then(() => void order.push(i)))
      }
      await Promise.all(calls)
      expect(order).toEqual([-1, ...Array.from({ length: 50 }, (_, i) => i)])
      expect(s.tail()).toBe(100)
      expect(await readAll((from) => s.readLog({ from, limit: 30 }), 0)).toEqual(log.entries())
      s = await h.reopen(s)
      expect(normalize(await s.load())).toEqual(expectedLoad(image, 4096, 0))
      expect(pos((await s.readStream('s1', { from: 0, limit: 1000 })).entries)).toEqual(
        log.entries().filter((e) => e.streams.includes('s1')).map((e) => e.position),
      )
    })

    it('a persist call is atomic: a bad write rejects the whole call and stores nothing', async () => {
      const s = await h.create()
      const log = new ChosenLog()
      const bad = log.chosen([append([entry('x', 'bad\0name')])])
      expect(await codeOf(s.persist([identity(), bad]))).toBe('bad_request')
      expect(await s.load()).toBeNull()
      expect(s.tail()).toBe(0)
    })

    it('a closed store refuses with `closed`; repair of held records changes nothing visible', async () => {
      const s = await h.create()
      const log = new ChosenLog()
      await s.persist([identity(), log.chosen([append([entry('a0', 'a'), entry('b0', 'b')])]), log.chosen([append([entry('a1', 'a')])])])
      await s.repair(log.records)
      await s.repair([{ ...log.records[0]!, slot: 99 }]) // not chosen here: ignored
      expect(await s.readLog({ from: 0, limit: 10 })).toEqual({ entries: log.entries(), next: 3 })
      expect(await s.readStream('a', { from: 0, limit: 10 })).toMatchObject({ entries: [{ position: 0 }, { position: 2 }], next: 3 })
      expect(await s.chosenRange(0, 5, 5)).toEqual(log.records)
      await s.close()
      expect(await codeOf(s.persist([promise(1)]))).toBe('closed')
      expect(await codeOf(s.readLog({ from: 0, limit: 1 }))).toBe('closed')
      expect(await codeOf(s.load())).toBe('closed')
    })

    it('reads racing persists, trims and compaction see whole ranges or `trimmed`, never partial data', async () => {
      const s = await h.create({ compactSlotsMax: 3 })
      const log = new ChosenLog()
      const writes: Write[] = []
      for (let i = 0; i < 60; i++) {
        const trims: TrimUpdate[] = i % 5 === 4 ? [{ stream: 'a', before: Math.max(0, log.nextPosition - 12) }, { stream: 'b', before: Math.max(0, log.nextPosition - 8) }] : []
        writes.push(log.chosen([append(Array.from({ length: 5 }, (_, j) => entry(`${i}.${j}`, j % 2 === 0 ? 'a' : 'b', ...(j === 4 ? ['a'] : []))))], { trims }))
      }
      const all = log.entries()
      let done = false
      const persisting = (async () => {
        for (let i = 0; i < writes.length; i += 3) await Promise.all(writes.slice(i, i + 3).map((w) => s.persist([w])))
        done = true
      })()
      const compacting = (async () => {
        while (!done) await s.compact()
        while (!(await s.compact()).done);
      })()
      let reads = 0
      const reading = (async () => {
        for (let k = 0; !done || k < 5; k++) {
          const tail = s.tail()
          const from = Math.max(0, tail - 1 - (k * 7) % 25)
          for (const st of [null, 'a', 'b'] as const) {
            try {
              const r = st === null ? await s.readLog({ from, limit: 7 }) : await s.readStream(st, { from, limit: 4 })
              const want = all.filter((e) => e.position >= from && e.position < r.next && (st === null || e.streams.includes(st)))
              expect(r.entries).toEqual(want)
              reads++
            } catch (err) {
              expect((err as { code?: unknown }).code).toBe('trimmed')
            }
          }
          await new Promise((r) => setImmediate(r))
        }
      })()
      await Promise.all([persisting, compacting, reading])
      expect(reads).toBeGreaterThan(0)
      expect(s.reclaimed().slot).toBeGreaterThan(0)
    })

    it('property: random write sequences with restarts and compaction load what PersistedImage loads', async () => {
      const streams = ['a', 'b', 'c', 'd']
      const entryArb = fc.record({
        streams: fc.uniqueArray(fc.constantFrom(...streams), { minLength: 1, maxLength: 3 }),
        data: fc.uint8Array({ maxLength: 12 }),
      })
      const appendArb = fc.record({
        kind: fc.constant('append' as const),
        entries: fc.array(entryArb, { maxLength: 4 }),
        outcome: fc.constantFrom<Outcome>({ kind: 'new' }, { kind: 'new' }, { kind: 'new' }, { kind: 'dup', first: 0 }, { kind: 'rejected', code: 'sequence_too_old' }),
        clientId: fc.option(fc.constantFrom('c1', 'c2', 'c3'), { nil: undefined }),
      })
      const stepArb = fc.oneof(
        { weight: 6, arbitrary: fc.record({ t: fc.constant('chosen' as const), ops: fc.array(appendArb, { maxLength: 3 }), trim: fc.option(fc.tuple(fc.constantFrom(...streams), fc.nat(30)), { nil: undefined }), evict: fc.boolean(), ts: fc.nat(5) }) },
        { weight: 1, arbitrary: fc.record({ t: fc.constant('promise' as const), round: fc.nat(20), replica: fc.nat(2) }) },
        { weight: 1, arbitrary: fc.record({ t: fc.constant('accept' as const), ahead: fc.integer({ min: -2, max: 3 }), round: fc.nat(20) }) },
        { weight: 1, arbitrary: fc.record({ t: fc.constant('identity' as const), inc: fc.nat(5), voting: fc.boolean() }) },
        { weight: 1, arbitrary: fc.record({ t: fc.constant('restart' as const) }) },
        { weight: 1, arbitrary: fc.record({ t: fc.constant('compact' as const) }) },
        { weight: 1, arbitrary: fc.record({ t: fc.constant('group' as const), n: fc.integer({ min: 2, max: 4 }) }) },
      )
      await fc.assert(
        fc.asyncProperty(fc.array(stepArb, { maxLength: 30 }), async (steps) => {
          const recentChosenMax = 4
          let s = await h.create({ recentChosenMax, compactSlotsMax: 2, sync: false })
          const image = new PersistedImage()
          const log = new ChosenLog()
          const trims = new Map<string, number>()
          const pending: Write[][] = []
          const flushGroup = async (): Promise<void> => {
            const batch = pending.splice(0)
            await Promise.all(batch.map((w) => s.persist(w)))
          }
          let groupLeft = 0
          for (const st of steps) {
            let w: Write | null = null
            switch (st.t) {
              case 'chosen': {
                const ops: Op[] = st.ops.map((o) => ({ kind: 'append', entries: o.entries, ...(o.clientId === undefined ? {} : { clientId: o.clientId, seq: 1 }) }))
                const outcomes = st.ops.map((o) => o.outcome)
                const t: TrimUpdate[] = []
                if (st.trim !== undefined) {
                  // The core only ever raises a trim point, and never past the tail.
                  const before = Math.max(trims.get(st.trim[0]) ?? 0, Math.min(st.trim[1], log.nextPosition))
                  trims.set(st.trim[0], before)
                  t.push({ stream: st.trim[0], before })
                  ops.push(trimOp(st.trim[0], before))
                  outcomes.push({ kind: 'new' })
                }
                const sessions: SessionUpdate[] = st.ops.flatMap((o) => (o.clientId === undefined ? [] : [{ clientId: o.clientId, state: { seqs: [{ seq: 1, first: log.nextPosition, count: o.entries.length }], lastSlot: log.slot } }]))
                if (st.evict) sessions.push({ clientId: 'c2', state: null })
                w = log.chosen(ops, { outcomes, trims: t, sessions, ts: log.ts + st.ts })
                break
              }
              case 'promise':
                w = { kind: 'promise', ballot: { round: st.round, replica: st.replica } satisfies Ballot }
                break
              case 'accept':
                w = { kind: 'accept', slot: Math.max(0, log.slot + st.ahead), ballot: { round: st.round, replica: 1 }, value: { ts: 1, ops: [append([entry('acc', 'a')])] } }
                break
              case 'identity':
                w = { kind: 'identity', incarnation: st.inc, incarnations: [st.inc, 1, 2], voting: st.voting }
                break
              case 'restart':
                await flushGroup()
                s = await h.reopen(s)
                break
              case 'compact':
                await flushGroup()
                await s.compact()
                break
              case 'group':
                groupLeft = st.n
                break
            }
            if (w !== null) {
              image.apply([w])
              pending.push([w])
              if (groupLeft > 0) groupLeft--
              if (groupLeft === 0) await flushGroup()
            }
          }
          await flushGroup()
          for (let i = 0; i < 100 && !(await s.compact()).done; i++);

          // The reclaimed prefix is exactly the longest prefix of fully trimmed slots.
          let expectSlot = 0
          for (const r of log.records) {
            const ok = storedEntries(r).every((e, i) => e.streams.every((st) => (trims.get(st) ?? 0) > r.firstPosition + i))
            if (!ok) break
            expectSlot++
          }
          expect(s.reclaimed().slot).toBe(expectSlot)
          const reclaimedPos = s.reclaimed().position
          expect(normalize(await s.load())).toEqual(expectedLoad(image, recentChosenMax, expectSlot))
          s = await h.reopen(s)
          expect(normalize(await s.load())).toEqual(expectedLoad(image, recentChosenMax, expectSlot))

          // Reads agree with the entries the chosen records define.
          const all = log.entries()
          expect(await readAll((from) => s.readLog({ from, limit: 3 }), reclaimedPos)).toEqual(all.filter((e) => e.position >= reclaimedPos))
          for (const st of streams) {
            const from = trims.get(st) ?? 0
            expect(await readAll((f) => s.readStream(st, { from: f, limit: 2 }), from)).toEqual(all.filter((e) => e.position >= from && e.streams.includes(st)))
            const lastOf = all.filter((e) => e.streams.includes(st)).pop()
            expect(await s.streamLast(st)).toBe(lastOf?.position ?? -1)
            if (from > 0) expect(await codeOf(s.readStream(st, { from: from - 1, limit: 1 }))).toBe('trimmed')
          }
          expect(s.tail()).toBe(log.nextPosition)
          expect(await s.chosenRange(expectSlot, log.slot, 1000)).toEqual(log.records.slice(expectSlot))
          await h.cleanup()
        }),
        // STORAGE_PROPERTY_RUNS=500 for a longer soak; a failure prints its seed and path.
        { numRuns: Number(process.env.STORAGE_PROPERTY_RUNS ?? 40) },
      )
    })
  })
}
