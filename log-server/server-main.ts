// Start one replica for real: LevelDB store, TCP peer transport, HTTP API.
import { mkdirSync } from 'node:fs'
import { buildServer } from './api/server.ts'
import { Replica } from './replica.ts'
import { urlOf, type ReplicaConfig } from './replica-config.ts'
import { LevelLogStore } from './storage/level-log-store.ts'
import { TcpTransport } from './transport/tcp-transport.ts'

export interface RunningReplica {
  readonly replica: Replica
  readonly url: string
  stop(): Promise<void>
}

export async function startReplicaServer(config: ReplicaConfig, log: (line: string) => void = (l) => console.log(l)): Promise<RunningReplica> {
  mkdirSync(config.dataDir, { recursive: true })
  // Catch-up read from disk stays well below the transport's 64 MiB frame limit.
  const store = new LevelLogStore(config.dataDir, { sync: config.sync, chosenRangeBytesMax: config.core.catchupBytesMax })
  const transport = new TcpTransport({
    id: config.id,
    cluster: config.cluster,
    listen: { host: config.listen.host, port: config.listen.port + config.peerPortOffset },
    peers: config.peers.map((p, id) => ({ id, host: p.host, port: p.port + config.peerPortOffset })),
    logger: {
      info: (f, m) => log(`transport: ${m} ${JSON.stringify(f)}`),
      warn: (f, m) => log(`transport: WARN ${m} ${JSON.stringify(f)}`),
    },
  })
  const replica = new Replica({ config, store, transport, log })
  await replica.start()
  const app = buildServer({ replica, limits: { bodyBytesMax: config.bodyLimitBytes, entryBytesMax: config.entryBytesMax }, logger: false })
  await app.listen({ host: config.listen.host, port: config.listen.port })
  const url = urlOf(config.listen)
  log(`replica ${config.id}: serving ${url} (peers on port ${config.listen.port + config.peerPortOffset})`)
  return {
    replica,
    url,
    async stop() {
      // Stop accepting, let in-flight requests finish, then stop the replica.
      await app.close()
      await replica.stop()
    },
  }
}
