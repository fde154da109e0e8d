// Measures what object-runtime/README.md quotes: per-op apply cost for different state
// shapes, replay throughput through a runtime, and the memory of a 1,000,000-key QMap
// against a plain JS Map. Each section runs in its own child process (so one section's
// garbage does not bill another).
//
//   node --expose-gc --import tsx object-runtime/bench/measure-state.ts [--keys 1000000] [--section NAME]
//
// Numbers drift ±20% on a shared machine; compare rows of one run.

import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { produce, enableMapSet } from 'immer'
import { Map as ImmutableMap } from 'immutable'
import { MemoryLog, MemoryLogClient, PMap, connect, decodeRecord, encodeOp, streamOf } from '../index.ts'
import { LogError } from '../index.ts'
import type { AppendEntry, EntriesListener, LogClient, LogEntry, ReadRange, ReadResult, Subscription, TailResult } from '../index.ts'
import { ObjectCore } from '../object-core.ts'
import type { DecodedRecord } from '../op-codec.ts'
import { QMap, Queue, SortedMap } from '../../objects/index.ts'

enableMapSet()
const arg = (name: string): string | undefined => {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? process.argv[i + 1] : undefined
}
const N = Number(arg('keys') ?? 1_000_000)
const gc = (globalThis as { gc?: () => void }).gc
const heap = (): number => {
  gc?.()
  gc?.()
  return process.memoryUsage().heapUsed
}
const fmt = (n: number, digits = 2): string => n.toLocaleString('en-US', { maximumFractionDigits: digits })
const report = (what: string, value: string): void => console.log(`| ${what} | ${value} |`)
/**
 * µs per op. The machine is shared, so wall time is inflated when others run: both wall
 * and this process's CPU time (all its threads, GC helpers included) are kept, and the
 * report shows the CPU figure with the wall figure next to it.
 */
let lastWallUs = 0
function time(n: number, f: (i: number) => void): number {
  const c0 = process.cpuUsage()
  const t0 = performance.now()
  for (let i = 0; i < n; i++) f(i)
  lastWallUs = ((performance.now() - t0) * 1000) / n
  const c = process.cpuUsage(c0)
  return (c.user + c.system) / n
}
const wall = (): string => `wall ${fmt(lastWallUs)}`
const keyOf = (i: number): string => `user:${i}`
/** Decodes and applies entries (data at positions from `position` on) as one batch, as playback does. */
function apply(core: ObjectCore, position: number, datas: readonly Uint8Array[]): void {
  const entries: LogEntry[] = []
  const records: DecodedRecord[] = []
  for (let i = 0; i < datas.length; i++) {
    entries.push({ position: position + i, streams: [core.stream], data: datas[i]!, ts: 0 })
    records.push(decodeRecord(datas[i]!))
  }
  core.applyBatch(entries, records)
}

/** Builds an object core holding `n` entries through the normal apply path. */
function buildCore(def: object, name: string, n: number, encode: (i: number) => Uint8Array): ObjectCore {
  const core = new ObjectCore(def as never, name, streamOf(name), true)
  for (let i = 0; i < n; i += 10_000) {
    const batch: Uint8Array[] = []
    for (let j = i; j < Math.min(n, i + 10_000); j++) batch.push(encode(j))
    apply(core, i, batch)
  }
  // Sealed, so that what follows measures the state as readers leave it (a PMap working
  // copy that starts empty holds its entries aside until it is sealed).
  core.snapshot()
  return core
}

/**
 * A read-only log of one stream whose entries are packed in one buffer and turned into
 * LogEntry objects page by page, as a network client decoding responses would: it keeps
 * the log's own storage off the client's heap, so the replay figure is the client's.
 */
class PackedLog implements LogClient {
  private readonly streams: readonly string[]
  constructor(
    private readonly stream: string,
    private readonly bytes: Uint8Array,
    private readonly offsets: Uint32Array,
  ) {
    this.streams = Object.freeze([stream])
  }
  get length(): number {
    return this.offsets.length - 1
  }
  private page(from: number, to: number): LogEntry[] {
    const out: LogEntry[] = []
    for (let p = from; p < to; p++) out.push({ position: p, streams: this.streams, data: this.bytes.subarray(this.offsets[p]!, this.offsets[p + 1]!), ts: 0 })
    return out
  }
  async append(): Promise<number[]> {
    throw new LogError('bad_request', 'read-only')
  }
  async read(range: ReadRange): Promise<ReadResult> {
    return this.readStream(this.stream, range)
  }
  async readStream(_stream: string, range: ReadRange): Promise<ReadResult> {
    const to = Math.min(range.to ?? this.length, this.length, range.from + (range.limit ?? 10_000))
    return { entries: this.page(range.from, to), next: Math.max(to, range.from) }
  }
  async tail(streams: readonly string[] = []): Promise<TailResult> {
    return { tail: this.length, streams: Object.fromEntries(streams.map((s) => [s, s === this.stream ? this.length - 1 : -1])) }
  }
  async trim(): Promise<{ trimmedBefore: number }> {
    throw new LogError('bad_request', 'read-only')
  }
  subscribe(_streams: readonly string[], from: number, onEntries: EntriesListener): Subscription {
    let closed = false
    let at = from
    const push = (): void => {
      if (closed || at >= this.length) return
      const to = Math.min(at + 4096, this.length)
      const entries = this.page(at, to)
      at = to
      onEntries(entries, to)
      setImmediate(push)
    }
    setImmediate(push)
    return { close: () => void (closed = true) }
  }
  async close(): Promise<void> {}
}

