// `npm run bench -- checkpoint [--quick]`:
//
// 1. Open time of a QMap with 10,000 live keys whose stream holds H updates, H = 100,000
//    and 1,000,000 (quick: 20,000 and 200,000), followed by 1,000 more updates: without
//    checkpoints (the new client replays everything) and with one (taken after the H
//    updates; the new client loads it and replays the 1,000). The log is an in-process
//    MemoryLog, built by appending encoded ops directly, so the figures are the client's
//    open cost (read + decode + apply / load), not the network's.
//    Each open is a fresh runtime, timed from open() to the answer of size(). Before each
//    one (untimed) a minor GC empties the young generation: otherwise a 4-6 ms scavenge
//    lands in every second or third open whatever the history (measured with
//    --trace-gc), and with ~3 ms opens that noise decided the comparison. With a
//    checkpoint, both histories' logs are built first, each gets a warm-up open, then
//    OPEN_RUNS rounds alternate between them (order flipped every round, so drift hits
//    both alike); the medians and their ratio are reported against the issue's target
//    (within 20%).
// 2. Disk use of a 3-replica cluster (real processes, LevelDB) under a steady update
//    workload (200 keys rewritten with 400-byte values, 32 writers) for
//    CKPT_BENCH_MINUTES (default 10; quick: 0.5), without and with automatic checkpoints
//    (every 1,000 entries): raw size of replica 0's data dir at every tenth of the run,
//    and the size of each replica after a full LevelDB compaction at the end.

import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
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

/** Runs a minor (young-generation) GC, untimed, so every open starts from the same heap state. */
const minorGc: () => void = (() => {
  setFlagsFromString('--expose-gc')
  const gc = runInNewContext('gc') as (options: { type: 'minor' | 'major'; execution: 'sync' }) => void
  return () => gc({ type: 'minor', execution: 'sync' })
})()

const OPEN_RUNS = 7

async function openMs(log: MemoryLog): Promise<{ ms: number; applied: number }> {
  const rt = await connect({ log: new MemoryLogClient(log), closeLog: true })
  minorGc()
  const t0 = performance.now()
  const m = rt.open(QMap<string, number>, 'm')
  const size = await m.size()
  const ms = performance.now() - t0
  if (size !== LIVE_KEYS) throw new Error(`expected ${LIVE_KEYS} keys, got ${size}`)
  const applied = rt.stats.entriesApplied
  await rt.close()
  return { ms, applied }
}

async function checkpointedLog(history: number): Promise<MemoryLog> {
  const log = await buildLog(history)
  const rt = await connect({ log: new MemoryLogClient(log), closeLog: true })
  const m = rt.open(QMap<string, number>, 'm')
  await m.sync()
  const r = await rt.checkpoint(m)
  if (r.outcome !== 'written') throw new Error(`checkpoint: ${r.outcome}`)
  await rt.close()
  await appendTrailing(log, history)
  return log
}

interface OpenRow {
  readonly history: number
  readonly mode: 'without' | 'with'
  applied: number
  readonly runs: number[]
}

function openRow(r: OpenRow): string[] {
  return [fmt(r.history), r.mode === 'with' ? 'checkpoint + replay' : 'replay all', fmt(r.applied), fmt(median(r.runs), 1), r.runs.map((x) => fmt(x, 1)).join(' / ')]
}

async function openTimes(histories: readonly [number, number]): Promise<string> {
  const rows: OpenRow[] = []
  // Without checkpoints, one history at a time (a 1M-entry log is large): warm-up, then OPEN_RUNS.
  for (const history of histories) {
    const log = await buildLog(history)
    await appendTrailing(log, history)
    await openMs(log)
    const row: OpenRow = { history, mode: 'without', applied: 0, runs: [] }
    for (let i = 0; i < OPEN_RUNS; i++) {
      const r = await openMs(log)
      row.runs.push(r.ms)
      row.applied = r.applied
    }
    rows.push(row)
    console.log(openRow(row).join(' | '))
  }
  // With a checkpoint: both logs, a warm-up open on each, then alternating rounds.
  const logs = [await checkpointedLog(histories[0]), await checkpointedLog(histories[1])]
  const withRows: OpenRow[] = histories.map((history) => ({ history, mode: 'with', applied: 0, runs: [] }))
  for (const log of logs) await openMs(log)
  for (let round = 0; round < OPEN_RUNS; round++) {
    for (const i of round % 2 === 0 ? [0, 1] : [1, 0]) {
      const r = await openMs(logs[i]!)
      withRows[i]!.runs.push(r.ms)
      withRows[i]!.applied = r.applied
    }
  }
  for (const row of withRows) console.log(openRow(row).join(' | '))
  const [short, long] = withRows.map((r) => median(r.runs)) as [number, number]
  const ratio = long / short
  const met = Math.max(short, long) / Math.min(short, long) <= 1.2
  const order = [rows[0]!, withRows[0]!, rows[1]!, withRows[1]!]
  const verdict =
    `With a checkpoint, median open time ${fmt(short, 2)} ms at ${fmt(histories[0])} updates vs ${fmt(long, 2)} ms at ${fmt(histories[1])}: ` +
    `ratio ${fmt(ratio, 2)} — the target (within 20% between the two history lengths) is ${met ? 'met' : 'NOT met'}.`
  console.log(verdict)
  return [
    table(['history (updates)', 'open by', 'entries applied', `open ms (median of ${OPEN_RUNS})`, 'runs ms'], order.map(openRow)),
    '',
    `Each open: a fresh runtime, from open() to the answer of size(), after a warm-up open and an untimed minor GC. ` +
      `With a checkpoint the two histories' opens alternate (order flipped every round).`,
    '',
    verdict,
  ].join('\n')
}

