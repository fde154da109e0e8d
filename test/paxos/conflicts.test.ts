// The leader's conflict table (log-server/paxos/conflicts.ts) on its own: pending writes
// always conflict and are never forgotten, eviction goes by first write and raises the
// watermark to the last write, a restart keeps only what is pending.
import { describe, expect, it } from 'vitest'
import { ConflictTable, type ConflictRecord } from '../../log-server/paxos/conflicts.ts'

const read = (key: string, version: number, stream = 's') => [{ stream, key, version }]
const entry = (streams: string[], keys: string[]) => ({ streams, data: new Uint8Array(0), keys })

describe('ConflictTable', () => {
  it('a held write conflicts with any read of its key until released; an applied one with older reads only', () => {
    const t = new ConflictTable(10)
    const held: ConflictRecord[] = []
    t.holdEntry(entry(['s', 'u'], ['a']), held, entry(['s', 'u'], []))
    expect(t.check(read('a', 99))).toMatchObject({ key: 'a', position: -1 })
    expect(t.check(read('a', 99, 'u'))).toMatchObject({ stream: 'u', key: 'a', position: -1 })
    t.record(['s', 'u'], ['a'], 7)
    t.release(held)
    expect(t.check(read('a', 6))).toMatchObject({ key: 'a', position: 7 })
    expect(t.check(read('a', 7))).toBeNull()
    expect(t.check(read('b', -1))).toBeNull() // never written, watermark -1
  })

  it('evicts by first write past the bound, raising the watermark to the evicted key\'s last write', () => {
    const t = new ConflictTable(2)
    t.record(['s'], ['a'], 1)
    t.record(['s'], ['b'], 2)
    t.record(['s'], ['a'], 3) // in place: a stays first written
    t.record(['s'], ['c'], 4)
    t.evict()
    expect(t.size).toBe(2)
    expect(t.watermark).toBe(3)
    expect(t.check(read('a', 2))).toMatchObject({ key: 'a', watermark: 3 })
    expect(t.check(read('a', 3))).toBeNull()
    expect(t.check(read('b', 1))).toMatchObject({ key: 'b', position: 2 })
  })

  it('never forgets a key with writes pending, and stops when only such keys are left', () => {
    const t = new ConflictTable(1)
    const held: ConflictRecord[] = []
    t.holdEntry(entry(['s'], ['p', 'q']), held, entry(['s'], []))
    t.record(['s'], ['r'], 5)
    t.evict()
    expect(t.size).toBe(2) // p and q pending: over the bound, kept
    expect(t.check(read('p', 100))).toMatchObject({ key: 'p', position: -1 })
    expect(t.check(read('r', 4))).toMatchObject({ key: 'r', watermark: 5 })
    t.release(held)
    t.evict()
    expect(t.size).toBe(1)
  })

  it('a restart forgets applied writes (reads below the new watermark conflict) but keeps pending ones', () => {
    const t = new ConflictTable(10)
    const held: ConflictRecord[] = []
    t.record(['s'], ['a'], 3)
    t.holdEntry(entry(['s'], ['b']), held, entry(['s'], []))
    t.restart(9)
    expect(t.check(read('a', 8))).toMatchObject({ key: 'a', position: -1, watermark: 9 })
    expect(t.check(read('a', 9))).toBeNull()
    expect(t.check(read('b', 50))).toMatchObject({ key: 'b', position: -1 })
    t.record(['s'], ['b'], 12)
    t.release(held)
    expect(t.check(read('b', 11))).toMatchObject({ key: 'b', position: 12 })
    t.clear()
    expect(t.size).toBe(0)
    expect(t.check(read('b', -1))).toBeNull()
  })

  it('a held entry records its applied write through the records it holds (proposed without its keys); a key read and written is looked up once', () => {
    const t = new ConflictTable(10)
    t.record(['s'], ['a'], 1)
    const reads = [...read('a', 1), ...read('b', 1)]
    const found: (ConflictRecord | undefined)[] = []
    expect(t.check(reads, found)).toBeNull()
    expect(found[0]).toMatchObject({ key: 'a', last: 1 })
    expect(found[1]).toBeUndefined()
    const bare = { streams: ['s'], data: new Uint8Array(0) }
    const held: ConflictRecord[] = []
    t.holdEntry(entry(['s'], ['a', 'b']), held, bare, reads, found)
    expect(held[0]).toBe(found[0]) // reused, not looked up
    expect(t.check(read('b', 9))).toMatchObject({ key: 'b', position: -1 }) // created, pending
    const op = { kind: 'append' as const, entries: [{ streams: ['s'], data: new Uint8Array(0) }, bare] }
    t.markHeld(op)
    t.recordOp(op, 4) // entry 1 (the held one) at 5
    t.release(held)
    expect(t.check(read('a', 4))).toMatchObject({ key: 'a', position: 5 })
    expect(t.check(read('b', 4))).toMatchObject({ key: 'b', position: 5 })
    // After a clear (the leader stepped down), the same op applied again records nothing from
    // its forgotten records; an entry that carries its keys is recorded by them.
    t.clear()
    t.restart(0)
    t.recordOp(op, 8)
    expect(t.check(read('a', 7))).toBeNull()
    t.recordOp({ kind: 'append', entries: [entry(['s'], ['a'])] }, 9)
    expect(t.check(read('a', 8))).toMatchObject({ key: 'a', position: 9 })
  })

  it('a stream whose last key was forgotten starts a new table that is found again', () => {
    const t = new ConflictTable(1)
    t.record(['s'], ['a'], 1)
    expect(t.check(read('a', 0))).toMatchObject({ key: 'a', position: 1 }) // s's table is the last one looked up
    t.record(['u'], ['b'], 2)
    t.evict() // forgets s/a: s's table is dropped
    t.record(['s'], ['c'], 3)
    t.evict() // forgets u/b
    expect(t.check(read('c', 2))).toMatchObject({ key: 'c', position: 3 })
    expect(t.check(read('b', 1, 'u'))).toMatchObject({ key: 'b', watermark: 2 })
    t.record(['u'], ['d'], 4)
    expect(t.check(read('d', 4, 'u'))).toBeNull() // u's table becomes the last one looked up
    expect(t.check(read('c', 2))).toMatchObject({ key: 'c', position: 3 }) // s/c is still found
  })
})
