// QSet<T>: a replicated set of strings or numbers.
//
//   const tags = rt.open(QSet<string>, 'tags')
//   await tags.add('red')       // → true (was new)
//   await tags.has('red')       // → true
//
// State: the root IS a PMap from member to `true` (persistent-root mode; a PMap stores
// entries inline, half the memory of an immutable.js Set). Members compare with ===:
// strings and numbers only. values() order is unspecified but canonical (a function of
// the members alone), so every client lists the same set in the same order.
// Conflict keys: the member for add/delete/has, the whole object for size/values.

import { PMap, WHOLE_OBJECT, defineObject } from '../object-runtime/index.ts'

export type SetMember = string | number

export function QSet<T extends SetMember>() {
  return defineObject({
    name: 'QSet',
    description: 'A replicated set.',
    initial: () => PMap.empty<T, true>(),
    mutators: {
      /** Adds `value`; returns whether it was new. */
      add(set, value: T): boolean {
        const size = set.size
        set.set(value, true)
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
        return set.keys()
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
