// The contract of the pure Multi-Paxos core: what goes in, what comes out, and what
// the driver (production or simulator) must do with it, in which order.
//
// Nothing in log-server/paxos may import from node:*, fastify, level, timers or read
// the clock or Math.random: time is ticks, randomness a seeded generator, wall-clock
// readings are inputs.

/** Replica ids are 0..n-1; a cluster has 3 or 5 replicas. */
export type ReplicaId = number

/** A ballot orders proposers: by round, then by replica id. */
export interface Ballot {
  readonly round: number
  readonly replica: ReplicaId
}

export const ZERO_BALLOT: Ballot = Object.freeze({ round: 0, replica: -1 })

export function compareBallots(a: Ballot, b: Ballot): number {
  if (a.round !== b.round) return a.round < b.round ? -1 : 1
  if (a.replica !== b.replica) return a.replica < b.replica ? -1 : 1
  return 0
}

export function ballotString(b: Ballot): string {
  return `${b.round}.${b.replica}`
}

/** One log entry as a client appends it: the streams it belongs to and opaque bytes. */
export interface Entry {
  readonly streams: readonly string[]
  readonly data: Uint8Array
  /**
   * Conflict keys this entry writes, on each of its streams (e.g. a map key). Only the
   * leader's conflict check reads them (conditional appends, i.e. transactions): the
   * leader proposes the entry without them (values of earlier versions may still carry them).
   */
  readonly keys?: readonly string[]
  /**
   * A per-entry condition: this entry alone is sequenced only if no key read here was
   * written after the version read; a refused entry is dropped and the op's other entries
   * go on (see AppendOp.refused). Only the leader reads it; never replicated or stored.
   */
  readonly reads?: readonly ReadDependency[]
}

/** An entry of an append that the sequencer refused (its per-entry `reads` lost). */
export interface RefusedEntry {
  /** Index of the entry in the append as the client sent it. */
  readonly index: number
  readonly conflict: ConflictInfo
}

/** A read a conditional append depends on: `key` of `stream` as of log position `version`. */
export interface ReadDependency {
  readonly stream: string
  readonly key: string
  /** The reader had applied the stream up to and including this position (-1: nothing). */
  readonly version: number
}

/**
 * One client request to append, the unit of exactly-once: a retry carries the same
 * (clientId, seq) and yields the original positions. Appends without a clientId are
 * at-least-once (every copy is stored).
 */
export interface AppendOp {
  readonly kind: 'append'
  readonly clientId?: string
  readonly seq?: number
  readonly entries: readonly Entry[]
  /**
   * Conditional append: sequenced only if no key read here was written after the
   * version read; otherwise refused with `conflict` and never enters the log. Checked
   * by the leader (the sequencer) before proposing.
   */
  readonly reads?: readonly ReadDependency[]
  /**
   * Set by the leader on an append whose entries carried their own `reads`: the entries it
   * refused, in index order. `entries` then holds only the accepted ones (stripped of
   * their reads), in order. Replicated and remembered by the session, so that a retry of
   * the same (clientId, seq) is answered with the same refusals.
   */
  readonly refused?: readonly RefusedEntry[]
}

/** Raise a stream's trim point (replicated so that every replica agrees). */
export interface TrimOp {
  readonly kind: 'trim'
  readonly stream: string
  readonly before: number
}

export type Op = AppendOp | TrimOp

/**
 * The value of one Paxos slot: a batch of ops proposed by one leader at one time.
 * A no-op fill is a value with no ops. `ts` is the proposing leader's wall-clock
 * reading in ms (an input to the core, never read by it).
 */
export interface SlotValue {
  readonly ts: number
  readonly ops: readonly Op[]
}

/**
 * What applying an op did. Applying is deterministic on every replica, so these are
 * equal everywhere for the same slot.
 * - `new`: the op's entries took positions firstPosition.. in order (appends), or the
 *   trim point moved (trims);
 * - `dup`: an append whose (clientId, seq) was already applied; its entries are NOT
 *   stored again and its positions are the original ones, `first`..first+count-1;
 * - `rejected`: nothing happened; `code` says why (e.g. `sequence_too_old`).
 */
export type Outcome =
  | { readonly kind: 'new' }
  | { readonly kind: 'dup'; readonly first: number; readonly refused?: readonly RefusedEntry[] }
  | { readonly kind: 'rejected'; readonly code: string }

/**
 * A chosen slot after it was applied in log order. `firstPosition` is the global
 * position of its first stored entry (the count of entries stored by earlier slots);
 * `ts` is the slot's log time: max(value.ts, previous slot's ts), so log time never
 * goes backwards, even across leader changes. Entries of ops whose outcome is not
 * `new` take no positions.
 */
export interface ChosenRecord {
  readonly slot: number
  readonly value: SlotValue
  readonly firstPosition: number
  readonly ts: number
  readonly outcomes: readonly Outcome[]
}

