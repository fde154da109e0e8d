// What the HTTP layer needs from a replica. The replica (log-server/replica.ts)
// implements it; HTTP tests may implement it with a fake. Errors are QuipuErrors
// (log-server/errors.ts) with stable codes; the HTTP layer maps code -> status.

export interface ApiEntry {
  readonly position: number
  readonly streams: readonly string[]
  readonly data: Uint8Array
  /** Log time (ms) of the slot that holds the entry. */
  readonly ts: number
}

export interface ReadRange {
  readonly from: number
  /** Exclusive; undefined = up to the commit point. */
  readonly to?: number
  readonly limit: number
}

export interface ReadResult {
  readonly entries: readonly ApiEntry[]
  /** The position to read from next. */
  readonly next: number
}

export interface AppendRequest {
  readonly entries: readonly { readonly streams: readonly string[]; readonly data: Uint8Array }[]
  readonly clientId?: string
  readonly seq?: number
}

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

export interface ReplicaApi {
  /** Leader only (a follower throws QuipuError 'not_leader' with the leader URL, or forwards). */
  append(req: AppendRequest): Promise<{ readonly positions: number[] }>
  /** Linearizable: read-index through the leader. */
  tail(streams?: readonly string[]): Promise<TailResult>
  readLog(range: ReadRange): Promise<ReadResult>
  readStream(name: string, range: ReadRange): Promise<ReadResult>
  trim(stream: string, before: number): Promise<{ readonly trimmedBefore: number }>
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
