// Disk: under a steady update workload with automatic checkpoints, the replicas' LevelDB
// size stays bounded (measured after a full compaction). A 3-replica cluster of real
// processes; the workload rewrites 200 keys of a QMap again and again. After phase 1 (N
// updates) and again after phase 2 (2N more), every replica is stopped, compacted and
// measured, then restarted; a new client opens the map (from its checkpoint) each time.
// CKPT_DISK_OPS sets N (default 4,000; figures at larger N: benchmarks/RESULTS.md).

import { afterAll, expect, test } from 'vitest'
import { connect } from '../../object-runtime/index.ts'
import { QMap } from '../../objects/index.ts'
import { ProcessCluster } from '../cluster/harness.ts'
import { compactedBytes, noise } from './disk-size.ts'

const N = Number(process.env.CKPT_DISK_OPS ?? 4_000)
const KEYS = 200
const VALUE_BYTES = 400

let cluster: ProcessCluster | null = null
afterAll(async () => {
  await cluster?.close()
})

async function workload(servers: readonly string[], ops: number, from: number): Promise<string> {
  const rt = await connect({ servers, config: { checkpoint: { everyEntries: 1_000 } } })
  const m = rt.open(QMap<string, string>, 'm')
  let next = from
  const end = from + ops
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      while (next < end) {
        const i = next++
        await m.set(`k${i % KEYS}`, noise(i, VALUE_BYTES))
      }
    }),
  )
  // End on a checkpoint, so that both measurements see the same shape of log.
  const r = await rt.checkpoint(m)
  expect(r.outcome).toBe('written')
  const hash = m.stateHash()
  await rt.close()
  return hash
}

async function measure(c: ProcessCluster): Promise<number[]> {
  await new Promise((r) => setTimeout(r, 500)) // let the replicas finish reclaiming after the last trims
  for (let i = 0; i < c.n; i++) await c.kill(i, 'SIGTERM')
  const sizes = []
  for (const dir of c.dirs) sizes.push(await compactedBytes(dir))
  for (let i = 0; i < c.n; i++) c.spawn(i)
  await Promise.all(c.urls.map((_, i) => c.waitServing(i)))
  await c.waitLeader()
  return sizes
}

async function reopenHash(servers: readonly string[]): Promise<{ hash: string; applied: number; size: number }> {
  const rt = await connect({ servers })
  const m = rt.open(QMap<string, string>, 'm')
  const size = await m.size()
  const out = { hash: m.stateHash(), applied: rt.stats.entriesApplied, size }
  await rt.close()
  return out
}

test(`steady updates with automatic checkpoints: LevelDB size stays bounded (N=${N})`, { timeout: 120_000 }, async () => {
  const c = (cluster = await ProcessCluster.start(3))
  await c.waitLeader()
  const h1 = await workload(c.urls, N, 0)
  const first = await measure(c)
  const r1 = await reopenHash(c.urls)
  expect(r1.hash).toBe(h1)
  expect(r1.size).toBe(KEYS)
  expect(r1.applied).toBe(0) // opened from the checkpoint alone

  const h2 = await workload(c.urls, 2 * N, N)
  const second = await measure(c)
  const r2 = await reopenHash(c.urls)
  expect(r2.hash).toBe(h2)

  const written = 3 * N * VALUE_BYTES
  console.log(`disk after ${N} updates: ${first.join(', ')} B; after ${3 * N}: ${second.join(', ')} B (op data written: ${written} B per replica)`)
  for (let i = 0; i < c.n; i++) {
    // Three times the history, not three times the disk: bounded by the live state plus
    // what stays between checkpoints (and LevelDB's fixed costs).
    expect(second[i]!).toBeLessThan(first[i]! * 1.5 + 256 * 1024)
    expect(second[i]!).toBeLessThan(written / 2)
  }
})