/** One remembered append of a session: its positions first..first+count-1 and what the sequencer refused of it. */
export interface SessionSeq {
  readonly seq: number
  readonly first: number
  readonly count: number
  readonly refused?: readonly RefusedEntry[]
}

/** Per-client exactly-once state (derived deterministically from the chosen log). */
export interface SessionState {
  /** Recent applied sequence numbers, ascending, each with its first position and entry count. */
  readonly seqs: readonly SessionSeq[]
  /** Slot of the last chosen append of this client (orders eviction). */
  readonly lastSlot: number
}

export interface SessionUpdate {
  readonly clientId: string
  /** null: the session was evicted. */
  readonly state: SessionState | null
}

export interface TrimUpdate {
  readonly stream: string
  readonly before: number
}

/**
 * Things to persist. The driver must make every write of an Output durable (as one
 * atomic batch, fsynced for promise/accept/vote-state) BEFORE it sends any message of
 * that Output: an acceptor's answer is only a promise if it survives a crash.
 */
export type Write =
  /** The acceptor's promise (also written when a candidate votes for itself). */
  | { readonly kind: 'promise'; readonly ballot: Ballot }
  /** An accepted (not yet known chosen) value. */
  | { readonly kind: 'accept'; readonly slot: number; readonly ballot: Ballot; readonly value: SlotValue }
  /**
   * A slot known chosen and applied: store the record, drop any accept record for
   * the slot, store the session/trim changes and the new applied meta, atomically.
   */
  | {
      readonly kind: 'chosen'
      readonly record: ChosenRecord
      readonly sessions: readonly SessionUpdate[]
      readonly trims: readonly TrimUpdate[]
    }
  /** Membership/recovery state: this replica's incarnation, what it knows of the others', and whether it may vote. */
  | { readonly kind: 'identity'; readonly incarnation: number; readonly incarnations: readonly number[]; readonly voting: boolean }

/** The applied state derived from the chosen prefix; persisted by `chosen` writes. */
export interface AppliedState {
  /** Number of chosen slots applied: slots 0..commitSlot-1. */
  readonly commitSlot: number
  /** Next position to be assigned (the tail). */
  readonly nextPosition: number
  /** Log time of the last applied slot (0 if none). */
  readonly lastTs: number
  readonly sessions: ReadonlyMap<string, SessionState>
  readonly trims: ReadonlyMap<string, number>
}

/**
 * What a replica finds on its disk when it starts; `null` for an empty disk (a new
 * replica, or one that lost its disk: it must rejoin before it may vote).
 */
export interface PersistedState {
  readonly incarnation: number
  readonly incarnations: readonly number[]
  readonly voting: boolean
  readonly promised: Ballot
  /** Accept records for slots >= applied.commitSlot. */
  readonly accepted: readonly { readonly slot: number; readonly ballot: Ballot; readonly value: SlotValue }[]
  readonly applied: AppliedState
  /** The newest chosen records the store still holds (a tail of the log, possibly empty), to serve catch-up from memory. */
  readonly recentChosen: readonly ChosenRecord[]
}

// ---------------------------------------------------------------------------------
// Messages between replicas. Every message carries the sender's incarnation and what
// it knows of everyone's incarnation (a crash vector): a replica that lost its disk
// comes back under a new incarnation, and votes cast by its former self are discarded
// by whoever learns of it (see README "Lost disks").

interface MessageBase {
  readonly from: ReplicaId
  readonly to: ReplicaId
  /** The sender's incarnation. */
  readonly inc: number
  /** The sender's view of every replica's incarnation. */
  readonly vec: readonly number[]
}

export type Message =
  | (MessageBase & { readonly type: 'prepare'; readonly ballot: Ballot; readonly fromSlot: number })
  | (MessageBase & {
      readonly type: 'promise'
      readonly ballot: Ballot
      /** The acceptor's commitSlot: everything below is chosen. */
      readonly commitSlot: number
      /** Accepted values for slots >= max(fromSlot, commitSlot). */
      readonly accepted: readonly { readonly slot: number; readonly ballot: Ballot; readonly value: SlotValue }[]
      /** Chosen records for slots in [fromSlot, commitSlot) the acceptor had at hand (bounded). */
      readonly chosen: readonly ChosenRecord[]
    })
  | (MessageBase & { readonly type: 'accept'; readonly ballot: Ballot; readonly slot: number; readonly value: SlotValue; readonly commitSlot: number })
  | (MessageBase & { readonly type: 'accepted'; readonly ballot: Ballot; readonly slot: number })
  /** A refusal: the sender has promised a higher ballot. */
  | (MessageBase & { readonly type: 'nack'; readonly ballot: Ballot; readonly promised: Ballot })
  | (MessageBase & { readonly type: 'heartbeat'; readonly ballot: Ballot; readonly commitSlot: number; readonly readId: number })
  | (MessageBase & { readonly type: 'heartbeatAck'; readonly ballot: Ballot; readonly readId: number; readonly commitSlot: number })
  | (MessageBase & { readonly type: 'catchupRequest'; readonly fromSlot: number; readonly toSlot: number })
  | (MessageBase & { readonly type: 'catchupReply'; readonly records: readonly ChosenRecord[]; readonly commitSlot: number })
  /** A replica with an empty disk asks who it was and what the cluster knows. */
  | (MessageBase & { readonly type: 'joinProbe'; readonly attempt: number })
  | (MessageBase & {
      readonly type: 'joinInfo'
      readonly attempt: number
      /** The incarnation the answering replica knows for the asker. */
      readonly knownIncarnation: number
      readonly promised: Ballot
      /** The highest slot the answering replica has accepted or knows chosen, -1 if none. */
      readonly maxSlot: number
      readonly commitSlot: number
    })
  /** The rejoining replica announces its new incarnation; receivers persist it before acking. */
  | (MessageBase & { readonly type: 'join'; readonly incarnation: number })
  | (MessageBase & {
      readonly type: 'joinAck'
      readonly incarnation: number
      readonly promised: Ballot
      readonly maxSlot: number
      readonly commitSlot: number
    })

