// Configuration of the TCP peer transport. Every queue and frame has a bound here;
// validateTransportOptions rejects nonsense with a message that names the field.

import { ConfigError } from '../paxos/config.ts'
import type { ReplicaId } from '../paxos/types.ts'

export interface PeerAddress {
  readonly id: ReplicaId
  readonly host: string
  readonly port: number
}

export interface TransportLimits {
  /** Largest msgpack body of one frame, sent or received. A larger received frame closes the connection. */
  readonly frameBytesMax: number
  /**
   * Bytes (frames with their 4-byte prefix) waiting in one peer's queue; a send that
   * would take a non-empty queue past it is dropped (an empty queue takes any frame
   * within frameBytesMax).
   */
  readonly queueBytesMax: number
  /** Messages waiting in one peer's queue, at most; past it sends to that peer are dropped. */
  readonly queueMessagesMax: number
  /** A connection that has not completed its handshake (including the TCP connect) by then is closed. */
  readonly handshakeTimeoutMs: number
  /** First redial delay after a failure; doubles per consecutive failure up to reconnectDelayMaxMs. */
  readonly reconnectDelayMinMs: number
  readonly reconnectDelayMaxMs: number
  /** TCP keep-alive initial delay, so that a silently vanished peer is noticed. */
  readonly keepAliveDelayMs: number
  /** Accepted connections awaiting their handshake, at most; a new one past it closes the oldest. */
  readonly pendingConnectionsMax: number
}

/**
 * Defaults. The byte bound is per peer: with the socket's own buffer (which holds at
 * most one flushed queue) a stalled peer costs at most ~2 × queueBytesMax of memory.
 */
export const DEFAULT_TRANSPORT_LIMITS: TransportLimits = Object.freeze({
  frameBytesMax: 64 << 20,
  queueBytesMax: 64 << 20,
  queueMessagesMax: 65_536,
  handshakeTimeoutMs: 5_000,
  reconnectDelayMinMs: 50,
  reconnectDelayMaxMs: 1_000,
  keepAliveDelayMs: 5_000,
  pendingConnectionsMax: 64,
})

/** Lines the transport logs: connects, rejected handshakes, bad frames. pino's Logger fits. */
export interface TransportLogger {
  info(fields: Record<string, unknown>, msg: string): void
  warn(fields: Record<string, unknown>, msg: string): void
}

export interface TcpTransportOptions {
  readonly id: ReplicaId
  /** Replicas of different clusters never talk: the handshake carries this name and a mismatch is refused. */
  readonly cluster: string
  /** Port 0 binds an ephemeral port (see TcpTransport.address()). */
  readonly listen: { readonly host: string; readonly port: number }
  /**
   * The other replicas; an entry with this replica's own id is ignored (so the whole
   * cluster list may be passed). Port 0 means "not known yet": the peer is not dialed
   * until TcpTransport.setPeerAddress() gives its port.
   */
  readonly peers: readonly PeerAddress[]
  readonly limits?: Partial<TransportLimits>
  /** Defaults to one line per event on stderr. */
  readonly logger?: TransportLogger
}

export interface ValidatedTransportOptions {
  readonly id: ReplicaId
  readonly cluster: string
  readonly listen: { readonly host: string; readonly port: number }
  readonly peers: readonly PeerAddress[]
  readonly limits: TransportLimits
}

/** Longest cluster name, in UTF-16 code units (it travels in every handshake). */
export const CLUSTER_NAME_MAX = 200

function port(name: string, v: unknown, allowZero: boolean): void {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < (allowZero ? 0 : 1) || v > 65_535) {
    throw new ConfigError(`${name} must be an integer in [${allowZero ? 0 : 1}, 65535], got ${String(v)}`)
  }
}

function host(name: string, v: unknown): void {
  if (typeof v !== 'string' || v.length === 0) throw new ConfigError(`${name} must be a non-empty host name, got ${String(v)}`)
}

export function validateTransportOptions(o: TcpTransportOptions): ValidatedTransportOptions {
  if (!Number.isSafeInteger(o.id) || o.id < 0) throw new ConfigError(`id must be a non-negative integer, got ${String(o.id)}`)
  if (typeof o.cluster !== 'string' || o.cluster.length === 0 || o.cluster.length > CLUSTER_NAME_MAX) {
    throw new ConfigError(`cluster must be a string of 1..${CLUSTER_NAME_MAX} characters, got ${JSON.stringify(o.cluster)}`)
  }
  host('listen.host', o.listen.host)
  port('listen.port', o.listen.port, true)
  const peers: PeerAddress[] = []
  const seen = new Set<number>()
  for (const p of o.peers) {
    if (!Number.isSafeInteger(p.id) || p.id < 0) throw new ConfigError(`peers[].id must be a non-negative integer, got ${String(p.id)}`)
    if (seen.has(p.id)) throw new ConfigError(`peers lists replica ${p.id} twice`)
    seen.add(p.id)
    if (p.id === o.id) continue
    host(`peers[${p.id}].host`, p.host)
    port(`peers[${p.id}].port`, p.port, true)
    peers.push({ id: p.id, host: p.host, port: p.port })
  }
  const limits: TransportLimits = { ...DEFAULT_TRANSPORT_LIMITS, ...o.limits }
  for (const k of Object.keys(DEFAULT_TRANSPORT_LIMITS) as (keyof TransportLimits)[]) {
    const v = limits[k]
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) {
      throw new ConfigError(`limits.${k} must be a positive integer, got ${String(v)}`)
    }
  }
  // The length prefix is 32 bits; an empty queue always takes one frame, so a larger
  // frame bound than queue bound would only make the queue bound a lie.
  if (limits.frameBytesMax > 0xffff_ffff) throw new ConfigError(`limits.frameBytesMax must be below 4 GiB, got ${limits.frameBytesMax}`)
  if (limits.frameBytesMax > limits.queueBytesMax) {
    throw new ConfigError(`limits.frameBytesMax (${limits.frameBytesMax}) must not exceed limits.queueBytesMax (${limits.queueBytesMax})`)
  }
  if (limits.reconnectDelayMinMs > limits.reconnectDelayMaxMs) {
    throw new ConfigError(`limits.reconnectDelayMinMs (${limits.reconnectDelayMinMs}) must not exceed limits.reconnectDelayMaxMs (${limits.reconnectDelayMaxMs})`)
  }
  return { id: o.id, cluster: o.cluster, listen: { host: o.listen.host, port: o.listen.port }, peers, limits }
}
