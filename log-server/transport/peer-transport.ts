// What a replica's driver needs from the network between replicas: fire-and-forget
// sends, a stream of received messages, and counters for the status page.
//
// Delivery is best effort. A message to a peer that is down, or beyond the bounded
// per-peer queue, is dropped (and counted): Multi-Paxos tolerates loss and the core
// retransmits. What the transport does guarantee is per-peer FIFO order for what it
// delivers (one TCP connection at a time per direction) and that a delivered message
// came from the replica its connection's handshake named, in this cluster.

import type { Message, ReplicaId } from '../paxos/types.ts'

export interface PeerTransport {
  /** Listens on the peer port and starts dialing every peer. Rejects if the port cannot be bound. */
  start(): Promise<void>
  /**
   * Queues `msg` for `msg.to`. Never blocks, never throws: a message that cannot be
   * queued (peer not connected, queue full, frame too large) is dropped and counted.
   * Messages queued during one event-loop turn go out in one socket write.
   */
  send(msg: Message): void
  /**
   * Registers a receiver. Handlers run synchronously, in arrival order, inside the
   * socket's data event; an exception thrown by a handler is a bug and propagates
   * (fail-stop). Entry `data` arrives as plain Uint8Array views into the received
   * bytes (no copy); a view keeps its whole socket chunk (up to 64 KiB, or the whole
   * frame) alive, so copy a small entry that is kept long on its own.
   */
  onMessage(handler: (msg: Message) => void): void
  /** True when the outbound connection to `peer` is up and handshaken (sends are queued, not dropped). */
  connected(peer: ReplicaId): boolean
  stats(): TransportStats
  /** Stops listening and dialing and destroys every connection; queued messages are dropped. Idempotent. */
  close(): Promise<void>
}

/**
 * - `idle`: not started (or closed);
 * - `connecting`: a TCP connect or the handshake is in progress;
 * - `open`: handshaken, sends are queued and written;
 * - `backoff`: the last attempt failed or the connection dropped; a redial is scheduled.
 */
export type LinkState = 'idle' | 'connecting' | 'open' | 'backoff'

export interface PeerStats {
  readonly peer: ReplicaId
  readonly address: string
  /** State of the outbound (sending) connection. */
  readonly state: LinkState
  /** Whether the peer currently has a handshaken inbound (receiving) connection to us. */
  readonly inbound: boolean
  /** Messages/bytes (frames including their 4-byte length) handed to the socket. */
  readonly sentMessages: number
  readonly sentBytes: number
  /** Flushes of the queue to the socket (one socket.write, or one corked batch, per event-loop turn). */
  readonly writes: number
  /** Messages/bytes received and delivered to handlers. */
  readonly receivedMessages: number
  readonly receivedBytes: number
  /** Messages dropped by send(); bytes only count messages that were encoded before being dropped. */
  readonly droppedMessages: number
  readonly droppedBytes: number
  /** Waiting in the transport's queue (not yet handed to the socket). */
  readonly queuedMessages: number
  readonly queuedBytes: number
  /** Bytes handed to the socket and not yet flushed to the kernel. */
  readonly socketBufferedBytes: number
  /** Successful outbound handshakes so far. */
  readonly connects: number
  /** Why the last outbound attempt or connection ended, null if none did. */
  readonly lastError: string | null
}

export interface TransportStats {
  readonly id: ReplicaId
  readonly cluster: string
  readonly listen: { readonly host: string; readonly port: number }
  readonly peers: readonly PeerStats[]
  /** Inbound connections refused at the handshake (wrong cluster, unknown replica, bad frame). */
  readonly rejectedConnections: number
  /** Inbound connections closed after the handshake for a bad frame or message. */
  readonly protocolErrors: number
  /** Messages given to send() whose `to` is neither a configured peer nor a number. */
  readonly unroutableMessages: number
}
