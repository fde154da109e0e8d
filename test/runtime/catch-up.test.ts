// Catching up on a long history with read-ahead (runtime.ts catchUpPending / fetchUpTo,
// read-ahead.ts): every entry applied once, in log order, across page boundaries; the
// read window stays within readAheadPages; the subscription does not push the history
// the reads are fetching.
import { describe, expect, test } from 'vitest'
import { MemoryLog, MemoryLogClient, connect, currentEntry, defineObject, encodeOp, streamOf, validateRuntimeConfig } from '../../object-runtime/index.ts'
import type { LogClient, ReadRange, ReadResult, Subscription } from '../../object-runtime/index.ts'
import { tick } from './helpers.ts'

/** Sums what it is given and checks that positions only grow (an entry applied twice or out of order shows). */
const Tally = defineObject({
  name: 'Tally',
  initial: () => ({ count: 0, sum: 0, last: -1, disorder: 0 }),
  mutators: {
    add(state, v: number) {
      const p = currentEntry().position
      if (p <= state.last) state.disorder++
      state.last = p
      state.count++
      state.sum += v
    },
  },
  accessors: {
    get(state) {
      return { count: state.count, sum: state.sum, disorder: state.disorder }
    },
  },
})

const op = (v: number): Uint8Array => encodeOp({ type: 'Tally', version: 1, mutator: 'add', args: [v] })

/** A client that answers reads a little later (so that they overlap), counts them in flight, and records subscriptions. */
class Watched implements LogClient {
  inFlight = 0
  maxInFlight = 0
  readonly subscribedFrom: number[] = []
  /** When set, subscriptions never push (a subscription that fell behind). */
  mute = false
  constructor(readonly inner: LogClient) {}
  append: LogClient['append'] = (e, o) => this.inner.append(e, o)
  read: LogClient['read'] = (r) => this.inner.read(r)
  tail: LogClient['tail'] = (s) => this.inner.tail(s)
  trim: LogClient['trim'] = (s, b) => this.inner.trim(s, b)
  close: LogClient['close'] = () => this.inner.close()
  async readStream(stream: string, range: ReadRange): Promise<ReadResult> {
    this.inFlight++
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight)
    try {
      await new Promise((r) => setTimeout(r, 1))
      return await this.inner.readStream(stream, range)
    } finally {
      this.inFlight--
    }
  }
  subscribe: LogClient['subscribe'] = (streams, from, onEntries, onError): Subscription => {
    this.subscribedFrom.push(from)
    return this.inner.subscribe(streams, from, (entries, next) => (this.mute ? undefined : onEntries(entries, next)), onError)
  }
}

/** Appends `n` ops (values 0..n-1) in batches; entry i goes to the streams `streamsOf(i)` names. */
function fill(log: MemoryLog, n: number, streamsOf: (i: number) => string[]): void {
  for (let i = 0; i < n; i += 500) {
    const batch = []
    for (let j = i; j < Math.min(n, i + 500); j++) batch.push({ streams: streamsOf(j), data: op(j) })
    log.append(batch)
  }
}

const sumTo = (n: number, keep: (i: number) => boolean = () => true): number => {
  let s = 0
  for (let i = 0; i < n; i++) if (keep(i)) s += i
  return s
}