interface DiskRun {
  readonly checkpoints: boolean
  /** Wall-clock minutes the workload actually ran. */
  readonly minutes: number
  readonly ops: number
  /** Replica 0's data dir along the run: [minutes since start, bytes]. */
  readonly samples: Array<readonly [number, number]>
  /** Replica 0's data dir after the run (clients closed, 1 s later). */
  readonly rawEnd: number
  /** Each replica's data dir after a full compaction. */
  readonly compacted: number[]
}

const SAMPLES = 10

async function diskRun(minutes: number, checkpoints: boolean): Promise<DiskRun> {
  const c = await ProcessCluster.start(3)
  try {
    await c.waitLeader()
    const rt = await connect({ servers: c.urls, config: { checkpoint: checkpoints ? { everyEntries: 1_000 } : {} } })
    const m = rt.open(QMap<string, string>, 'm')
    const start = Date.now()
    const endAt = start + minutes * 60_000
    const samples: Array<readonly [number, number]> = []
    const sample = (): void => {
      samples.push([(Date.now() - start) / 60_000, dirBytes(c.dirs[0]!)])
    }
    // At every tenth of the run but the last (taken when the workload has stopped).
    const timers = Array.from({ length: SAMPLES - 1 }, (_, k) => setTimeout(sample, ((k + 1) * minutes * 60_000) / SAMPLES))
    let ops = 0
    await Promise.all(
      Array.from({ length: 32 }, async () => {
        while (Date.now() < endAt) {
          const i = ops++
          await m.set(`k${i % 200}`, noise(i, 400))
        }
      }),
    )
    const ranMinutes = (Date.now() - start) / 60_000
    for (const t of timers) clearTimeout(t)
    sample()
    if (checkpoints) await rt.checkpoint(m)
    await rt.close()
    await new Promise((r) => setTimeout(r, 1_000))
    const rawEnd = dirBytes(c.dirs[0]!)
    for (let i = 0; i < c.n; i++) await c.kill(i, 'SIGTERM')
    const compacted = []
    for (const dir of c.dirs) compacted.push(await compactedBytes(dir))
    const run: DiskRun = { checkpoints, minutes: ranMinutes, ops, samples, rawEnd, compacted }
    console.log(JSON.stringify(run))
    return run
  } finally {
    await c.close()
  }
}

const mib = (b: number): string => fmt(b / 2 ** 20, 2)

function diskTables(runs: readonly [DiskRun, DiskRun]): string {
  const summary = table(
    ['automatic checkpoints', 'minutes run', 'updates', 'op data written (MiB)', 'replica 0 at the end (MiB)', 'after full compaction, replicas 0/1/2 (MiB)'],
    runs.map((r) => [
      r.checkpoints ? 'every 1,000 entries' : 'off',
      fmt(r.minutes, 2),
      fmt(r.ops),
      mib(r.ops * 400),
      mib(r.rawEnd),
      r.compacted.map(mib).join(' / '),
    ]),
  )
  const [off, on] = runs
  const n = Math.max(off.samples.length, on.samples.length)
  const rows: string[][] = []
  for (let k = 0; k < n; k++) {
    const a = off.samples[k]
    const b = on.samples[k]
    rows.push([fmt(a?.[0] ?? b?.[0] ?? NaN, 2), a === undefined ? '' : mib(a[1]), b === undefined ? '' : mib(b[1])])
  }
  const series = table(['minutes since start', 'replica 0 LevelDB dir, no checkpoints (MiB)', 'replica 0 LevelDB dir, automatic checkpoints (MiB)'], rows)
  return [summary, '', 'Size of replica 0\'s data dir (raw, as LevelDB leaves it, before any forced compaction) along the run:', '', series].join('\n')
}

export async function benchCheckpoint(args: BenchArgs): Promise<void> {
  const histories: [number, number] = args.quick ? [20_000, 200_000] : [100_000, 1_000_000]
  const minutesEnv = process.env.CKPT_BENCH_MINUTES
  const minutes = minutesEnv !== undefined ? Number(minutesEnv) : args.quick ? 0.5 : 10
  if (!(minutes > 0)) throw new RangeError(`CKPT_BENCH_MINUTES must be a positive number, got ${minutesEnv}`)
  const open = await openTimes(histories)
  const disk = diskTables([await diskRun(minutes, false), await diskRun(minutes, true)])
  console.log(disk)
  writeSection(
    'checkpoint',
    'Checkpoints: open time and disk use',
    [
      `Open time of a QMap with ${fmt(LIVE_KEYS)} live keys, its stream holding H updates then ${fmt(TRAILING)} more (in-process MemoryLog):`,
      '',
      open,
      '',
      `Disk use over a ${fmt(minutes, 1)}-minute steady workload per configuration (3 replicas, LevelDB; 200 keys rewritten with 400-byte values by 32 writers through one client), run without and then with automatic checkpoints:`,
      '',
      disk,
    ].join('\n'),
    `${minutesEnv !== undefined ? `CKPT_BENCH_MINUTES=${minutesEnv} ` : ''}npm run bench -- checkpoint${args.quick ? ' --quick' : ''}`,
  )
}
