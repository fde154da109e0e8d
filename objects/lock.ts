// Lock: a lease-based mutual-exclusion lock with fencing tokens, decided in log time.
//
//   const lock = rt.open(Lock, 'leader-lock')
//   const grant = await lock.acquire('node-1', 10_000)
//   if (grant.acquired) {
//     // grant.token: the log position of the acquiring entry. Tokens only grow, so a
//     // resource that remembers the highest token it has seen can refuse a stale holder.
//     await lock.renew('node-1', grant.token, 10_000)   // before grant.expiresAt
//     await lock.release('node-1', grant.token)
//   }
//
// Time: every decision uses the log time of the op's own entry (currentEntry().ts, the
// timestamp of its Paxos slot), never a local clock, so every client decides expiry the
// same way. A holder that stops renewing loses the lock once an op arrives whose log time
// is at or past `expiresAt`; the next acquire then succeeds with a new, larger token.
// The holder's own clock plays no part: a holder must treat the lock as lost when its
// renew answers false, and should renew well before the TTL measured from its last
// successful renew.
//
// State: `{ holder, token, expiresAt }` (draft mode, tiny). `info()` is the raw state; it
// cannot tell whether an unreleased lease has expired (reads carry no log time) — call
// the `check()` mutator for an answer in log time. Conflict keys: the whole lock.

import { WHOLE_OBJECT, currentEntry, defineObject } from '../object-runtime/index.ts'

export interface LockState {
  /** Owner of the current lease, or null if released / never taken. */
  holder: string | null
  /** Fencing token of the current lease: the log position of the entry that acquired it (-1: none). */
  token: number
  /** Log time (ms) at which the current lease ends unless renewed. */
  expiresAt: number
}

export type LockGrant =
  | { readonly acquired: true; readonly token: number; readonly expiresAt: number }
  | { readonly acquired: false; readonly holder: string | null; readonly token: number; readonly expiresAt: number }

export interface LockStatus {
  readonly held: boolean
  readonly holder: string | null
  readonly token: number
  readonly expiresAt: number
  /** Log time of the entry that answered. */
  readonly now: number
}

function validTtl(ttlMs: unknown): ttlMs is number {
  return typeof ttlMs === 'number' && Number.isFinite(ttlMs) && ttlMs > 0
}

function live(state: LockState, now: number): boolean {
  return state.holder !== null && now < state.expiresAt
}

export const Lock = defineObject({
  name: 'Lock',
  description: 'A lease lock with fencing tokens, expiring in log time.',
  initial: (): LockState => ({ holder: null, token: -1, expiresAt: 0 }),
  mutators: {
    /**
     * Takes the lock for `owner` for `ttlMs` of log time, if it is free or its lease has
     * expired. If `owner` already holds it, extends the lease and keeps the token.
     */
    acquire(state, owner: string, ttlMs: number): LockGrant {
      const { position, ts } = currentEntry()
      if (typeof owner !== 'string' || owner.length === 0 || !validTtl(ttlMs)) {
        return { acquired: false, holder: state.holder, token: state.token, expiresAt: state.expiresAt }
      }
      if (live(state, ts) && state.holder !== owner) {
        return { acquired: false, holder: state.holder, token: state.token, expiresAt: state.expiresAt }
      }
      if (!live(state, ts)) {
        state.holder = owner
        state.token = position
      }
      state.expiresAt = ts + ttlMs
      return { acquired: true, token: state.token, expiresAt: state.expiresAt }
    },
    /** Extends a live lease held by `owner` with `token`; false if it expired or was taken over. */
    renew(state, owner: string, token: number, ttlMs: number): boolean {
      const { ts } = currentEntry()
      if (!validTtl(ttlMs) || !live(state, ts) || state.holder !== owner || state.token !== token) return false
      state.expiresAt = ts + ttlMs
      return true
    },
    /** Ends a live lease held by `owner` with `token`; false if it was not theirs (any more). */
    release(state, owner: string, token: number): boolean {
      const { ts } = currentEntry()
      if (!live(state, ts) || state.holder !== owner || state.token !== token) return false
      state.holder = null
      state.expiresAt = ts
      return true
    },
    /** Who holds the lock at this op's log time (changes nothing). */
    check(state): LockStatus {
      const { ts } = currentEntry()
      const held = live(state, ts)
      return { held, holder: held ? state.holder : null, token: state.token, expiresAt: state.expiresAt, now: ts }
    },
  },
  accessors: {
    /** The raw lease (see the note on log time above). */
    info(state): Readonly<LockState> {
      return state
    },
  },
  conflictKeys: {
    acquire: () => [WHOLE_OBJECT],
    renew: () => [WHOLE_OBJECT],
    release: () => [WHOLE_OBJECT],
    check: () => [WHOLE_OBJECT],
    info: () => [WHOLE_OBJECT],
  },
})
