// Appends through the HTTP log client to 3 replica processes with LevelDB and fsync,
// as in production. Closed-loop clients: each loop appends one 100-byte entry and
// waits for its position before the next. Loops share HttpLogClients (one per 16
// loops, at most 16), whose batchers gather concurrent appends into one request.
import { HttpLogClient } from '../object-runtime/http-log-client.ts'
import { ProcessCluster } from '../test/cluster/harness.ts'
import { fmt, median, percentile, table, writeSection, type BenchArgs } from './lib/report.ts'

export interface LoadResult {
  readonly opsPerSec: number
  readonly p50Ms: number
  readonly p99Ms: number
  readonly maxMs: number
}

/** Runs `concurrency` closed loops of `op` for `seconds`; latencies in ms. */
export async function closedLoop(concurrency: number, seconds: number, op: (loop: number, i: number) => Promise<unknown>): Promise<LoadResult> {
  const lat: number[] = []
  const start = performance.now()
  const end = start + seconds * 1000
  let done = 0
  await Promise.all(
    Array.from({ length: concurrency }, async (_, loop) => {
      for (let i = 0; performance.now() < end; i++) {
        const t0 = performance.now()
        await op(loop, i)
        lat.push(performance.now() - t0)
        done++
      }
    }),
  )
  const elapsed = (performance.now() - start) / 1000
  lat.sort((a, b) => a - b)
  return { opsPerSec: done / elapsed, p50Ms: percentile(lat, 50), p99Ms: percentile(lat, 99), maxMs: lat[lat.length - 1] ?? NaN }
}

export async function benchAppend(args: BenchArgs): Promise<void> {
  const levels = [1, 16, 64, 256]
  const runs = 3
  const seconds = args.quick ? 2 : 8
  const cluster = await ProcessCluster.start(3)
  const rows: string[][] = []
  try {
    await cluster.waitLeader()
    const data = new Uint8Array(100).fill(120)
    for (const c of levels) {
      const results: LoadResult[] = []
      for (let r = 0; r < runs; r++) {
        const nClients = Math.min(16, Math.ceil(c / 16))
        const clients = Array.from({ length: nClients }, () => new HttpLogClient({ servers: cluster.urls }))
        await Promise.all(clients.map((cl) => cl.append([{ streams: ['warm'], data }])))
        results.push(await closedLoop(c, seconds, (loop) => clients[loop % nClients]!.append([{ streams: [`s${loop % 16}`], data }])))
        await Promise.all(clients.map((cl) => cl.close()))
      }
      const row = [
        String(c),
        fmt(median(results.map((x) => x.opsPerSec))),
        fmt(median(results.map((x) => x.p50Ms)), 2),
        fmt(median(results.map((x) => x.p99Ms)), 2),
        fmt(median(results.map((x) => x.maxMs)), 1),
        results.map((x) => fmt(x.opsPerSec)).join(' / '),
      ]
      rows.push(row)
      console.log(`append: concurrency ${c}: ${row[1]} appends/s, p50 ${row[2]} ms, p99 ${row[3]} ms`)
    }
  } finally {
    await cluster.close()
  }
  const t = table(['concurrency', 'appends/s', 'p50 ms', 'p99 ms', 'max ms', 'runs (appends/s)'], rows)
  console.log('\n' + t + '\n')
  writeSection(
    'append',
    'Appends to a 3-replica cluster (`npm run bench -- append`)',
    [
      `Three replica processes on this machine with LevelDB and fsync (\`sync: true\`, as in production), 100-byte entries, closed-loop clients through the HTTP log client (one client per 16 loops, at most 16; each client batches its loops' concurrent appends into one request). ${runs} runs of ${seconds} s per level; medians. The load generator shares the 2 cores with the replicas.`,
      '',
      t,
      '',
      'Targets (issue 3): >= 50,000 acknowledged appends/s at high concurrency; p50 <= 5 ms at concurrency 1.',
    ].join('\n'),
    `npm run bench -- append${args.quick ? ' --quick' : ''}`,
  )
}
