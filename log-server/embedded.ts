// A single-node log inside the calling process, over LevelDB: for trying quipu and for
// tests, with no ports and no other process. It is the same replica (core, store,
// driver) as a cluster member, with nobody to talk to; it tolerates no failure.
import { mkdirSync } from 'node:fs'
import type { Message } from './paxos/types.ts'
import { Replica, type PeerLink } from './replica.ts'
import { validateReplicaConfig } from './replica-config.ts'
import { LevelLogStore } from './storage/level-log-store.ts'

class NoPeers implements PeerLink {
  async start(): Promise<void> {}
  send(_msg: Message): void {}
  onMessage(_handler: (msg: Message) => void): void {}
  connected(_peer: number): boolean {
    return false
  }
  async close(): Promise<void> {}
}

export interface EmbeddedLogOptions {
  /** LevelDB directory (created if missing). */
  readonly dir: string
  /** fsync each write (default true). */
  readonly sync?: boolean
  /** Core tick in ms (default 5: a single node elects itself within a few ticks). */
  readonly tickMs?: number
}

/** Opens (or creates) an embedded log and waits until it accepts appends. */
export async function openEmbeddedLog(opts: EmbeddedLogOptions): Promise<Replica> {
  mkdirSync(opts.dir, { recursive: true })
  const config = validateReplicaConfig({
    id: 0,
    peers: ['127.0.0.1:1'],
    dataDir: opts.dir,
    tickMs: opts.tickMs ?? 5,
    core: { electionTimeoutTicks: 2, heartbeatTicks: 1 },
    sync: opts.sync ?? true,
  })
  const replica = new Replica({ config, store: new LevelLogStore(opts.dir, { sync: config.sync }), transport: new NoPeers(), log: () => undefined })
  await replica.start()
  const deadline = Date.now() + 5_000
  while (replica.status().role !== 'leader') {
    if (Date.now() > deadline) {
      await replica.stop()
      throw new Error(`embedded log in ${opts.dir} did not start`)
    }
    await new Promise((r) => setTimeout(r, 2))
  }
  return replica
}
