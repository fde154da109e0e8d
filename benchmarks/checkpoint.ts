// `npm run bench -- checkpoint [--quick]`:
//
// 1. Open time of a QMap with 10,000 live keys whose stream holds H updates, H = 100,000
//    and 1,000,000 (quick: 20,000 and 200,000), followed by 1,000 more updates: without
//    checkpoints (the new client replays everything) and with one (taken after the H
//    updates; the new client loads it and replays the 1,000). The log is an in-process
//    MemoryLog, built by appending encoded ops directly, so the figures are the client's
//    open cost (read + decode + apply / load), not the network's.
// 2. Disk use of a 3-replica cluster (real processes, LevelDB) under a steady update
//    workload (200 keys rewritten with 400-byte values, 32 writers) for
//    CKPT_BENCH_MINUTES (default 10; quick: 0.5), without and with automatic checkpoints (every 1,000
//    entries): raw size of each data dir sampled along the way, and the size after a full
//    LevelDB compaction at the end.

import { MemoryLog, MemoryLogClient, connect, encodeOp, streamOf } from '../object-runtime/index.ts'
import { QMap } from '../objects/index.ts'
import { ProcessCluster } from '../test/cluster/harness.ts'
import { compactedBytes, dirBytes, noise } from '../test/checkpoint/disk-size.ts'
import { fmt, median, table, writeSection, type BenchArgs } from './lib/report.ts'

const LIVE_KEYS = 10_000
const TRAILING = 1_000

async function buildLog(history: number): Promise<MemoryLog> {
  const log = new MemoryLog()
  const client = new MemoryLogClient(log)
  const stream = streamOf('m')
  const batch = 1_000
  for (let i = 0; i < history; i += batch) {
    const entries = []
    for (let j = i; j < Math.min(history, i + batch); j++) {
      entries.push({ streams: [stream], data: encodeOp({ type: 'QMap', version: 1, mutator: 'set', args: [`key-${j % LIVE_KEYS}`, j] }) })
    }
    await client.append(entries)
  }
  await client.close()
  return log
}

async function appendTrailing(log: MemoryLog, from: number): Promise<void> {
  const client = new MemoryLogClient(log)
  const entries = []
  for (let j = 0; j < TRAILING; j++) entries.push({ streams: [streamOf('m')], data: encodeOp({ type: 'QMap', version: 1, mutator: 'set', args: [`key-${j}`, from + j] }) })
  await client.append(entries)
  await client.close()
}

async function openMs(log: MemoryLog): Promise<{ ms: number; applied: number }> {
  const rt = await connect({ log: new MemoryLogClient(log), closeLog: true })
  const t0 = performance.now()
  const m = rt.open(QMap<string, number>, 'm')
  const size = await m.size()
  const ms = performance.now() - t0
  if (size !== LIVE_KEYS) throw new Error(`expected ${LIVE_KEYS} keys, got ${size}`)
  const applied = rt.stats.entriesApplied
  await rt.close()
  return { ms, applied }
}

async function openTimes(histories: readonly number[]): Promise<string> {
  const rows: string[][] = []
  const withMs: number[] = []
  for (const h of histories) {
    for (const mode of ['without', 'with'] as const) {
      const log = await buildLog(h)
      if (mode === 'with') {
        const rt = await connect({ log: new MemoryLogClient(log), closeLog: true })
        const m = rt.open(QMap<string, number>, 'm')
        await m.sync()
        const r = await rt.checkpoint(m)
        if (r.outcome !== 'written') throw new Error(`checkpoint: ${r.outcome}`)
        await rt.close()
      }
      await appendTrailing(log, h)
      // One warm-up open (JIT, first-touch allocations), then 5 measured ones.
      await openMs(log)
      const runs = []
      let applied = 0
      for (let i = 0; i < 5; i++) {
        const r = await openMs(log)
        runs.push(r.ms)
        applied = r.applied
      }
      const ms = median(runs)
      if (mode === 'with') withMs.push(ms)
      rows.push([fmt(h), mode === 'with' ? 'checkpoint + replay' : 'replay all', fmt(applied), fmt(ms, 1), runs.map((x) => fmt(x, 0)).join(' / ')])
      console.log(rows[rows.length - 1]!.join(' | '))
    }
  }
  const ratio = withMs.length === 2 ? withMs[1]! / withMs[0]! : NaN
  return [
    table(['history (updates)', 'open by', 'entries applied', 'open ms (median of 5, after 1 warm-up)', 'runs ms'], rows),
    '',
    `With checkpoints, open time at ${fmt(histories[1]!)} vs ${fmt(histories[0]!)} updates: ×${fmt(ratio, 2)} (target: within 20%).`,
  ].join('\n')
}

async function diskRun(minutes: number, checkpoints: boolean): Promise<string[]> {
  const c = await ProcessCluster.start(3)
  try {
    await c.waitLeader()
    const rt = await connect({ servers: c.urls, config: { checkpoint: checkpoints ? { everyEntries: 1_000 } : {} } })
    const m = rt.open(QMap<string, string>, 'm')
    const endAt = Date.now() + minutes * 60_000
    const samples: number[] = []
    let ops = 0
    const sampler = setInterval(() => samples.push(dirBytes(c.dirs[0]!)), (minutes * 60_000) / 5)
    await Promise.all(
      Array.from({ length: 32 }, async () => {
        while (Date.now() < endAt) {
          const i = ops++
          await m.set(`k${i % 200}`, noise(i, 400))
        }
      }),
    )
    clearInterval(sampler)
    if (checkpoints) await rt.checkpoint(m)
    await rt.close()
    await new Promise((r) => setTimeout(r, 1_000))
    const raw = dirBytes(c.dirs[0]!)
    for (let i = 0; i < c.n; i++) await c.kill(i, 'SIGTERM')
    const compacted = []
    for (const dir of c.dirs) compacted.push(await compactedBytes(dir))
    const mib = (b: number): string => fmt(b / 2 ** 20, 2)
    return [
      checkpoints ? 'every 1,000 entries' : 'off',
      fmt(ops),
      mib(ops * 400),
      samples.map(mib).join(' → ') + ` → ${mib(raw)}`,
      compacted.map(mib).join(' / '),
    ]
  } finally {
    await c.close()
  }
}

export async function benchCheckpoint(args: BenchArgs): Promise<void> {
  const histories = args.quick ? [20_000, 200_000] : [100_000, 1_000_000]
  const minutesEnv = process.env.CKPT_BENCH_MINUTES
  const minutes = minutesEnv !== undefined ? Number(minutesEnv) : args.quick ? 0.5 : 10
  const open = await openTimes(histories)
  const rows = [await diskRun(minutes, false), await diskRun(minutes, true)]
  for (const r of rows) console.log(r.join(' | '))
  const disk = table(['automatic checkpoints', 'updates', 'op data written (MiB)', 'replica 0 raw size along the run (MiB)', 'after full compaction, replicas 0/1/2 (MiB)'], rows)
  writeSection(
    'checkpoint',
    'Checkpoints: open time and disk use',
    [
      `Open time of a QMap with ${fmt(LIVE_KEYS)} live keys, its stream holding H updates then ${fmt(TRAILING)} more (in-process MemoryLog):`,
      '',
      open,
      '',
      `Disk use over a ${minutes}-minute steady workload (3 replicas, LevelDB; 200 keys rewritten with 400-byte values by 32 writers):`,
      '',
      disk,
    ].join('\n'),
    `${minutesEnv !== undefined ? `CKPT_BENCH_MINUTES=${minutesEnv} ` : ''}npm run bench -- checkpoint${args.quick ? ' --quick' : ''}`,
  )
}
