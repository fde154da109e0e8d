// What the HTTP layer needs from a replica. The replica (log-server/replica.ts)
// implements it; HTTP tests may implement it with a fake. Errors are QuipuErrors
// (log-server/errors.ts) with stable codes; the HTTP layer maps code -> status.

// Entries, ranges and read results are the storage layer's: the HTTP layer serves
// what the store reads, unchanged.
export type { LogEntry as ApiEntry, ReadRange, ReadResult } from '../storage/log-store.ts'
import type { LogEntry as ApiEntry, ReadRange, ReadResult } from '../storage/log-store.ts'
import type { ConflictInfo } from '../paxos/types.ts'

/** A read a conditional append depends on: `key` of `stream` as of position `version`. */
export interface ReadCondition {
  readonly stream: string
  readonly key: string
  readonly version: number
}

export interface AppendRequest {
  /**
   * `keys`: the conflict keys the entry writes on each of its streams (transactions).
   * `reads`: a per-entry condition: the entry alone is refused (and the others go on)
   * when a key it read was written after its version.
   */
  readonly entries: readonly {
    readonly streams: readonly string[]
    readonly data: Uint8Array
    readonly keys?: readonly string[]
    readonly reads?: readonly ReadCondition[]
  }[]
  readonly clientId?: string
  readonly seq?: number
  /** Conditional append: refused with 409 `conflict` when a key read was written after its version. */
  readonly reads?: readonly ReadCondition[]
}

/**
 * The answer to an append: one position per entry of the request, in order. An entry
 * refused by its own reads has position -1 and is listed in `refused` with the conflict.
 */
export interface AppendAnswer {
  readonly positions: number[]
  readonly refused?: readonly { readonly index: number; readonly conflict: ConflictDetails }[]
}

/** The read key found written after the version read (see the conflict error of /v1/append). */
export type ConflictDetails = ConflictInfo

export interface TailResult {
  readonly tail: number
  readonly streams: Readonly<Record<string, number>>
}

export interface ReplicaStatus {
  readonly id: number
  readonly role: 'leader' | 'follower' | 'candidate' | 'learner' | 'joining'
  /** URL of the leader's HTTP API, or null when unknown. */
  readonly leader: string | null
  readonly ballot: string
  readonly commitPosition: number
  readonly commitSlot: number
  readonly trim: Readonly<Record<string, number>>
  readonly peers: readonly { readonly id: number; readonly url: string; readonly connected: boolean }[]
  readonly [extra: string]: unknown
}

export interface Subscription {
  close(): void
}

/** How a call that only the leader can answer is handled on a follower. */
export interface CallOptions {
  /**
   * true (the HTTP default): a follower forwards the call to the leader and answers for
   * it; false (header `x-quipu-forward: false`): it answers 421 not_leader with the
   * leader's URL, for clients that follow the leader themselves.
   */
  readonly forward?: boolean
}

export interface ReplicaApi {
  /** Leader only (a follower throws QuipuError 'not_leader' with the leader URL, or forwards). */
  append(req: AppendRequest, opts?: CallOptions): Promise<AppendAnswer>
  /** Linearizable: read-index through the leader. */
  tail(streams?: readonly string[], opts?: CallOptions): Promise<TailResult>
  readLog(range: ReadRange): Promise<ReadResult>
  readStream(name: string, range: ReadRange): Promise<ReadResult>
  trim(stream: string, before: number, opts?: CallOptions): Promise<{ readonly trimmedBefore: number }>
  status(): ReplicaStatus
  /**
   * Push newly committed entries of `streams` (all streams when empty) from position
   * `from` on: first what is already stored, then each new commit, in order, with no
   * gaps or repeats. `onEntries` is called with batches; `onError` once if the
   * subscription cannot continue (e.g. `trimmed`), after which it is closed.
   */
  subscribe(
    streams: readonly string[],
    from: number,
    onEntries: (entries: readonly ApiEntry[], next: number) => void,
    onError: (err: Error) => void,
  ): Subscription
}
