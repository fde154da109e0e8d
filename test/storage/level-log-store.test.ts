// LevelLogStore beyond the conformance suite: damaged files on disk, group commit,
// option validation.

import fs from 'node:fs'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import type { Write } from '../../log-server/paxos/types.ts'
import { CorruptionError } from '../../log-server/storage/errors.ts'
import { LevelLogStore, type LevelLogStoreOptions } from '../../log-server/storage/level-log-store.ts'
import { ChosenLog, append, identity } from './conformance.ts'
import { tempDir } from './harnesses.ts'

const dirs: string[] = []
const stores: LevelLogStore[] = []
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close()
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true })
})

async function openStore(dir?: string, options: Partial<LevelLogStoreOptions> = {}): Promise<LevelLogStore> {
  const d = dir ?? tempDir()
  if (dir === undefined) dirs.push(d)
  const s = new LevelLogStore(d, options)
  await s.open()
  stores.push(s)
  return s
}

async function closeStore(s: LevelLogStore): Promise<void> {
  await s.close()
  stores.splice(stores.indexOf(s), 1)
}

/** Incompressible bytes (so that LevelDB stores them as they are) that name their seed. */
function payload(seed: number, n = 64): Uint8Array {
  const b = new Uint8Array(n)
  let x = (seed * 2654435761 + 1) >>> 0
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0
    b[i] = x >>> 24
  }
  return b
}

/** Flips one byte in the middle of `pattern` in whichever of `files` holds it; returns the file. */
function flipPattern(dir: string, ext: string, pattern: Uint8Array): string {
  for (const f of fs.readdirSync(dir).filter((f) => f.endsWith(ext))) {
    const file = path.join(dir, f)
    const buf = fs.readFileSync(file)
    const at = buf.indexOf(Buffer.from(pattern))
    if (at < 0) continue
    buf[at + (pattern.length >> 1)]! ^= 0xff
    fs.writeFileSync(file, buf)
    return f
  }
  throw new Error(`pattern not found in any *${ext} file of ${dir}`)
}

async function codeOf(p: Promise<unknown>): Promise<unknown> {
  try {
    await p
  } catch (err) {
    return err
  }
  return 'resolved'
}