function packedLog(stream: string, datas: Uint8Array[]): PackedLog {
  const offsets = new Uint32Array(datas.length + 1)
  let total = 0
  for (let i = 0; i < datas.length; i++) {
    offsets[i] = total
    total += datas[i]!.length
  }
  offsets[datas.length] = total
  const bytes = new Uint8Array(total)
  for (let i = 0; i < datas.length; i++) bytes.set(datas[i]!, offsets[i]!)
  return new PackedLog(stream, bytes, offsets)
}

const sections: Record<string, () => Promise<void> | void> = {
  shapes() {
    const M = 100_000
    let big = { m: new Map<string, number>() }
    for (let i = 0; i < M; i++) big.m.set(keyOf(i), i)
    big = produce(big, () => undefined)
    const ms = time(20, (i) => {
      big = produce(big, (d) => {
        d.m.set(keyOf(i), -i)
      })
    }) / 1000
    report(`immer produce over { m: JS Map } of ${fmt(M)} keys, set 1 key`, `${fmt(ms)} ms/op CPU (${wall()} µs)`)
    let root = { m: ImmutableMap<string, number>().withMutations((m) => { for (let i = 0; i < N; i++) m.set(keyOf(i), i) }) }
    heap()
    const small = time(100_000, (i) => {
      root = produce(root, (d) => {
        d.m = d.m.set(keyOf((i * 7919) % N), i)
      })
    })
    report(`immer produce over a small root { m: immutable.Map of ${fmt(N)} }, 1 op per produce`, `${fmt(small)} µs/op CPU (${wall()})`)
    let pm = root.m
    const alone = time(100_000, (i) => {
      pm = pm.set(keyOf((i * 7919) % N), -i - 1) // a new value: setting the same one is a no-op
    })
    report(`immutable.Map.set alone (${fmt(N)} keys, random existing keys)`, `${fmt(alone)} µs/op CPU (${wall()})`)
    let pmap = PMap.from(Array.from({ length: N }, (_, i) => [keyOf(i), i] as const))
    heap()
    const palone = time(100_000, (i) => {
      pmap = pmap.set(keyOf((i * 7919) % N), i)
    })
    report(`PMap.set alone, persistent (${fmt(N)} keys, random existing keys)`, `${fmt(palone)} µs/op CPU (${wall()})`)
    let ptrans = pmap.asMutable()
    const ptransient = time(100_000, (i) => {
      ptrans = ptrans.set(keyOf((i * 7919) % N), -i)
    })
    report(`PMap.set alone, transient (${fmt(N)} keys, random existing keys)`, `${fmt(ptransient)} µs/op CPU (${wall()})`)
  },

  apply() {
    const enc = (k: number, v: number): Uint8Array => encodeOp({ type: 'QMap', version: 1, mutator: 'set', args: [keyOf(k), v] })
    const core = buildCore(QMap<string, number>(), 'm', N, (i) => enc(i, i))
    const K = 100_000
    const datas = Array.from({ length: K }, (_, i) => enc((i * 7919) % N, i))
    heap()
    let pos = N
    const unobserved = time(K, (i) => apply(core, pos++, [datas[i]!]))
    report(`QMap of ${fmt(N)} keys: local apply (decode + 1-op batch), random existing keys, no reader in between`, `${fmt(unobserved)} µs/op CPU (${wall()})`)
    const observed = time(K, (i) => {
      apply(core, pos++, [datas[i]!])
      core.snapshot() // a reader between ops: each op then copies its path
    })
    report(`QMap of ${fmt(N)} keys: local apply, a reader takes a snapshot after every op`, `${fmt(observed)} µs/op CPU (${wall()})`)
    const batched = time(K / 1000, (b) => {
      apply(core, pos, datas.slice(b * 1000, b * 1000 + 1000))
      pos += 1000
      core.snapshot()
    }) / 1000
    lastWallUs /= 1000
    report(`QMap of ${fmt(N)} keys: batches of 1,000, snapshot after each batch`, `${fmt(batched)} µs/op CPU (${wall()})`)

    const sm = buildCore(SortedMap<number, number>(), 's', N, (i) => encodeOp({ type: 'SortedMap', version: 1, mutator: 'set', args: [i, i] }))
    const sdatas = Array.from({ length: K }, (_, i) => encodeOp({ type: 'SortedMap', version: 1, mutator: 'set', args: [(i * 7919) % N, i] }))
    heap()
    let spos = N
    const sortedOne = time(K, (i) => {
      apply(sm, spos++, [sdatas[i]!])
      sm.snapshot()
    })
    report(`SortedMap of ${fmt(N)} keys: local apply, snapshot after every op`, `${fmt(sortedOne)} µs/op CPU (${wall()})`)

    const enq = encodeOp({ type: 'Queue', version: 1, mutator: 'enqueue', args: [1] })
    const deq = encodeOp({ type: 'Queue', version: 1, mutator: 'dequeue', args: [] })
    const q = buildCore(Queue<number>(), 'q', N, () => enq)
    heap()
    let qpos = N
    const queueOne = time(K, (i) => {
      apply(q, qpos++, [i % 2 === 0 ? deq : enq])
      q.snapshot()
    })
    report(`Queue of ${fmt(N)} items: local apply, alternating dequeue/enqueue, snapshot after every op`, `${fmt(queueOne)} µs/op CPU (${wall()})`)
  },

  async replay() {
    const stream = streamOf('users')
    const enc = (k: number, v: number): Uint8Array => encodeOp({ type: 'QMap', version: 1, mutator: 'set', args: [keyOf(k), v] })
    const inserts = Array.from({ length: N }, (_, j) => enc(j, j))
    const updates = Array.from({ length: N }, (_, j) => enc((j * 7919) % N, j))
    const cases: Array<[string, LogClient]> = [
      ['N inserts: the map grows to N keys', packedLog(stream, inserts)],
      ['N inserts, then N updates of random existing keys', packedLog(stream, [...inserts, ...updates])],
    ]
    // For comparison: the same history in an in-process MemoryLog, whose own storage
    // (an object and a buffer per entry) shares the heap and the garbage collector.
    const memory = new MemoryLog()
    for (let i = 0; i < N; i += 1000) memory.append(inserts.slice(i, i + 1000).map((data): AppendEntry => ({ streams: [stream], data })))
    inserts.length = 0
    updates.length = 0
    cases.push(['N inserts, from an in-process MemoryLog', new MemoryLogClient(memory)])
    for (const [label, client] of cases) {
      heap()
      const rt = await connect({ log: client, closeLog: true })
      const c0 = process.cpuUsage()
      const t0 = performance.now()
      const users = rt.open(QMap<string, number>, 'users')
      await users.sync()
      const s = (performance.now() - t0) / 1000
      const c = process.cpuUsage(c0)
      const cpu = (c.user + c.system) / 1e6
      const entries = users.version + 1
      report(
        `replay (decode + apply) through a runtime, ${fmt(entries)} entries, ${label}`,
        `${fmt(entries / cpu, 0)} entries/CPU-s (wall: ${fmt(entries / s, 0)} entries/s, ${fmt(s)} s; ${fmt(await users.size())} keys)`,
      )
      await rt.close()
    }
  },

  memory() {
    const base = heap()
    let js: Map<string, number> | null = new Map()
    for (let i = 0; i < N; i++) js.set(keyOf(i), i)
    const jsBytes = heap() - base
    if (js.size !== N) throw new Error('unreachable')
    js = null
    const base2 = heap()
    let core: ObjectCore | null = buildCore(QMap<string, number>(), 'm', N, (i) => encodeOp({ type: 'QMap', version: 1, mutator: 'set', args: [keyOf(i), i] }))
    core.snapshot()
    const qBytes = heap() - base2
    report(`memory: plain JS Map, ${fmt(N)} string keys → ints`, `${fmt(jsBytes / 1048576, 1)} MiB (${fmt(jsBytes / N, 0)} B/key)`)
    report(`memory: QMap state, ${fmt(N)} keys (a PMap built by the apply path)`, `${fmt(qBytes / 1048576, 1)} MiB (${fmt(qBytes / N, 0)} B/key) = ${fmt(qBytes / jsBytes, 2)}× the JS Map`)
    if (core.version !== N - 1) throw new Error('unreachable')
    core = null
  },
}

const only = arg('section')
if (only !== undefined) {
  const run = sections[only]
  if (run === undefined) throw new Error(`no section ${only}; one of ${Object.keys(sections).join(', ')}`)
  if (gc === undefined) console.error('(run with node --expose-gc for stable figures)')
  await run()
} else {
  console.log(`| what (${fmt(N)} keys, ${process.version}) | measured |\n|---|---|`)
  const self = fileURLToPath(import.meta.url)
  for (const name of Object.keys(sections)) {
    const child = spawnSync(process.execPath, [...process.execArgv, self, '--keys', String(N), '--section', name], { stdio: ['ignore', 'inherit', 'inherit'] })
    if (child.status !== 0) process.exitCode = 1
  }
}
