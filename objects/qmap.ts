// QMap<K, V>: a replicated map from string or number keys to plain-data values.
//
//   interface User { age: number }
//   const users = rt.open(QMap<string, User>, 'users')
//   await users.set('alice', { age: 3 })
//   await users.get('alice')                              // → { age: 3 }, linearizable
//   await users.get('alice', { consistency: 'cached' })   // local, no round trip
//
// State: the root IS a PMap, the runtime's persistent hash trie (persistent-root mode: no
// immer; a batch of ops edits a transient copy in place, O(log32 n) per op, snapshots
// untouched). Keys compare with ===: strings and numbers only (1 and '1' are different
// keys). Iteration order (keys, entries) is unspecified but canonical: it depends only on
// the set of keys, so every client lists the same map in the same order. Conflict keys: the key for get/set/delete/has, the whole object for
// clear/size/keys/entries.

import { PMap, WHOLE_OBJECT, defineObject } from '../object-runtime/index.ts'

export type MapKey = string | number

export function QMap<K extends MapKey, V>() {
  return defineObject({
    name: 'QMap',
    description: 'A replicated map.',
    initial: () => PMap.empty<K, V>(),
    mutators: {
      /** Sets `key` to `value`; returns whether the key was new. */
      set(map, key: K, value: V): boolean {
        // One lookup, not two: on the working copy, set() changes `map` in place.
        const size = map.size
        map.set(key, value)
        return map.size !== size
      },
      /** Removes `key`; returns whether it was there. */
      delete(map, key: K): boolean {
        const size = map.size
        map.delete(key)
        return map.size !== size
      },
      /** Removes every key; returns how many there were. */
      clear(map): number {
        const size = map.size
        map.clear()
        return size
      },
    },
    accessors: {
      get(map, key: K): V | undefined {
        return map.get(key)
      },
      has(map, key: K): boolean {
        return map.has(key)
      },
      size(map): number {
        return map.size
      },
      keys(map): K[] {
        return map.keys()
      },
      entries(map): Array<[K, V]> {
        return map.entries()
      },
    },
    conflictKeys: {
      set: (key) => [key],
      delete: (key) => [key],
      clear: () => [WHOLE_OBJECT],
      get: (key) => [key],
      has: (key) => [key],
      size: () => [WHOLE_OBJECT],
      keys: () => [WHOLE_OBJECT],
      entries: () => [WHOLE_OBJECT],
    },
  })
}