describe('LevelLogStore: damaged files', () => {
  it('a flipped byte in a table file (.ldb) raises CorruptionError for that slot, and repair() heals it', async () => {
    const dir = tempDir()
    dirs.push(dir)
    const log = new ChosenLog()
    let s = await openStore(dir)
    await s.persist([identity()])
    for (let i = 0; i < 6; i++) {
      await s.persist([log.chosen([append([{ streams: ['a'], data: payload(i) }, { streams: ['b'], data: payload(100 + i) }])])])
    }
    await closeStore(s)
    // Reopening turns the write-ahead log into a table file; close again and damage it.
    await closeStore(await openStore(dir))
    flipPattern(dir, '.ldb', payload(3))
    s = await openStore(dir)

    // Slot 3 holds positions 6..7.
    for (const read of [
      () => s.readLog({ from: 0, limit: 100 }),
      () => s.readLog({ from: 6, limit: 1 }),
      () => s.readStream('a', { from: 0, limit: 100 }),
      () => s.readStream('b', { from: 7, limit: 1 }), // the index points into the damaged record
      () => s.chosenRange(0, 6, 10),
    ]) {
      const err = await codeOf(read())
      expect(err).toBeInstanceOf(CorruptionError)
      expect(err).toMatchObject({ code: 'corrupt' })
      // Our checksum names the slot; LevelDB's own block checksum (if it fires first) may not.
      const slot = (err as CorruptionError).slot
      if (slot !== null) expect(slot).toBe(3)
    }
    // Ranges that do not touch the damaged record still read.
    expect((await s.readLog({ from: 0, limit: 6 })).entries.map((e) => e.position)).toEqual([0, 1, 2, 3, 4, 5])
    expect((await s.readLog({ from: 8, limit: 100 })).entries.map((e) => e.position)).toEqual([8, 9, 10, 11])
    // load() does not fail: recentChosen is the intact tail after the damaged record.
    expect((await s.load())!.recentChosen.map((r) => r.slot)).toEqual([4, 5])

    await s.repair([log.records[3]!])
    expect(await s.readLog({ from: 0, limit: 100 })).toEqual({ entries: log.entries(), next: 12 })
    expect((await s.readStream('b', { from: 0, limit: 100 })).entries.map((e) => e.position)).toEqual([1, 3, 5, 7, 9, 11])
    expect(await s.chosenRange(0, 6, 10)).toEqual(log.records)
    expect((await s.load())!.recentChosen).toEqual(log.records)
    // And it stays repaired across a restart.
    await closeStore(s)
    s = await openStore(dir)
    expect(await s.readLog({ from: 0, limit: 100 })).toEqual({ entries: log.entries(), next: 12 })
  })

  it('a flipped byte in the write-ahead log (.log) loses batches; the lost slots raise CorruptionError until repaired', async () => {
    const dir = tempDir()
    dirs.push(dir)
    const log = new ChosenLog()
    let s = await openStore(dir)
    await s.persist([identity()])
    // Slots 0..2 small, then slots big enough that later batches start in later 32 KiB
    // log blocks (LevelDB skips the rest of a damaged block, then replays what follows).
    for (let i = 0; i < 3; i++) await s.persist([log.chosen([append([{ streams: ['a'], data: payload(i) }])])])
    for (let i = 3; i < 12; i++) await s.persist([log.chosen([append([{ streams: ['a', 'b'], data: payload(i, 9000) }])])])
    await closeStore(s)
    flipPattern(dir, '.log', payload(1))
    s = await openStore(dir)

    const missing = s.missingSlots()
    expect(missing[0]).toBe(1)
    expect(missing.length).toBeGreaterThan(0)
    expect(missing.length).toBeLessThan(11) // later blocks were replayed
    expect(s.tail()).toBe(12)
    for (const read of [
      () => s.readLog({ from: 0, limit: 100 }),
      () => s.readLog({ from: 1, limit: 1 }),
      () => s.readStream('a', { from: 0, limit: 100 }),
      () => s.chosenRange(1, 5, 10),
    ]) {
      const err = await codeOf(read())
      expect(err).toBeInstanceOf(CorruptionError)
      expect(err).toMatchObject({ code: 'corrupt', slot: 1 })
    }
    // Positions after the lost ones still read.
    const after = missing[missing.length - 1]! + 1
    expect((await s.readLog({ from: after, limit: 100 })).entries.map((e) => e.position)).toEqual(
      log.entries().filter((e) => e.position >= after).map((e) => e.position),
    )

    await s.repair(log.records.filter((r) => missing.includes(r.slot)))
    expect(s.missingSlots()).toEqual([])
    expect(await s.readLog({ from: 0, limit: 100 })).toEqual({ entries: log.entries(), next: 12 })
    expect((await s.readStream('a', { from: 0, limit: 100 })).entries.length).toBe(12)
    expect(await s.chosenRange(0, 12, 100)).toEqual(log.records)
    await closeStore(s)
    s = await openStore(dir)
    expect(s.missingSlots()).toEqual([])
  })
  it("LevelDB's own corruption reports (a damaged table footer) surface as CorruptionError, not a crash", async () => {
    const dir = tempDir()
    dirs.push(dir)
    const log = new ChosenLog()
    let s = await openStore(dir)
    await s.persist([identity()])
    for (let i = 0; i < 3; i++) await s.persist([log.chosen([append([{ streams: ['a'], data: payload(i) }])])])
    await closeStore(s)
    await closeStore(await openStore(dir))
    for (const f of fs.readdirSync(dir).filter((f) => f.endsWith('.ldb'))) {
      const file = path.join(dir, f)
      const buf = fs.readFileSync(file)
      buf.fill(0x5a, buf.length - 48) // the footer: block handles and magic number
      fs.writeFileSync(file, buf)
    }
    const err = await codeOf(
      (async () => {
        s = await openStore(dir)
        await s.readLog({ from: 0, limit: 10 })
      })(),
    )
    expect(err).toBeInstanceOf(CorruptionError)
    expect(err).toMatchObject({ code: 'corrupt' })
  })
})

