// Register<T>: one replicated value. `set` returns the previous value;
// `compareAndSet(expected, next)` writes only if the current value structurally equals
// `expected`, decided at the op's log position, so of several racing CASes exactly the
// ones consistent with the log order win.
//
//   const leader = rt.open(Register<string>, 'leader')
//   await leader.compareAndSet(undefined, 'node-1')   // → true: first writer wins
//   await leader.compareAndSet(undefined, 'node-2')   // → false
//   await leader.get()                                // → 'node-1'
//
// State: `{ value }` (draft mode). Values are plain data (see the op format), frozen.
// Conflict keys: the whole object (WHOLE_OBJECT) for every operation.

import { WHOLE_OBJECT, defineObject } from '../object-runtime/index.ts'
import { plainEqual } from './plain-equal.ts'

export function Register<T>() {
  return defineObject({
    name: 'Register',
    description: 'One replicated value with compare-and-set.',
    initial: (): { value: T | undefined } => ({ value: undefined }),
    mutators: {
      /** Writes `value`; returns the value it replaced. */
      set(state, value: T): T | undefined {
        const previous = state.value as T | undefined
        state.value = value
        return previous
      },
      /** Writes `next` if the value equals `expected` (structurally); returns whether it did. */
      compareAndSet(state, expected: T | undefined, next: T): boolean {
        if (!plainEqual(state.value, expected)) return false
        state.value = next
        return true
      },
    },
    accessors: {
      get(state): T | undefined {
        return state.value
      },
    },
    conflictKeys: {
      set: () => [WHOLE_OBJECT],
      compareAndSet: () => [WHOLE_OBJECT],
      get: () => [WHOLE_OBJECT],
    },
  })
}
