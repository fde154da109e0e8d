// `quipu replica`: one replica process. Config from flags/environment, validated;
// SIGTERM/SIGINT stop it gracefully (stop accepting, finish in-flight work, close LevelDB).
import { startReplicaServer } from '../server-main.ts'
import { validateReplicaConfig, type ReplicaConfigInput } from '../replica-config.ts'

export async function runReplica(o: Record<string, unknown>): Promise<void> {
  const peers = String(o.peers)
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
  const num = (k: string): number | undefined => (o[k] === undefined ? undefined : Number(o[k]))
  const core: NonNullable<ReplicaConfigInput['core']> = {}
  const setCore = (k: keyof NonNullable<ReplicaConfigInput['core']>, flag: string): void => {
    const v = num(flag)
    if (v !== undefined) (core as Record<string, number>)[k] = v
  }
  setCore('electionTimeoutTicks', 'electionTicks')
  setCore('heartbeatTicks', 'heartbeatTicks')
  setCore('batchEntriesMax', 'batchEntries')
  setCore('batchBytesMax', 'batchBytes')
  setCore('inflightSlotsMax', 'inflightSlots')
  setCore('queueOpsMax', 'queueOps')
  const config = validateReplicaConfig({
    id: Number(o.id),
    peers,
    listen: typeof o.listen === 'string' ? o.listen : undefined,
    dataDir: String(o.data),
    peerPortOffset: num('peerPortOffset'),
    cluster: typeof o.cluster === 'string' ? o.cluster : undefined,
    tickMs: num('tickMs'),
    core,
    bodyLimitBytes: num('bodyLimit'),
    entryBytesMax: num('entryLimit'),
    sync: o.sync !== false,
    debug: o.debug === true,
  })
  const running = await startReplicaServer(config)
  let stopping = false
  const stop = (signal: string): void => {
    if (stopping) return
    stopping = true
    console.log(`replica ${config.id}: ${signal}: stopping`)
    running.stop().then(
      () => {
        console.log(`replica ${config.id}: stopped`)
        process.exit(0)
      },
      (e: unknown) => {
        console.error(`replica ${config.id}: error while stopping: ${String(e)}`)
        process.exit(1)
      },
    )
  }
  process.on('SIGTERM', () => stop('SIGTERM'))
  process.on('SIGINT', () => stop('SIGINT'))
}
