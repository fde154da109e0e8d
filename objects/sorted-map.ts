// SortedMap<K, V>: a replicated map kept in key order, with range queries.
//
//   const scores = rt.open(SortedMap<number, string>, 'scores')
//   await scores.set(42, 'ann')
//   await scores.range(10, 100, 5)     // → up to 5 [key, value] pairs with 10 <= key < 100, ascending
//
// Keys: numbers or strings (one kind per map is the sane choice; if mixed, all numbers
// sort before all strings). Order is sorted-btree's default comparator: numeric for
// numbers, code-unit order for strings.
// State: the root IS a sorted-btree BTree (persistent-root mode): each batch works on an
// O(1) copy-on-write clone, O(log n) per op; snapshots are frozen trees.
// Conflict keys: the key for get/set/delete/has, the whole object for the rest (a range
// read would need range locks; declared coarse for now).

import { BTree, WHOLE_OBJECT, defineObject } from '../object-runtime/index.ts'

export type SortedKey = string | number

export function SortedMap<K extends SortedKey, V>() {
  return defineObject({
    name: 'SortedMap',
    description: 'A replicated map in key order, with range queries.',
    initial: () => new BTree<K, V>(),
    mutators: {
      /** Sets `key` to `value`; returns whether the key was new. */
      set(tree, key: K, value: V): boolean {
        return tree.set(key, value, true)
      },
      /** Removes `key`; returns whether it was there. */
      delete(tree, key: K): boolean {
        return tree.delete(key)
      },
      /** Removes every key; returns how many there were. */
      clear(tree): number {
        const size = tree.size
        tree.clear()
        return size
      },
    },
    accessors: {
      get(tree, key: K): V | undefined {
        return tree.get(key)
      },
      has(tree, key: K): boolean {
        return tree.has(key)
      },
      size(tree): number {
        return tree.size
      },
      keys(tree): K[] {
        return tree.keysArray()
      },
      entries(tree): Array<[K, V]> {
        return tree.toArray()
      },
      /**
       * Pairs with `from <= key < to`, ascending, at most `limit` of them. An omitted
       * bound is open; an omitted limit means all.
       */
      range(tree, from?: K, to?: K, limit?: number): Array<[K, V]> {
        const max = limit === undefined ? Infinity : Math.max(0, Math.trunc(limit))
        const out: Array<[K, V]> = []
        if (max === 0) return out
        for (const [k, v] of tree.entries(from)) {
          if (to !== undefined && tree._compare(k, to) >= 0) break
          out.push([k, v])
          if (out.length >= max) break
        }
        return out
      },
      /** The smallest key, or undefined. */
      minKey(tree): K | undefined {
        return tree.minKey()
      },
      /** The largest key, or undefined. */
      maxKey(tree): K | undefined {
        return tree.maxKey()
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
      range: () => [WHOLE_OBJECT],
      minKey: () => [WHOLE_OBJECT],
      maxKey: () => [WHOLE_OBJECT],
    },
  })
}
