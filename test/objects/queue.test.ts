import fc from 'fast-check'
import { describe, expect, test } from 'vitest'
import { Queue } from '../../objects/index.ts'
import { cluster } from '../runtime/helpers.ts'
import { modelTests } from './harness.ts'
import type { Call } from './harness.ts'

describe('Queue', () => {
  modelTests<unknown[]>({
    title: 'Queue',
    def: Queue<unknown>,
    mutators: fc.oneof(
      fc.oneof(fc.integer({ min: 0, max: 99 }), fc.record({ id: fc.integer({ min: 0, max: 9 }) })).map((v): Call => ({ name: 'enqueue', args: [v] })),
      fc.constant<Call>({ name: 'dequeue', args: [] }),
    ),
    accessors: fc.constantFrom<Call>({ name: 'peek', args: [] }, { name: 'size', args: [] }),
    model: () => [],
    apply: (q, call) => {
      switch (call.name) {
        case 'enqueue':
          q.push(call.args[0])
          return q.length
        case 'dequeue':
          return q.shift()
        case 'peek':
          return q[0]
        case 'size':
          return q.length
      }
      throw new Error(call.name)
    },
    observers: [{ name: 'size', args: [] }, { name: 'peek', args: [] }],
  })

  test('producers and consumers in three runtimes: every item is consumed exactly once, in FIFO order per producer', async () => {
    const c = await cluster(3)
    const qs = c.runtimes.map((rt) => rt.open(Queue<{ producer: number; seq: number }>, 'work'))
    const produce = qs.map(async (q, producer) => {
      for (let seq = 0; seq < 30; seq++) await q.enqueue({ producer, seq })
    })
    const consumed: Array<Array<{ producer: number; seq: number }>> = [[], [], []]
    let done = false
    const consume = qs.map(async (q, i) => {
      while (!done || (await q.size()) > 0) {
        const item = await q.dequeue()
        if (item !== undefined) consumed[i]!.push(item)
      }
    })
    await Promise.all(produce)
    done = true
    await Promise.all(consume)
    const all = consumed.flat()
    expect(all.length).toBe(90)
    expect(new Set(all.map((x) => `${x.producer}.${x.seq}`)).size).toBe(90)
    // Each consumer sees each producer's items in increasing order.
    for (const mine of consumed) {
      for (let p = 0; p < 3; p++) {
        const seqs = mine.filter((x) => x.producer === p).map((x) => x.seq)
        expect(seqs).toEqual([...seqs].sort((a, b) => a - b))
      }
    }
    await c.close()
  })
})
