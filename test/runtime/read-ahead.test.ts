// StreamReadAhead (object-runtime/read-ahead.ts): pages come in log order, each entry
// exactly once, with at most `depth` requests in flight, whatever the stream's density,
// the server's bounds (answers cut short) and the order in which answers arrive.
import fc from 'fast-check'
import { describe, expect, test } from 'vitest'
import type { LogEntry, ReadRange, ReadResult } from '../../object-runtime/log-client.ts'
import { StreamReadAhead } from '../../object-runtime/read-ahead.ts'

const STREAMS = Object.freeze(['s'])

interface FakeStream {
  /** The stream's positions, ascending. */
  readonly positions: number[]
  /** The log's tail as the server sees it (may grow while reading). */
  tail: number
}

/**
 * A server for one stream: answers at most `cap` entries (its own bound) and, when `cut`
 * says so, fewer (a byte bound), each answer after a random number of event-loop turns.
 */
function fakeServer(stream: FakeStream, options: { cap: number; cut: (n: number) => number; turns: () => number }) {
  let inFlight = 0
  let maxInFlight = 0
  const ranges: ReadRange[] = []
  const read = async (range: ReadRange): Promise<ReadResult> => {
    ranges.push(range)
    inFlight++
    maxInFlight = Math.max(maxInFlight, inFlight)
    try {
      for (let t = options.turns(); t > 0; t--) await new Promise((r) => setImmediate(r))
      const end = Math.min(range.to ?? Infinity, stream.tail)
      const want = Math.min(range.limit ?? 1000, options.cap)
      const entries: LogEntry[] = []
      for (const p of stream.positions) {
        if (p < range.from) continue
        if (p >= end || entries.length >= want) break
        entries.push({ position: p, streams: STREAMS, data: new Uint8Array(0) })
      }
      const keep = entries.length === 0 ? 0 : Math.max(1, Math.min(entries.length, options.cut(entries.length)))
      const bounded = keep < entries.length || (entries.length === want && entries.length > 0)
      const kept = entries.slice(0, keep)
      return { entries: kept, next: bounded ? kept[kept.length - 1]!.position + 1 : Math.max(range.from, end) }
    } finally {
      inFlight--
    }
  }
  return { read, ranges, maxInFlight: () => maxInFlight, inFlight: () => inFlight }
}

/** Reads everything the reader gives; checks that pages are contiguous and in order. */
async function drain(reader: StreamReadAhead, from: number): Promise<{ positions: number[]; end: number; pages: number }> {
  const positions: number[] = []
  let end = from
  let pages = 0
  for (;;) {
    const page = await reader.next()
    if (page === null) break
    pages++
    expect(page.from).toBe(end)
    expect(page.next).toBeGreaterThanOrEqual(page.from)
    for (const e of page.entries) {
      expect(e.position).toBeGreaterThanOrEqual(page.from)
      expect(e.position).toBeLessThan(page.next)
      positions.push(e.position)
    }
    end = page.next
  }
  return { positions, end, pages }
}

/** A log of `length` positions in which the stream holds runs of varying density. */
const streamArb = fc
  .array(fc.record({ length: fc.integer({ min: 1, max: 400 }), density: fc.constantFrom(0, 0.01, 0.2, 0.7, 1) }), { minLength: 1, maxLength: 8 })
  .chain((runs) =>
    fc.infiniteStream(fc.double({ min: 0, max: 1, noNaN: true })).map((coins) => {
      const positions: number[] = []
      let p = 0
      const it = coins[Symbol.iterator]()
      for (const run of runs) {
        for (let i = 0; i < run.length; i++, p++) if (run.density === 1 || it.next().value! < run.density) positions.push(p)
      }
      return { positions, tail: p } as FakeStream
    }),
  )

