// MemoryLog's conditional-append check follows the leader's: a bounded table of last
// writes, eviction raises the watermark, a "leader change" forgets everything
// (watermark = last position), exactly-once dedupe before the check.
import { describe, expect, test } from 'vitest'
import { MemoryLog, isLogError } from '../../object-runtime/index.ts'

const d = new Uint8Array([1])

describe('MemoryLog conflict table', () => {
  test('eviction: a forgotten key conflicts when read below the watermark (conservative), never a wrong commit', () => {
    const log = new MemoryLog({ conflictKeysMax: 2 })
    log.append([{ streams: ['s'], data: d, keys: ['a'] }]) // 0
    log.append([{ streams: ['s'], data: d, keys: ['b'] }]) // 1
    log.append([{ streams: ['s'], data: d, keys: ['c'] }]) // 2: evicts a (position 0)
    expect(log.conflictWatermark).toBe(0)
    // a was written at 0; a read at version 0 is valid, but a is forgotten and 0 is not below the watermark: commits.
    log.append([{ streams: ['s'], data: d }], undefined, { reads: [{ stream: 's', key: 'a', version: 0 }] })
    // a read of a never-written key at version -1 (< watermark 0): conservative conflict.
    let caught: unknown
    try {
      log.append([{ streams: ['s'], data: d }], undefined, { reads: [{ stream: 's', key: 'zzz', version: -1 }] })
    } catch (err) {
      caught = err
    }
    expect(isLogError(caught, 'conflict')).toBe(true)
    expect((caught as { conflict: unknown }).conflict).toEqual({ stream: 's', key: 'zzz', version: -1, position: -1, watermark: 0 })
    expect(log.length).toBe(4)
  })

  test('leader change: watermark = last position; reads at the tail still commit', () => {
    const log = new MemoryLog()
    log.append([{ streams: ['s'], data: d, keys: ['a'] }])
    log.append([{ streams: ['s'], data: d, keys: ['b'] }])
    log.simulateLeaderChange()
    expect(log.conflictWatermark).toBe(1)
    expect(() => log.append([{ streams: ['s'], data: d }], undefined, { reads: [{ stream: 's', key: 'a', version: 0 }] })).toThrow(/not remembered/)
    expect(log.append([{ streams: ['s'], data: d }], undefined, { reads: [{ stream: 's', key: 'a', version: 1 }] })).toEqual([2])
  })

  test('exactly-once comes before the check: a retried commit answers its original positions', () => {
    const log = new MemoryLog()
    const id = { clientId: 'c', seq: 1 }
    const first = log.append([{ streams: ['s'], data: d, keys: ['a'] }], id, { reads: [{ stream: 's', key: 'a', version: -1 }] })
    log.append([{ streams: ['s'], data: d, keys: ['a'] }])
    expect(log.append([{ streams: ['s'], data: d, keys: ['a'] }], id, { reads: [{ stream: 's', key: 'a', version: -1 }] })).toEqual(first)
    expect(log.length).toBe(2)
  })
})
