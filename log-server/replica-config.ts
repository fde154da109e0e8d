// A replica's configuration: from flags and environment, validated at start with
// messages that name the field. Defaults are documented in docs/operations.md.

import { validateCoreConfig, type CoreConfig } from './paxos/config.ts'

export interface HostPort {
  readonly host: string
  readonly port: number
}

export interface ReplicaConfig {
  /** This replica's id: its index in `peers`. */
  readonly id: number
  /** Every replica's HTTP address, in id order (this one included). */
  readonly peers: readonly HostPort[]
  /** Where this replica's HTTP API listens (default: peers[id]). */
  readonly listen: HostPort
  /** Peer (replica-to-replica) TCP port = HTTP port + this offset. */
  readonly peerPortOffset: number
  readonly dataDir: string
  /** Replicas of different clusters refuse to talk to each other. */
  readonly cluster: string
  /** One core tick, in ms. Election timeout = electionTimeoutTicks..2x ticks. */
  readonly tickMs: number
  readonly core: Omit<CoreConfig, 'id' | 'replicas'>
  /** HTTP request body limit in bytes. */
  readonly bodyLimitBytes: number
  /** Largest single entry in bytes. */
  readonly entryBytesMax: number
  /** LevelDB fsync on every durable write (turn off only for throwaway benchmarks). */
  readonly sync: boolean
  /** Log peer and core debug lines. */
  readonly debug: boolean
}

export class ReplicaConfigError extends Error {
  readonly code = 'bad_config'
}

export function parseHostPort(s: string, what: string): HostPort {
  const m = /^(?:https?:\/\/)?(\[[^\]]+\]|[^:/]+):(\d{1,5})\/?$/.exec(s.trim())
  if (m === null) throw new ReplicaConfigError(`${what}: expected HOST:PORT, got "${s}"`)
  const port = Number(m[2])
  if (port < 1 || port > 65535) throw new ReplicaConfigError(`${what}: port ${port} out of range 1..65535`)
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port }
}

export function urlOf(hp: HostPort): string {
  const host = hp.host.includes(':') ? `[${hp.host}]` : hp.host
  return `http://${host}:${hp.port}`
}

export const REPLICA_DEFAULTS = Object.freeze({
  peerPortOffset: 1000,
  cluster: 'quipu',
  tickMs: 20,
  electionTimeoutTicks: 15,
  heartbeatTicks: 3,
  bodyLimitBytes: 4 << 20,
  entryBytesMax: 1 << 20,
  sync: true,
})

export interface ReplicaConfigInput {
  id: number
  peers: readonly (string | HostPort)[]
  listen?: string | HostPort
  dataDir: string
  peerPortOffset?: number
  cluster?: string
  tickMs?: number
  core?: Partial<Omit<CoreConfig, 'id' | 'replicas'>>
  bodyLimitBytes?: number
  entryBytesMax?: number
  sync?: boolean
  debug?: boolean
}

export function validateReplicaConfig(input: ReplicaConfigInput): ReplicaConfig {
  const peers = input.peers.map((p, i) => (typeof p === 'string' ? parseHostPort(p, `peers[${i}]`) : p))
  if (peers.length !== 1 && peers.length !== 3 && peers.length !== 5) {
    throw new ReplicaConfigError(`peers: a cluster has 3 or 5 replicas (or 1 for a single-node dev log), got ${peers.length}`)
  }
  if (!Number.isSafeInteger(input.id) || input.id < 0 || input.id >= peers.length) {
    throw new ReplicaConfigError(`id must be an integer in [0, ${peers.length - 1}] (its index in peers), got ${String(input.id)}`)
  }
  const seen = new Set<string>()
  for (const p of peers) {
    const k = `${p.host}:${p.port}`
    if (seen.has(k)) throw new ReplicaConfigError(`peers: ${k} is listed twice`)
    seen.add(k)
  }
  const listen = input.listen === undefined ? peers[input.id]! : typeof input.listen === 'string' ? parseHostPort(input.listen, 'listen') : input.listen
  const peerPortOffset = input.peerPortOffset ?? REPLICA_DEFAULTS.peerPortOffset
  if (!Number.isSafeInteger(peerPortOffset) || peerPortOffset === 0) throw new ReplicaConfigError('peerPortOffset must be a non-zero integer')
  for (const p of [...peers, listen]) {
    const pp = p.port + peerPortOffset
    if (pp < 1 || pp > 65535) throw new ReplicaConfigError(`peer port ${pp} (port ${p.port} + offset ${peerPortOffset}) out of range`)
  }
  if (typeof input.dataDir !== 'string' || input.dataDir.length === 0) throw new ReplicaConfigError('dataDir is required')
  const cluster = input.cluster ?? REPLICA_DEFAULTS.cluster
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(cluster)) throw new ReplicaConfigError(`cluster name must be 1-64 of [A-Za-z0-9._-], got "${cluster}"`)
  const tickMs = input.tickMs ?? REPLICA_DEFAULTS.tickMs
  if (!Number.isSafeInteger(tickMs) || tickMs < 1 || tickMs > 10_000) throw new ReplicaConfigError(`tickMs must be an integer in 1..10000, got ${String(tickMs)}`)
  const entryBytesMax = input.entryBytesMax ?? REPLICA_DEFAULTS.entryBytesMax
  const bodyLimitBytes = input.bodyLimitBytes ?? REPLICA_DEFAULTS.bodyLimitBytes
  for (const [k, v] of [['entryBytesMax', entryBytesMax], ['bodyLimitBytes', bodyLimitBytes]] as const) {
    if (!Number.isSafeInteger(v) || v < 1) throw new ReplicaConfigError(`${k} must be a positive integer, got ${String(v)}`)
  }
  if (entryBytesMax > bodyLimitBytes) throw new ReplicaConfigError(`entryBytesMax (${entryBytesMax}) must not exceed bodyLimitBytes (${bodyLimitBytes})`)
  let core: CoreConfig
  try {
    core = validateCoreConfig({
      earlyAccepts: true,
      electionTimeoutTicks: REPLICA_DEFAULTS.electionTimeoutTicks,
      heartbeatTicks: REPLICA_DEFAULTS.heartbeatTicks,
      batchBytesMax: Math.max(bodyLimitBytes, 1 << 20),
      ...input.core,
      entryBytesMax,
      id: input.id,
      replicas: peers.length,
    })
  } catch (e) {
    throw new ReplicaConfigError(`core: ${(e as Error).message}`)
  }
  const { id: _id, replicas: _n, ...coreRest } = core
  return {
    id: input.id,
    peers,
    listen,
    peerPortOffset,
    dataDir: input.dataDir,
    cluster,
    tickMs,
    core: coreRest,
    bodyLimitBytes,
    entryBytesMax,
    sync: input.sync ?? REPLICA_DEFAULTS.sync,
    debug: input.debug ?? false,
  }
}