export type MessageType = Message['type']

// ---------------------------------------------------------------------------------
// Client-facing requests and their results.

export type RequestId = number

export type ProposalResult =
  | {
      readonly requestId: RequestId
      readonly ok: true
      readonly outcome: Outcome
      /** The accepted entries took positions firstPosition..firstPosition+count-1, in order. */
      readonly firstPosition: number
      readonly count: number
      readonly slot: number
      readonly ts: number
      /** Entries refused by their own reads (per-entry conditions), in index order. */
      readonly refused?: readonly RefusedEntry[]
    }
  | { readonly requestId: RequestId; readonly ok: false; readonly code: ProposalErrorCode; readonly message: string; readonly leader: ReplicaId | null; readonly conflict?: ConflictInfo }

export type ProposalErrorCode = 'not_leader' | 'too_large' | 'overloaded' | 'sequence_too_old' | 'bad_request' | 'conflict'

/** Why a conditional append was refused: the first read key found written after its version. */
export interface ConflictInfo {
  readonly stream: string
  readonly key: string
  /** The read's version. */
  readonly version: number
  /**
   * Position of the conflicting write; -1 when it is not chosen yet (queued or in
   * flight), or when the key is not in the bounded table and `version` is below the
   * watermark (then `watermark` says so).
   */
  readonly position: number
  readonly watermark?: number
}

export type ReadIndexResult =
  | { readonly requestId: RequestId; readonly ok: true; readonly tail: number; readonly commitSlot: number }
  | { readonly requestId: RequestId; readonly ok: false; readonly code: 'not_leader' | 'overloaded'; readonly leader: ReplicaId | null }

/** Catch-up the driver must serve from storage (records older than the core keeps in memory). */
export interface StorageRead {
  readonly kind: 'serveCatchup'
  readonly to: ReplicaId
  readonly fromSlot: number
  readonly toSlot: number
}

/**
 * The result of one input to the core. The driver MUST handle it in this order:
 *   0. `early` messages may be sent at once, before the writes are durable (phase-2a
 *      accept requests of a leader with `earlyAccepts` on: they promise nothing);
 *   1. persist `writes` durably (one atomic batch; fsync), then, if `persistToken` is
 *      set, call core.persisted(persistToken);
 *   2. send `messages`;
 *   3. deliver `chosen` (already applied; in slot order) and `results`/`reads`
 *      to whoever waits for them;
 *   4. serve `storageReads` (answer with `serveCatchup`).
 * Persisting after sending would let a crash forget a promise the network already
 * carried, and let two values be chosen for one slot.
 */
export interface Output {
  readonly writes: Write[]
  readonly messages: Message[]
  readonly chosen: ChosenRecord[]
  readonly results: ProposalResult[]
  readonly reads: ReadIndexResult[]
  readonly storageReads: StorageRead[]
  /** Why inputs were ignored (stale, malformed): for debug logs, never an error. */
  readonly ignored: string[]
  /** See step 0 above; always empty unless the core's `earlyAccepts` is on. */
  readonly early: Message[]
  /** See step 1 above: 0 when there is nothing to report back. */
  persistToken: number
}

export type Role = 'joining' | 'learner' | 'follower' | 'candidate' | 'leader'

/** A snapshot of the core's state for status pages and tests. */
export interface CoreStatus {
  readonly id: ReplicaId
  readonly role: Role
  readonly voting: boolean
  readonly incarnation: number
  readonly ballot: Ballot
  readonly promised: Ballot
  readonly leader: ReplicaId | null
  readonly commitSlot: number
  readonly nextPosition: number
  readonly lastTs: number
  /** Slots proposed by this leader and not yet chosen. */
  readonly inflight: number
  /** Ops queued at this leader, not yet in a slot. */
  readonly queued: number
}
