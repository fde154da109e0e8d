// Counter: a replicated number. `add` returns the value right after that add, as
// computed at the op's log position (so two concurrent add(1)s get different answers).
//
//   const hits = rt.open(Counter, 'hits')
//   await hits.add(1)        // → 1
//   await hits.get()         // → 1 (linearizable)
//
// State: `{ value }`, a tiny plain root (draft mode; one produce per batch).
// Conflict keys: the value ('value') for both add and get.

import { defineObject } from '../object-runtime/index.ts'

export const Counter = defineObject({
  name: 'Counter',
  description: 'A replicated number.',
  initial: () => ({ value: 0 }),
  mutators: {
    /** Adds `delta` (may be negative or fractional); returns the new value. */
    add(state, delta: number): number {
      state.value += delta
      return state.value
    },
  },
  accessors: {
    get(state): number {
      return state.value
    },
  },
  conflictKeys: {
    add: () => ['value'],
    get: () => ['value'],
  },
})
