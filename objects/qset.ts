// QSet<T>: a replicated set of strings or numbers.
//
//   const tags = rt.open(QSet<string>, 'tags')
//   await tags.add('red')       // → true (was new)
//   await tags.has('red')       // → true
//
// State: the root IS an immutable.js Set (persistent-root mode). Members compare by
// value: strings and numbers only. values() order is deterministic for a given log.
// Conflict keys: the member for add/delete/has, the whole object for size/values.

import { Set as ImmutableSet } from 'immutable'
import { WHOLE_OBJECT, defineObject } from '../object-runtime/index.ts'

export type SetMember = string | number

export function QSet<T extends SetMember>() {
  return defineObject({
    name: 'QSet',
    description: 'A replicated set.',
    initial: () => ImmutableSet<T>(),
    mutators: {
      /** Adds `value`; returns whether it was new. */
      add(set, value: T): boolean {
        const size = set.size
        set.add(value)
        return set.size !== size
      },
      /** Removes `value`; returns whether it was there. */
      delete(set, value: T): boolean {
        const size = set.size
        set.delete(value)
        return set.size !== size
      },
    },
    accessors: {
      has(set, value: T): boolean {
        return set.has(value)
      },
      size(set): number {
        return set.size
      },
      values(set): T[] {
        return [...set.values()]
      },
    },
    conflictKeys: {
      add: (value) => [value],
      delete: (value) => [value],
      has: (value) => [value],
      size: () => [WHOLE_OBJECT],
      values: () => [WHOLE_OBJECT],
    },
  })
}
