import { describe, expect, test } from 'vitest'
import { LOG_ERROR_CODES, MemoryLog, MemoryLogClient, isLogError } from '../../object-runtime/index.ts'
import type { LogClient } from '../../object-runtime/index.ts'
import { logClientConformance } from './log-client-conformance.ts'

logClientConformance('MemoryLogClient', async () => {
  const log = new MemoryLog()
  const clients: LogClient[] = []
  return {
    newClient: async () => {
      const c = new MemoryLogClient(log)
      clients.push(c)
      return c
    },
    close: async () => {
      for (const c of clients) await c.close()
    },
  }
})

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s)

describe('MemoryLogClient batching', () => {
  test('concurrent appends issued in one turn share one log append', async () => {
    const log = new MemoryLog()
    const c = new MemoryLogClient(log)
    const positions = await Promise.all(Array.from({ length: 100 }, (_, i) => c.append([{ streams: ['s'], data: bytes(String(i)) }])))
    expect(positions.flat()).toEqual(Array.from({ length: 100 }, (_, i) => i))
    expect(c.calls.appendRequests).toBe(1)
    expect(c.batchStats.batches).toBe(1)
    // One slot: one timestamp for all of them.
    const all = log.read({ from: 0 })
    expect(new Set(all.entries.map((e) => e.ts)).size).toBe(1)
  })

  test('batches are bounded by entry count and bytes', async () => {
    const log = new MemoryLog()
    const byCount = new MemoryLogClient(log, { batching: { batchEntriesMax: 10 } })
    await Promise.all(Array.from({ length: 35 }, () => byCount.append([{ streams: ['s'], data: bytes('x') }])))
    expect(byCount.batchStats.batches).toBe(4)
    const byBytes = new MemoryLogClient(log, { batching: { batchBytesMax: 1000 } })
    await Promise.all(Array.from({ length: 10 }, () => byBytes.append([{ streams: ['s'], data: new Uint8Array(300) }])))
    expect(byBytes.batchStats.batches).toBeGreaterThanOrEqual(4)
    expect(log.length).toBe(45)
  })

  test('the entries of one call stay contiguous', async () => {
    const log = new MemoryLog()
    const c = new MemoryLogClient(log, { batching: { batchEntriesMax: 4 } })
    const results = await Promise.all(Array.from({ length: 5 }, (_, i) => c.append([{ streams: ['a'], data: bytes(`${i}.0`) }, { streams: ['a'], data: bytes(`${i}.1`) }, { streams: ['a'], data: bytes(`${i}.2`) }])))
    for (const ps of results) expect(ps).toEqual([ps[0]!, ps[0]! + 1, ps[0]! + 2])
  })

  test('a linger gathers appends made across turns', async () => {
    const log = new MemoryLog()
    const c = new MemoryLogClient(log, { batching: { lingerMs: 20 } })
    const first = c.append([{ streams: ['a'], data: bytes('1') }])
    await new Promise((resolve) => setImmediate(resolve))
    const second = c.append([{ streams: ['a'], data: bytes('2') }])
    expect(await Promise.all([first, second])).toEqual([[0], [1]])
    expect(c.calls.appendRequests).toBe(1)
  })

  test('the in-flight window bounds outstanding batches; calls gather behind it', async () => {
    const log = new MemoryLog()
    const c = new MemoryLogClient(log, { latencyMs: 5, batching: { inFlightBatchesMax: 1 } })
    const first = c.append([{ streams: ['a'], data: bytes('1') }])
    await new Promise((resolve) => setTimeout(resolve, 1))
    const rest = Array.from({ length: 20 }, () => c.append([{ streams: ['a'], data: bytes('x') }]))
    await Promise.all([first, ...rest])
    expect(c.batchStats.batches).toBe(2)
  })

  test('config validation rejects nonsense with the field name', () => {
    const log = new MemoryLog()
    expect(() => new MemoryLogClient(log, { batching: { batchEntriesMax: 0 } })).toThrow(/batchEntriesMax/)
    expect(() => new MemoryLogClient(log, { batching: { lingerMs: -1 } })).toThrow(/lingerMs/)
    expect(() => new MemoryLog({ readLimitMax: 0 })).toThrow(/readLimitMax/)
  })
})

describe('MemoryLogClient exactly-once', () => {
  test('an append whose answer was lost is retried with the same seq and stored once', async () => {
    const log = new MemoryLog()
    const c = new MemoryLogClient(log, { batching: { retryBackoffMs: 1 } })
    log.injectAppendFaults(2, 'lose-ack')
    expect(await c.append([{ streams: ['a'], data: bytes('once') }])).toEqual([0])
    expect(log.length).toBe(1)
    expect(c.calls.appendRequests).toBe(3)
    expect(await c.append([{ streams: ['a'], data: bytes('next') }])).toEqual([1])
  })

  test('an append that failed before being stored is retried and stored once', async () => {
    const log = new MemoryLog()
    const c = new MemoryLogClient(log, { batching: { retryBackoffMs: 1 } })
    log.injectAppendFaults(1, 'fail-before')
    expect(await c.append([{ streams: ['a'], data: bytes('x') }])).toEqual([0])
    expect(log.length).toBe(1)
  })

  test('when retries run out the caller gets unavailable', async () => {
    const log = new MemoryLog()
    const c = new MemoryLogClient(log, { batching: { retryBackoffMs: 1, retryAttemptsMax: 2 } })
    log.injectAppendFaults(2, 'fail-before')
    let caught: unknown
    await c.append([{ streams: ['a'], data: bytes('x') }]).catch((err: unknown) => {
      caught = err
    })
    expect(isLogError(caught, 'unavailable')).toBe(true)
    expect(log.length).toBe(0)
  })

  test('a replayed request id answers the original positions', () => {
    const log = new MemoryLog()
    const id = { clientId: 'c1', seq: 1 }
    expect(log.append([{ streams: ['a'], data: bytes('x') }], id)).toEqual([0])
    expect(log.append([{ streams: ['a'], data: bytes('x') }], id)).toEqual([0])
    expect(log.length).toBe(1)
  })
})

describe('MemoryLog', () => {
  test('log time comes from the injected clock and never goes backwards', () => {
    let now = 1000
    const log = new MemoryLog({ clock: () => now })
    log.append([{ streams: ['a'], data: bytes('1') }])
    now = 500
    log.append([{ streams: ['a'], data: bytes('2') }])
    now = 2000
    log.append([{ streams: ['a'], data: bytes('3') }])
    expect(log.read({ from: 0 }).entries.map((e) => e.ts)).toEqual([1000, 1000, 2000])
  })

  test('every log error code is documented', () => {
    const codes = ['trimmed', 'unavailable', 'too_large', 'bad_request', 'not_found', 'closed', 'conflict']
    for (const code of codes) expect(LOG_ERROR_CODES).toHaveProperty(code)
    expect(Object.keys(LOG_ERROR_CODES).sort()).toEqual(codes.sort())
  })
})
