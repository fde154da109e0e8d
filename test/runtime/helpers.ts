// Shared test plumbing: several runtimes (standing for processes) on one MemoryLog.

import { MemoryLog, MemoryLogClient, connect } from '../../object-runtime/index.ts'
import type { LogClient, MemoryLogClientOptions, MemoryLogOptions, Runtime, RuntimeConfig } from '../../object-runtime/index.ts'

export interface Cluster {
  readonly log: MemoryLog
  readonly clients: MemoryLogClient[]
  readonly runtimes: Runtime[]
  /** Another runtime on the same log (a process that starts later). */
  add(options?: { client?: MemoryLogClientOptions; wrap?: (c: MemoryLogClient) => LogClient }): Promise<Runtime>
  close(): Promise<void>
}

export async function cluster(
  n: number,
  options: { log?: MemoryLogOptions; client?: MemoryLogClientOptions; config?: Partial<RuntimeConfig> } = {},
): Promise<Cluster> {
  const log = new MemoryLog(options.log)
  const clients: MemoryLogClient[] = []
  const runtimes: Runtime[] = []
  const add: Cluster['add'] = async (extra = {}) => {
    const client = new MemoryLogClient(log, { ...options.client, ...extra.client })
    clients.push(client)
    const rt = await connect({ log: extra.wrap ? extra.wrap(client) : client, closeLog: true, config: options.config })
    runtimes.push(rt)
    return rt
  }
  for (let i = 0; i < n; i++) await add()
  return {
    log,
    clients,
    runtimes,
    add,
    close: async () => {
      for (const rt of runtimes) await rt.close()
    },
  }
}

/** Settles what is already scheduled (microtasks and one macrotask turn). */
export function tick(ms = 0): Promise<void> {
  return new Promise((resolve) => (ms === 0 ? setImmediate(resolve) : setTimeout(resolve, ms)))
}

/** The error a promise rejects with (fails the test if it resolves). */
export async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise
  } catch (err) {
    return err
  }
  throw new Error('expected the promise to reject')
}