describe('read-ahead', () => {
  test('every entry of the range exactly once, in order, with at most `depth` requests in flight', async () => {
    await fc.assert(
      fc.asyncProperty(
        streamArb,
        fc.integer({ min: 1, max: 50 }), // limit
        fc.integer({ min: 1, max: 6 }), // depth
        fc.integer({ min: 1, max: 60 }), // server cap
        fc.boolean(), // answers cut short at random (byte bounds)
        fc.boolean(), // open range (to the end of the log) or bounded
        fc.nat(),
        fc.nat(),
        fc.integer({ min: 0, max: 2 ** 31 - 1 }),
        async (stream, limit, depth, cap, cuts, open, fromSeed, toSeed, seed) => {
          const rand = fc.sample(fc.integer({ min: 0, max: 1_000_000 }), { seed, numRuns: 10_000 })
          let k = 0
          const next = (): number => rand[k++ % rand.length]!
          const server = fakeServer(stream, { cap, cut: (n) => (cuts ? 1 + (next() % n) : n), turns: () => next() % 4 })
          const from = fromSeed % (stream.tail + 1)
          const to = open ? undefined : from + (toSeed % (stream.tail - from + 1))
          const reader = new StreamReadAhead(server.read, from, to, { limit, depth })
          const got = await drain(reader, from)
          const end = to ?? stream.tail
          expect(got.end).toBe(end)
          expect(got.positions).toEqual(stream.positions.filter((p) => p >= from && p < end))
          expect(server.maxInFlight()).toBeLessThanOrEqual(depth)
          expect(reader.requests).toBe(server.ranges.length)
          for (const r of server.ranges) expect(r.limit).toBe(limit)
        },
      ),
      { numRuns: 300 },
    )
  })

  test('a dense stream is read with `depth` requests in flight while pages are taken', async () => {
    const stream: FakeStream = { positions: Array.from({ length: 1000 }, (_, i) => i), tail: 1000 }
    const server = fakeServer(stream, { cap: 1000, cut: (n) => n, turns: () => 1 })
    const reader = new StreamReadAhead(server.read, 0, 1000, { limit: 100, depth: 3 })
    const first = await reader.next()
    expect(first!.next).toBe(100)
    // The first read went alone; its answer fills the window: the next pages are already asked for.
    expect(server.inFlight()).toBe(3)
    expect(server.ranges.slice(1).map((r) => [r.from, r.to])).toEqual([
      [100, 200],
      [200, 300],
      [300, 400],
    ])
    const rest = await drain(reader, 100)
    expect(rest.positions).toEqual(stream.positions.slice(100))
    expect(server.ranges.length).toBe(10) // one request per page: no request wasted
    expect(server.maxInFlight()).toBe(3)
  })

  test('an open range ends at the tail as of the read that reached it, also while the log grows', async () => {
    const stream: FakeStream = { positions: Array.from({ length: 500 }, (_, i) => i * 2), tail: 1000 }
    const server = fakeServer(stream, { cap: 1000, cut: (n) => n, turns: () => 1 })
    const reader = new StreamReadAhead(server.read, 0, undefined, { limit: 50, depth: 2 })
    const positions: number[] = []
    let end = 0
    for (let page = await reader.next(); page !== null; page = await reader.next()) {
      for (const e of page.entries) positions.push(e.position)
      end = page.next
      if (stream.tail < 1400) {
        // Appends land while reading.
        for (let p = stream.tail; p < stream.tail + 100; p += 2) stream.positions.push(p)
        stream.tail += 100
      }
    }
    expect(end).toBeGreaterThanOrEqual(1000)
    expect(end).toBeLessThanOrEqual(stream.tail)
    expect(positions).toEqual(stream.positions.filter((p) => p < end))
  })

  test('a server that does not hold the range yet: a page without progress, then the end', async () => {
    const stream: FakeStream = { positions: [0, 1, 2, 3, 4], tail: 5 }
    const server = fakeServer(stream, { cap: 1000, cut: (n) => n, turns: () => 0 })
    const reader = new StreamReadAhead(server.read, 0, 10, { limit: 2, depth: 2 })
    const pages = []
    for (let page = await reader.next(); page !== null; page = await reader.next()) pages.push(page)
    const last = pages[pages.length - 1]!
    expect(last.next).toBe(last.from) // no progress: stopped
    expect(last.from).toBe(5)
    expect(pages.flatMap((p) => p.entries.map((e) => e.position))).toEqual([0, 1, 2, 3, 4])
  })

  test('a failed read surfaces after the pages before it, in order; later answers are dropped', async () => {
    const stream: FakeStream = { positions: Array.from({ length: 100 }, (_, i) => i), tail: 100 }
    const inner = fakeServer(stream, { cap: 1000, cut: (n) => n, turns: () => 1 })
    let calls = 0
    const read = (range: ReadRange): Promise<ReadResult> => (++calls === 3 ? Promise.reject(new Error('boom')) : inner.read(range))
    const reader = new StreamReadAhead(read, 0, 100, { limit: 10, depth: 4 })
    expect((await reader.next())!.next).toBe(10)
    expect((await reader.next())!.next).toBe(20)
    await expect(reader.next()).rejects.toThrow('boom')
    expect(await reader.next()).toBeNull()
  })

  test('bad options are refused', () => {
    const read = (): Promise<ReadResult> => Promise.resolve({ entries: [], next: 0 })
    expect(() => new StreamReadAhead(read, 0, 1, { limit: 0, depth: 1 })).toThrow(RangeError)
    expect(() => new StreamReadAhead(read, 0, 1, { limit: 1, depth: 0 })).toThrow(RangeError)
    expect(() => new StreamReadAhead(read, 0, 1, { limit: 1, depth: 1.5 })).toThrow(RangeError)
  })
})