describe('catch-up with read-ahead', () => {
  test('a fresh runtime replays a long history once, in order, within the window, and subscribes at the end', async () => {
    const log = new MemoryLog()
    const n = 12_345
    // The object's entries, and others' in between (a sparser stretch in the middle).
    fill(log, n, (i) => [i % 7 === 3 || (i > 4000 && i < 6000 && i % 50 !== 0) ? streamOf('noise') : streamOf('t')])
    const mine = (i: number): boolean => !(i % 7 === 3 || (i > 4000 && i < 6000 && i % 50 !== 0))
    const client = new Watched(new MemoryLogClient(log))
    const rt = await connect({ log: client, closeLog: true, config: { readEntriesMax: 500, readAheadPages: 3 } })
    const t = rt.open(Tally, 't')
    const count = [...Array(n).keys()].filter(mine).length
    expect(await t.get()).toEqual({ count, sum: sumTo(n, mine), disorder: 0 })
    expect(rt.stats.entriesApplied).toBe(count)
    expect(client.maxInFlight).toBeGreaterThan(1) // pages overlapped
    expect(client.maxInFlight).toBeLessThanOrEqual(3)
    // The history came by reads: the subscription opened at the end of the log, not at 0.
    expect(client.subscribedFrom).toEqual([n])
    expect(rt.synced).toBe(n)
    await rt.close()
  })

  test('readAheadPages 1 reads one page at a time', async () => {
    const log = new MemoryLog()
    fill(log, 3000, () => [streamOf('t')])
    const client = new Watched(new MemoryLogClient(log))
    const rt = await connect({ log: client, closeLog: true, config: { readEntriesMax: 200, readAheadPages: 1 } })
    expect((await rt.open(Tally, 't').get()).sum).toBe(sumTo(3000))
    expect(client.maxInFlight).toBe(1)
    expect(rt.stats.reads).toBeGreaterThanOrEqual(15)
    await rt.close()
  })

  test('joined objects far behind catch up by reads: each entry once per object, in order, multi-stream entries included', async () => {
    const log = new MemoryLog()
    const client = new Watched(new MemoryLogClient(log))
    const rt = await connect({ log: client, closeLog: true, config: { readEntriesMax: 300, readAheadPages: 4, followGraceMs: 1 } })
    const [a, b] = [rt.open(Tally, 'a'), rt.open(Tally, 'b')]
    expect(await a.get()).toEqual({ count: 0, sum: 0, disorder: 0 })
    expect(await b.get()).toEqual({ count: 0, sum: 0, disorder: 0 })
    const subscriptionsBefore = client.subscribedFrom.length
    // The subscription stops pushing; meanwhile a long history lands on both streams.
    client.mute = true
    const n = 9_000
    const streamsOf = (i: number): string[] => (i % 5 === 0 ? [streamOf('a'), streamOf('b')] : i % 3 === 0 ? [streamOf('b')] : i % 3 === 1 ? [streamOf('a')] : [streamOf('c')])
    const onA = (i: number): boolean => streamsOf(i).includes(streamOf('a'))
    const onB = (i: number): boolean => streamsOf(i).includes(streamOf('b'))
    const start = log.length
    fill(log, n, streamsOf)
    const count = (keep: (i: number) => boolean): number => [...Array(n).keys()].filter(keep).length
    const shifted = (keep: (i: number) => boolean): number => sumTo(n, keep) // values are 0..n-1 whatever the positions
    expect(await a.get()).toEqual({ count: count(onA), sum: shifted(onA), disorder: 0 })
    expect(await b.get()).toEqual({ count: count(onB), sum: shifted(onB), disorder: 0 })
    expect(a.version).toBe(start + Math.max(...[...Array(n).keys()].filter(onA))) // at its last entry
    expect(client.maxInFlight).toBeGreaterThan(1)
    expect(client.maxInFlight).toBeLessThanOrEqual(4) // the window is shared by the two streams
    const readUpTo = rt.synced
    expect(readUpTo).toBeGreaterThanOrEqual(start + n - 1)
    // The muted subscription was closed for the long catch-up and opened again where the reads ended.
    client.mute = false
    await tick(5)
    expect(client.subscribedFrom.length).toBeGreaterThan(subscriptionsBefore)
    expect(client.subscribedFrom[client.subscribedFrom.length - 1]).toBe(readUpTo)
    await a.add(1_000_000)
    expect((await b.get()).count).toBe(count(onB))
    expect((await a.get()).sum).toBe(shifted(onA) + 1_000_000)
    await rt.close()
  })

  test('a short sync fallback over several objects reads their streams at once, one request each', async () => {
    const log = new MemoryLog()
    const client = new Watched(new MemoryLogClient(log))
    const rt = await connect({ log: client, closeLog: true, config: { followGraceMs: 1 } })
    const names = ['a', 'b', 'c', 'd']
    const objects = names.map((n) => rt.open(Tally, n))
    for (const o of objects) expect((await o.get()).count).toBe(0)
    client.mute = true
    fill(log, 40, (i) => [streamOf(names[i % 4]!)])
    client.maxInFlight = 0
    const readsBefore = rt.stats.reads
    await rt.sync()
    expect(rt.stats.reads - readsBefore).toBe(4)
    expect(client.maxInFlight).toBe(4)
    for (const [k, o] of objects.entries()) expect((await o.get({ consistency: 'cached' })).sum).toBe(sumTo(40, (i) => i % 4 === k))
    await rt.close()
  })

  test('readAheadPages is validated', () => {
    expect(validateRuntimeConfig().readAheadPages).toBe(3)
    for (const bad of [0, -1, 1.5, 65, Number.NaN]) expect(() => validateRuntimeConfig({ readAheadPages: bad })).toThrow(/readAheadPages/)
    expect(validateRuntimeConfig({ readAheadPages: 64 }).readAheadPages).toBe(64)
  })
})
