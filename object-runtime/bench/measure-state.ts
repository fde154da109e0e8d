// Measures what object-runtime/README.md quotes: per-op apply cost for different state
// shapes, replay throughput, and memory of a 1,000,000-key QMap against a plain JS Map.
//
//   node --expose-gc --import tsx object-runtime/bench/measure-state.ts [--keys 1000000]
//
// Numbers drift ±20% on a shared machine; compare rows of one run.

import { produce, enableMapSet } from 'immer'
import { Map as ImmutableMap } from 'immutable'
import { MemoryLog, MemoryLogClient, connect, decodeRecord, encodeOp, streamOf } from '../index.ts'
import { ObjectCore } from '../object-core.ts'
import type { SequencedOp } from '../object-core.ts'
import { QMap, Queue, SortedMap } from '../../objects/index.ts'

enableMapSet()
const arg = (name: string, dflt: number): number => {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? Number(process.argv[i + 1]) : dflt
}
const N = arg('keys', 1_000_000)
const gc = (globalThis as { gc?: () => void }).gc
const heap = (): number => {
  gc?.()
  gc?.()
  return process.memoryUsage().heapUsed
}
const fmt = (n: number, digits = 2): string => n.toLocaleString('en-US', { maximumFractionDigits: digits })
const rows: string[] = []
const report = (what: string, value: string): void => {
  rows.push(`| ${what} | ${value} |`)
  console.log(`${what}: ${value}`)
}
function time(n: number, f: (i: number) => void): number {
  const t0 = performance.now()
  for (let i = 0; i < n; i++) f(i)
  return ((performance.now() - t0) * 1000) / n // µs per op
}
const keyOf = (i: number): string => `user:${i}`
const setOp = (i: number, v: number): SequencedOp => ({
  position: i,
  ts: 0,
  streams: ['obj/m'],
  record: decodeRecord(encodeOp({ type: 'QMap', version: 1, mutator: 'set', args: [keyOf(i), v] })),
})

// --- 1. State shapes: cost of one op -------------------------------------------------------
{
  const M = 100_000
  let big = { m: new Map<string, number>() }
  for (let i = 0; i < M; i++) big.m.set(keyOf(i), i)
  big = produce(big, () => undefined)
  const us = time(20, (i) => {
    big = produce(big, (d) => {
      d.m.set(keyOf(i), -i)
    })
  })
  report(`immer produce, root { m: JS Map } of ${fmt(M)} keys, set 1 key`, `${fmt(us / 1000)} ms/op`)
}
{
  let root = { m: ImmutableMap<string, number>().withMutations((m) => { for (let i = 0; i < N; i++) m.set(keyOf(i), i) }) }
  const us = time(100_000, (i) => {
    root = produce(root, (d) => {
      d.m = d.m.set(keyOf((i * 7919) % N), i)
    })
  })
  report(`immer produce, small root { m: immutable.Map } of ${fmt(N)} keys, 1 op per produce`, `${fmt(us)} µs/op`)
  let pm = root.m
  const us2 = time(100_000, (i) => {
    pm = pm.set(keyOf((i * 7919) % N), i)
  })
  report(`immutable.Map.set alone, ${fmt(N)} keys`, `${fmt(us2)} µs/op`)
}

// --- 2. Runtime apply path (decode + ObjectCore.applyBatch) on a 1M-key QMap --------------
{
  const core = new ObjectCore(QMap<string, number>() as never, 'm', streamOf('m'), true)
  const build: SequencedOp[] = []
  for (let i = 0; i < N; i++) build.push(setOp(i, i))
  for (let i = 0; i < N; i += 10_000) core.applyBatch(build.slice(i, i + 10_000))
  build.length = 0
  const K = 100_000
  const ops: Uint8Array[] = []
  for (let i = 0; i < K; i++) ops.push(encodeOp({ type: 'QMap', version: 1, mutator: 'set', args: [keyOf((i * 7919) % N), i] }))
  let pos = N
  const one = time(K, (i) => {
    core.applyBatch([{ position: pos++, ts: 0, streams: ['obj/m'], record: decodeRecord(ops[i]!) }])
  })
  report(`QMap (${fmt(N)} keys) local apply, decode + 1-op batch, random existing keys`, `${fmt(one)} µs/op`)
  const batched = time(K / 1000, (b) => {
    const batch: SequencedOp[] = []
    for (let i = 0; i < 1000; i++) batch.push({ position: pos++, ts: 0, streams: ['obj/m'], record: decodeRecord(ops[b * 1000 + i]!) })
    core.applyBatch(batch)
  }) / 1000
  report(`QMap (${fmt(N)} keys) apply in batches of 1,000, random existing keys`, `${fmt(batched)} µs/op`)
  const guardOff = new ObjectCore(QMap<string, number>() as never, 'm2', streamOf('m2'), false)
  const off = time(K, (i) => {
    guardOff.applyBatch([{ position: i, ts: 0, streams: ['obj/m2'], record: decodeRecord(ops[i]!) }])
  })
  report('QMap (small) local apply with the determinism guard off', `${fmt(off)} µs/op`)
}

