// immer must never sit over a large container: these check that it leaves the persistent
// containers alone (no draft, no freeze, no copy) when they sit in a drafted root, and
// that the persistent-root path keeps old snapshots intact.

import { isDraft, isDraftable, produce } from 'immer'
import { List as ImmutableList, Map as ImmutableMap } from 'immutable'
import { describe, expect, test } from 'vitest'
import { BTree, PMap, defineObject, isPersistentRoot } from '../../object-runtime/index.ts'
import { cluster } from './helpers.ts'

describe('persistent containers and immer', () => {
  test('immer neither drafts nor freezes immutable.js collections, PMap or BTree', () => {
    const big = ImmutableMap<string, number>().withMutations((m) => {
      for (let i = 0; i < 1000; i++) m.set(`k${i}`, i)
    })
    const pm = PMap.from<string, number>([['a', 1]])
    const tree = new BTree<number, number>([[1, 1]])
    for (const c of [big, pm, tree, ImmutableList([1])]) expect(isDraftable(c)).toBe(false)
    const base = { big, pm, tree, n: 0 }
    const next = produce(base, (d) => {
      expect(isDraft(d.big)).toBe(false)
      expect(d.big).toBe(big) // the very same object: no proxy, no copy
      d.n++
    })
    expect(next.big).toBe(big)
    expect(next.pm).toBe(pm)
    expect(next.tree).toBe(tree)
    expect(Object.isFrozen(next)).toBe(true) // immer froze the small root...
    expect(Object.isFrozen(big)).toBe(false) // ...and left the containers alone
    expect(Object.isFrozen(pm)).toBe(false)
    expect(Object.isFrozen(tree)).toBe(false)
    expect(isPersistentRoot(big) && isPersistentRoot(pm) && isPersistentRoot(tree)).toBe(true)
    expect(isPersistentRoot({ big })).toBe(false)
  })

  test('a draft root holding a persistent field: ops replace the field, snapshots keep theirs', async () => {
    const Index = defineObject({
      name: 'Index',
      initial: () => ({ byId: ImmutableMap<string, number>(), count: 0 }),
      mutators: {
        put(state, id: string, n: number) {
          state.byId = state.byId.set(id, n)
          state.count++
        },
      },
      accessors: {
        snapshot(state) {
          return state
        },
      },
    })
    const c = await cluster(1)
    const index = c.runtimes[0]!.open(Index, 'i')
    await index.put('a', 1)
    const before = await index.snapshot()
    await Promise.all(Array.from({ length: 10 }, (_, i) => index.put(`k${i}`, i)))
    expect(before.byId.size).toBe(1)
    expect(before.count).toBe(1)
    const after = await index.snapshot()
    expect(after.byId.size).toBe(11)
    expect(after.count).toBe(11)
    await c.close()
  })

  test('persistent roots: a BTree snapshot is frozen, later batches work on a clone', async () => {
    const Sorted = defineObject({
      name: 'Sorted',
      initial: () => new BTree<number, string>(),
      mutators: {
        set(tree, k: number, v: string) {
          tree.set(k, v)
        },
      },
      accessors: {
        snapshot(tree) {
          return tree
        },
      },
    })
    const c = await cluster(1)
    const s = c.runtimes[0]!.open(Sorted, 's')
    await s.set(1, 'a')
    const before = await s.snapshot()
    expect(before.isFrozen).toBe(true)
    expect(() => before.set(2, 'b')).toThrow(/frozen/)
    await s.set(2, 'b')
    expect(before.size).toBe(1)
    expect((await s.snapshot()).size).toBe(2)
    await c.close()
  })
})
