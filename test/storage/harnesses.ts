// Harnesses for the LogStore conformance suite, one per implementation.

import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { LevelLogStore, type LevelLogStoreOptions } from '../../log-server/storage/level-log-store.ts'
import type { LogStore } from '../../log-server/storage/log-store.ts'
import { MemoryDisk, MemoryLogStore } from '../../log-server/storage/memory-log-store.ts'
import type { LogStoreOptions } from '../../log-server/storage/options.ts'
import type { LogStoreHarness } from './conformance.ts'

export function memoryHarness(): LogStoreHarness {
  const open: MemoryLogStore[] = []
  return {
    async create(options?: Partial<LogStoreOptions>) {
      const s = new MemoryLogStore(new MemoryDisk(), options)
      await s.open()
      open.push(s)
      return s
    },
    async reopen(store: LogStore) {
      const old = store as MemoryLogStore
      await old.close()
      const s = new MemoryLogStore(old.disk, old.options)
      await s.open()
      open.push(s)
      return s
    },
    async cleanup() {
      for (const s of open.splice(0)) await s.close()
    },
  }
}

/** A temp dir per store, removed by cleanup(). */
export function tempDir(prefix = 'quipu-storage-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix))
}

export function levelHarness(defaults: Partial<LevelLogStoreOptions> = {}): LogStoreHarness {
  const open: LevelLogStore[] = []
  const dirs: string[] = []
  return {
    async create(options?: Partial<LogStoreOptions>) {
      const dir = tempDir()
      dirs.push(dir)
      // Tests do not need fsync unless they ask for it; the suite's semantics do not depend on it.
      const s = new LevelLogStore(dir, { sync: false, ...defaults, ...options })
      await s.open()
      open.push(s)
      return s
    },
    async reopen(store: LogStore) {
      const old = store as LevelLogStore
      await old.close()
      const s = new LevelLogStore(old.location, old.options)
      await s.open()
      open.push(s)
      return s
    },
    async cleanup() {
      for (const s of open.splice(0)) await s.close()
      for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true })
    },
  }
}
