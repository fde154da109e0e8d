// List<T>: a replicated sequence with positional edits.
//
//   const todo = rt.open(List<string>, 'todo')
//   await todo.push('milk')             // → 1 (length)
//   await todo.insert(0, 'eggs')        // → 2
//   await todo.slice()                  // → ['eggs', 'milk']
//   await todo.removeAt(-1)             // → 'milk'
//
// Indexes follow Array.prototype.splice: negative counts from the end, out-of-range is
// clamped (insert) or answers undefined (removeAt, at); a bad index never throws, because
// a throwing mutator would poison the list for every client.
//
// State: the root IS an immutable.js List (persistent-root mode). push/pop at the ends
// and at(i) are O(log32 n); insert/removeAt in the middle shift the elements after the
// index in place, O(n - i) — fine for lists of thousands, not for millions.
// Conflict keys: the whole list (positions shift under every edit).

import { List as ImmutableList } from 'immutable'
import { WHOLE_OBJECT, defineObject } from '../object-runtime/index.ts'
import { clampIndex } from './plain-equal.ts'

export function List<T>() {
  return defineObject({
    name: 'List',
    description: 'A replicated sequence.',
    initial: () => ImmutableList<T>(),
    mutators: {
      /** Appends `item`; returns the length afterwards. */
      push(list, item: T): number {
        list.push(item)
        return list.size
      },
      /** Inserts `item` before `index` (splice semantics); returns the length afterwards. */
      insert(list, index: number, item: T): number {
        const size = list.size
        const at = clampIndex(index, size)
        if (at === size) {
          list.push(item)
        } else if (at === 0) {
          list.unshift(item)
        } else {
          // Transient-safe shift right: push a copy of the last element, move the rest up.
          list.push(list.get(size - 1) as T)
          for (let i = size - 1; i > at; i--) list.set(i, list.get(i - 1) as T)
          list.set(at, item)
        }
        return list.size
      },
      /** Removes the element at `index` (negative counts from the end); returns it, or undefined if out of range. */
      removeAt(list, index: number): T | undefined {
        const size = list.size
        const i = typeof index === 'number' && Number.isFinite(index) ? Math.trunc(index < 0 ? size + index : index) : -1
        if (i < 0 || i >= size) return undefined
        const removed = list.get(i) as T
        if (i === 0) {
          list.shift()
        } else {
          for (let j = i; j < size - 1; j++) list.set(j, list.get(j + 1) as T)
          list.pop()
        }
        return removed
      },
    },
    accessors: {
      /** The element at `index` (negative counts from the end), or undefined. */
      at(list, index: number): T | undefined {
        return list.get(index)
      },
      /** Elements in [start, end), Array.prototype.slice semantics. */
      slice(list, start?: number, end?: number): T[] {
        return list.slice(start, end).toArray()
      },
      length(list): number {
        return list.size
      },
    },
    conflictKeys: {
      push: () => [WHOLE_OBJECT],
      insert: () => [WHOLE_OBJECT],
      removeAt: () => [WHOLE_OBJECT],
      at: () => [WHOLE_OBJECT],
      slice: () => [WHOLE_OBJECT],
      length: () => [WHOLE_OBJECT],
    },
  })
}
