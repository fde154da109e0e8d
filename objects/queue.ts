// Queue<T>: a replicated FIFO queue. `dequeue` is decided at its log position, so with
// many consumers (in one process or many) each item goes to exactly one of them;
// an empty queue answers undefined.
//
//   const jobs = rt.open(Queue<Job>, 'jobs')
//   await jobs.enqueue({ id: 1 })      // → 1 (length after the enqueue)
//   await jobs.dequeue()               // → { id: 1 }, to exactly one caller
//   await jobs.dequeue()               // → undefined
//
// State: the root IS an immutable.js List (persistent-root mode): push and shift on a
// transient copy, O(log32 n). Conflict keys: every op reads and writes the whole queue.
// Finer keys ('head' for dequeue, 'tail' for enqueue) would be wrong: a dequeue or peek on
// an empty queue depends on the tail (a concurrent enqueue changes its answer), and
// enqueue answers the length, which depends on the head. Keys are declared from the
// arguments alone, not the state, so the queue is one conflict unit.

import { List as ImmutableList } from 'immutable'
import { WHOLE_OBJECT, defineObject } from '../object-runtime/index.ts'

export function Queue<T>() {
  return defineObject({
    name: 'Queue',
    description: 'A replicated FIFO queue.',
    initial: () => ImmutableList<T>(),
    mutators: {
      /** Adds `item` at the tail; returns the length afterwards. */
      enqueue(list, item: T): number {
        list.push(item)
        return list.size
      },
      /** Takes the head item, or undefined if the queue is empty. */
      dequeue(list): T | undefined {
        if (list.size === 0) return undefined
        const head = list.first()
        list.shift()
        return head
      },
    },
    accessors: {
      peek(list): T | undefined {
        return list.first()
      },
      size(list): number {
        return list.size
      },
    },
    conflictKeys: {
      enqueue: () => [WHOLE_OBJECT],
      dequeue: () => [WHOLE_OBJECT],
      peek: () => [WHOLE_OBJECT],
      size: () => [WHOLE_OBJECT],
    },
  })
}
