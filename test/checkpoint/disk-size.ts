// Disk use of a replica's data dir, measured after a full LevelDB compaction (the replica
// must be stopped: LevelDB allows one opener). Shared by the disk test and the benchmark.

import { readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { ClassicLevel } from 'classic-level'

/** Bytes of every file under `dir`. */
export function dirBytes(dir: string): number {
  let total = 0
  for (const name of readdirSync(dir)) {
    const p = join(dir, name)
    const st = statSync(p)
    total += st.isDirectory() ? dirBytes(p) : st.size
  }
  return total
}

/** Compacts the whole key space of the LevelDB at `dir` (not open elsewhere), then measures it. */
export async function compactedBytes(dir: string): Promise<number> {
  const db = new ClassicLevel<Uint8Array, Uint8Array>(dir, { keyEncoding: 'view', valueEncoding: 'view' })
  await db.open()
  await db.compactRange(new Uint8Array([0]), new Uint8Array(64).fill(0xff))
  await db.close()
  return dirBytes(dir)
}

/** A deterministic pseudo-random string (incompressible enough that LevelDB's snappy does not hide growth). */
export function noise(seed: number, length: number): string {
  let x = seed * 2654435761 + 1
  let s = ''
  for (let i = 0; i < length; i++) {
    x = (x ^ (x << 13)) >>> 0
    x = (x ^ (x >>> 17)) >>> 0
    x = (x ^ (x << 5)) >>> 0
    s += String.fromCharCode(33 + (x % 90))
  }
  return s
}