// --- 3. Other built-ins at scale ------------------------------------------------------------
{
  const core = new ObjectCore(SortedMap<number, number>() as never, 's', streamOf('s'), true)
  const enc = (i: number, k: number): SequencedOp => ({ position: i, ts: 0, streams: ['obj/s'], record: decodeRecord(encodeOp({ type: 'SortedMap', version: 1, mutator: 'set', args: [k, i] })) })
  for (let i = 0; i < N; i += 10_000) {
    const b: SequencedOp[] = []
    for (let j = i; j < i + 10_000; j++) b.push(enc(j, j))
    core.applyBatch(b)
  }
  const K = 50_000
  const ops = Array.from({ length: K }, (_, i) => encodeOp({ type: 'SortedMap', version: 1, mutator: 'set', args: [(i * 7919) % N, i] }))
  let pos = N
  const one = time(K, (i) => core.applyBatch([{ position: pos++, ts: 0, streams: ['obj/s'], record: decodeRecord(ops[i]!) }]))
  report(`SortedMap (${fmt(N)} keys) local apply, decode + 1-op batch`, `${fmt(one)} µs/op`)
}
{
  const core = new ObjectCore(Queue<number>() as never, 'q', streamOf('q'), true)
  const enq = encodeOp({ type: 'Queue', version: 1, mutator: 'enqueue', args: [1] })
  const deq = encodeOp({ type: 'Queue', version: 1, mutator: 'dequeue', args: [] })
  for (let i = 0; i < N; i += 10_000) {
    const b: SequencedOp[] = []
    for (let j = i; j < i + 10_000; j++) b.push({ position: j, ts: 0, streams: ['obj/q'], record: decodeRecord(enq) })
    core.applyBatch(b)
  }
  let pos = N
  const one = time(100_000, (i) => core.applyBatch([{ position: pos++, ts: 0, streams: ['obj/q'], record: decodeRecord(i % 2 === 0 ? deq : enq) }]))
  report(`Queue (${fmt(N)} items) local apply, alternating dequeue/enqueue`, `${fmt(one)} µs/op`)
}

// --- 4. Replay through a runtime: a fresh process catches up on N sets ----------------------
{
  const log = new MemoryLog()
  const stream = streamOf('users')
  for (let i = 0; i < N; i += 1000) {
    const entries = []
    for (let j = i; j < Math.min(N, i + 1000); j++) entries.push({ streams: [stream], data: encodeOp({ type: 'QMap', version: 1, mutator: 'set', args: [keyOf(j), j] }) })
    log.append(entries)
  }
  for (const label of ['inserts (map grows to N keys)', 'updates of random existing keys']) {
    if (label.startsWith('updates')) {
      for (let i = 0; i < N; i += 1000) {
        const entries = []
        for (let j = i; j < Math.min(N, i + 1000); j++) entries.push({ streams: [stream], data: encodeOp({ type: 'QMap', version: 1, mutator: 'set', args: [keyOf((j * 7919) % N), j] }) })
        log.append(entries)
      }
    }
    const rt = await connect({ log: new MemoryLogClient(log), closeLog: true })
    const t0 = performance.now()
    const users = rt.open(QMap<string, number>, 'users')
    await users.sync()
    const s = (performance.now() - t0) / 1000
    const entries = users.version + 1 - (label.startsWith('updates') ? 0 : 0)
    report(`replay of ${fmt(entries)} entries (${label}), open → synced`, `${fmt(entries / s, 0)} entries/s (${fmt(s, 2)} s, ${fmt(await users.size(), 0)} keys)`)
    await rt.close()
  }
}

// --- 5. Memory: the state of a 1M-key QMap vs a plain JS Map --------------------------------
{
  const base = heap()
  let js: Map<string, number> | null = new Map()
  for (let i = 0; i < N; i++) js.set(keyOf(i), i)
  const jsBytes = heap() - base
  js = null
  const base2 = heap()
  let core: ObjectCore | null = new ObjectCore(QMap<string, number>() as never, 'm', streamOf('m'), true)
  for (let i = 0; i < N; i += 10_000) {
    const b: SequencedOp[] = []
    for (let j = i; j < Math.min(N, i + 10_000); j++) b.push(setOp(j, j))
    core.applyBatch(b)
  }
  const qBytes = heap() - base2
  report(`memory, plain JS Map of ${fmt(N)} string keys → ints`, `${fmt(jsBytes / 1048576, 1)} MiB (${fmt(jsBytes / N, 0)} B/key)`)
  report(`memory, QMap state of ${fmt(N)} keys (immutable.Map built by replay)`, `${fmt(qBytes / 1048576, 1)} MiB (${fmt(qBytes / N, 0)} B/key), ${fmt(qBytes / jsBytes, 2)}× the JS Map`)
  if (core.version < 0) console.log('unreachable')
  core = null
}

console.log(`\n| what | measured |\n|---|---|\n${rows.join('\n')}`)
if (gc === undefined) console.log('(run with node --expose-gc for the memory figures)')