describe('LevelLogStore: group commit', () => {
  it('concurrent persist calls share batches, complete in call order, and are durable', async () => {
    const dir = tempDir()
    dirs.push(dir)
    let s = await openStore(dir, { sync: true })
    const log = new ChosenLog()
    const order: number[] = []
    const calls = Array.from({ length: 40 }, (_, i) => {
      const w: Write[] = i === 0 ? [identity()] : [log.chosen([append([{ streams: ['a'], data: payload(i) }])])]
      return s.persist(w).then(() => void order.push(i))
    })
    await Promise.all(calls)
    expect(order).toEqual(Array.from({ length: 40 }, (_, i) => i))
    // The first call goes alone; everything queued behind it shares as few batches as the bounds allow.
    expect(s.metrics.batches).toBeLessThan(10)
    expect(s.metrics.writes).toBe(40)
    await closeStore(s)
    s = await openStore(dir)
    expect((await s.load())!.applied.commitSlot).toBe(39)
  })

  it('respects groupCommitWritesMax', async () => {
    const s = await openStore(undefined, { sync: false, groupCommitWritesMax: 2 })
    const log = new ChosenLog()
    await Promise.all(Array.from({ length: 10 }, () => s.persist([log.chosen([append([{ streams: ['a'], data: payload(1) }])])])))
    expect(s.metrics.batches).toBeGreaterThanOrEqual(5)
    expect(s.tail()).toBe(10)
  })

  it('respects groupCommitBytesMax, but a single larger call still goes (alone)', async () => {
    const s = await openStore(undefined, { sync: false, groupCommitBytesMax: 1000 })
    const log = new ChosenLog()
    await Promise.all(Array.from({ length: 4 }, (_, i) => s.persist([log.chosen([append([{ streams: ['a'], data: payload(i, 3000) }])])])))
    expect(s.metrics.batches).toBe(4)
    expect((await s.readLog({ from: 0, limit: 10 })).entries.length).toBe(4)
  })

  it('refuses with `overloaded` past queueWritesMax', async () => {
    const s = await openStore(undefined, { sync: false, queueWritesMax: 3 })
    const log = new ChosenLog()
    const calls = Array.from({ length: 6 }, () => s.persist([log.chosen([])]).then(() => 'ok', (e: { code: string }) => e.code))
    const results = await Promise.all(calls)
    expect(results).toContain('overloaded')
    expect(results[0]).toBe('ok')
  })
})

describe('LevelLogStore: options', () => {
  it('rejects nonsense with `bad_config` naming the field', () => {
    expect(() => new LevelLogStore('/tmp/x', { groupCommitWritesMax: 0 })).toThrow(/groupCommitWritesMax/)
    expect(() => new LevelLogStore('/tmp/x', { readBytesMax: 1.5 })).toThrow(/readBytesMax/)
    expect(() => new LevelLogStore('/tmp/x', { sync: 'yes' as unknown as boolean })).toThrow(/sync/)
    expect(() => new LevelLogStore('/tmp/x', { writeBufferBytes: -1 })).toThrow(/writeBufferBytes/)
    expect(() => new LevelLogStore('/tmp/x', { bogus: 1 } as unknown as Partial<LevelLogStoreOptions>)).toThrow(/bogus/)
    try {
      new LevelLogStore('/tmp/x', { compactSlotsMax: 0 })
    } catch (err) {
      expect(err).toMatchObject({ code: 'bad_config' })
    }
  })
})
