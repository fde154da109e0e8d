import fc from 'fast-check'
import { describe, expect, test } from 'vitest'
import { PMap, hashKey } from '../../object-runtime/pmap.ts'

/** Pairs of keys with equal 32-bit hashes, found by brute force: they exercise the collision nodes. */
function collidingKeys(pairs: number): string[] {
  const seen = new Map<number, string>()
  const out: string[] = []
  for (let i = 0; out.length < pairs * 2; i++) {
    const k = `c${i}`
    const h = hashKey(k)
    const other = seen.get(h)
    if (other !== undefined) out.push(other, k)
    else seen.set(h, k)
  }
  return out
}

const collisions = collidingKeys(3)
const key = fc.oneof(fc.integer({ min: -40, max: 40 }), fc.constantFrom('a', 'b', 'c', '1', '-0', ...collisions), fc.constantFrom(0.5, NaN, 1e300, -0))

type Op = { kind: 'set'; k: string | number; v: number } | { kind: 'delete'; k: string | number } | { kind: 'clear' } | { kind: 'snapshot' } | { kind: 'seal' }

const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 8, arbitrary: fc.record({ kind: fc.constant('set' as const), k: key, v: fc.integer({ min: 0, max: 5 }) }) },
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('delete' as const), k: key }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'clear' as const }) },
  { weight: 2, arbitrary: fc.constant({ kind: 'snapshot' as const }) },
  { weight: 2, arbitrary: fc.constant({ kind: 'seal' as const }) },
)

function expectSame(m: PMap<string | number, number>, model: Map<string | number, number>): void {
  expect(m.size).toBe(model.size)
  const entries = m.entries()
  expect(entries.length).toBe(model.size)
  for (const [k, v] of model) {
    expect(m.has(k)).toBe(true)
    expect(m.get(k)).toBe(v)
  }
  for (const [k, v] of entries) expect(model.get(k)).toBe(v)
  expect([...m].length).toBe(model.size)
}

describe('PMap', () => {
  test('collision keys really collide', () => {
    expect(hashKey(collisions[0]!)).toBe(hashKey(collisions[1]!))
  })

  test('agrees with Map under random edits, persistent and transient; old snapshots never change', () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 120 }), fc.boolean(), (ops, startTransient) => {
        let m = PMap.empty<string | number, number>()
        if (startTransient) m = m.asMutable()
        const model = new Map<string | number, number>()
        const snapshots: Array<[PMap<string | number, number>, Map<string | number, number>]> = []
        for (const o of ops) {
          switch (o.kind) {
            case 'set':
              m = m.set(o.k, o.v)
              model.set(o.k, o.v)
              break
            case 'delete':
              m = m.delete(o.k)
              model.delete(o.k)
              break
            case 'clear':
              m = m.clear()
              model.clear()
              break
            case 'snapshot': {
              // Seal, keep the snapshot, continue on a fresh transient copy.
              const sealed = m.asImmutable()
              snapshots.push([sealed, new Map(model)])
              m = sealed.asMutable()
              break
            }
            case 'seal':
              m = m.isTransient ? m.asImmutable() : m.asMutable()
              break
          }
          expect(m.size).toBe(model.size)
        }
        expectSame(m, model)
        for (const [snap, copy] of snapshots) expectSame(snap, copy)
      }),
      { numRuns: 400 },
    )
  })

  test('canonical: the iteration order depends only on the keys, not on the history', () => {
    fc.assert(
      fc.property(fc.uniqueArray(key, { maxLength: 60, comparator: 'SameValueZero' }), fc.array(key, { maxLength: 30 }), fc.integer(), (keys, extra, seed) => {
        const index = new Map(keys.map((k, i) => [k, i] as const)) // SameValueZero, like PMap
        const direct = PMap.from(keys.map((k, i) => [k, i] as const))
        // Another history: a shuffled insert order, with extra keys inserted and deleted again.
        const order = keys.map((k, i) => ({ k, r: (i * 7919 + seed) % 101 })).sort((a, b) => a.r - b.r).map((x) => x.k)
        let other = PMap.empty<string | number, number>().asMutable()
        for (const k of extra) other = other.set(k, -1)
        for (const k of order) other = other.set(k, index.get(k)!)
        for (const k of extra) if (!index.has(k)) other = other.delete(k)
        other = other.asImmutable()
        expect(other.keys()).toEqual(direct.keys())
        expect(other.values()).toEqual(direct.values())
      }),
      { numRuns: 300 },
    )
  })

  test('keys compare with ===: 1 and "1" differ, -0 is 0, NaN finds itself', () => {
    const m = PMap.from<string | number, string>([[1, 'n'], ['1', 's'], [NaN, 'nan'], [-0, 'zero']])
    expect(m.size).toBe(4)
    expect(m.get(1)).toBe('n')
    expect(m.get('1')).toBe('s')
    expect(m.get(NaN)).toBe('nan')
    expect(m.get(0)).toBe('zero')
    expect(m.has(2)).toBe(false)
    expect(m.set(1, 'n')).toBe(m) // setting the same value changes nothing
  })

  test('a transient copy changes in place; its source does not change', () => {
    const base = PMap.from<string, number>([['a', 1]])
    const t = base.asMutable()
    expect(t.set('b', 2)).toBe(t)
    expect(t.delete('a')).toBe(t)
    expect(t.wasAltered()).toBe(true)
    expect(base.entries()).toEqual([['a', 1]])
    const sealed = t.asImmutable()
    expect(sealed.set('c', 3)).not.toBe(sealed)
    expect(sealed.entries()).toEqual([['b', 2]])
  })

  test('deep tries: a working copy pushes entries down and pulls them up in place, snapshots untouched', () => {
    // Thousands of keys: every level of the trie splits and merges, on nodes the working
    // copy owns (changed in place) and on nodes a snapshot shares (copied).
    const model = new Map<string | number, number>()
    let m = PMap.empty<string | number, number>().asMutable()
    const snapshots: Array<[PMap<string | number, number>, Map<string | number, number>]> = []
    for (let round = 0; round < 6; round++) {
      for (let i = 0; i < 3000; i++) {
        const k = (i * 7 + round) % 5 === 0 ? i * 31 + round : `k${(i * 7919 + round * 104729) % 9000}`
        if ((i + round) % 4 === 0) {
          const had = model.has(k)
          const size = m.size
          m = m.delete(k)
          model.delete(k)
          expect(m.size).toBe(had ? size - 1 : size)
        } else {
          m = m.set(k, i)
          model.set(k, i)
        }
      }
      expect(m.size).toBe(model.size)
      const sealed = m.asImmutable()
      snapshots.push([sealed, new Map(model)])
      m = sealed.asMutable()
    }
    /** Entries as [key, value] sorted by key, from the map's own iteration and from the model. */
    const sorted = (entries: Array<[string | number, number]>): string => JSON.stringify(entries.map(([k, v]) => [typeof k, String(k), v]).sort())
    const check = (map: PMap<string | number, number>, copy: Map<string | number, number>): void => {
      expect(map.size).toBe(copy.size)
      expect(sorted(map.entries())).toBe(sorted([...copy]))
      expect([...copy].every(([k, v]) => map.get(k) === v)).toBe(true)
    }
    check(m, model)
    for (const [snap, copy] of snapshots) check(snap, copy)
    // Canonical after all that: the same order as a map built directly.
    expect(m.keys()).toEqual(PMap.from([...model]).keys())
  })

  test('a working copy that starts empty (entries held aside, then one bulk build) makes the same trie as inserts one by one', () => {
    /** Whether two tries have the same nodes, slot by slot (owner slots aside). */
    const sameTrie = (a: PMap<string | number, number>, b: PMap<string | number, number>): boolean => {
      const same = (x: unknown, y: unknown): boolean => {
        if (!Array.isArray(x) || !Array.isArray(y)) return Object.is(x, y)
        if (x.length !== y.length) return false
        for (let i = 0; i < x.length; i++) if (i !== 2 && !same(x[i], y[i])) return false
        return true
      }
      const root = (m: PMap<string | number, number>): unknown => (m as unknown as { root: unknown }).root
      return same(root(a), root(b))
    }
    const sets = [
      collisions,
      [...Array.from({ length: 3000 }, (_, i) => (i % 3 === 0 ? i - 1500 : `key-${i}`)), ...collisions, NaN, 0.5], // collision nodes built in bulk
      [0, -0, NaN, 0.5, 1e300, 'a', '1', 1, ...collisions.slice(0, 4)],
      ...Array.from({ length: 20 }, (_, n) => Array.from({ length: n }, (_, i) => `s${i * 37}`)),
    ]
    for (const keys of sets) {
      let oneByOne = PMap.empty<string | number, number>() // persistent: never held aside
      keys.forEach((k, i) => (oneByOne = oneByOne.set(k, i)))
      const work = PMap.empty<string | number, number>().asMutable()
      keys.forEach((k, i) => work.set(k, i))
      expect(work.size).toBe(oneByOne.size)
      expect(keys.every((k) => Object.is(work.get(k), oneByOne.get(k)) && work.has(k))).toBe(true)
      const bulk = work.asImmutable()
      expect(sameTrie(bulk, oneByOne)).toBe(true)
      expect(bulk.keys()).toEqual(oneByOne.keys())
    }
  })

  test('a working copy that starts empty: results, sizes and wasAltered as in the trie', () => {
    const work = PMap.empty<string, number | undefined>().asMutable()
    expect(work.wasAltered()).toBe(false)
    work.set('a', undefined)
    expect(work.wasAltered()).toBe(true)
    expect(work.has('a')).toBe(true)
    expect(work.size).toBe(1)
    const again = PMap.empty<string, number | undefined>().asMutable()
    again.delete('x')
    again.clear()
    expect(again.wasAltered()).toBe(false)
    // Same value again: no change; an undefined value replaced: a change.
    const m = PMap.from<string, number | undefined>([['u', undefined], ['n', NaN]]).asMutable()
    const fresh = PMap.empty<string, number | undefined>().asMutable()
    fresh.set('u', undefined)
    fresh.set('n', NaN)
    const sealed = fresh.asImmutable().asMutable()
    sealed.set('u', undefined)
    sealed.set('n', NaN)
    expect(sealed.wasAltered()).toBe(false)
    m.clear()
    m.set('u', 1)
    m.set('u', 1)
    expect(m.size).toBe(1)
    expect([...m]).toEqual([['u', 1]])
    // Iterating a working copy builds its trie; it goes on changing in place.
    const it = PMap.empty<string, number>().asMutable()
    for (let i = 0; i < 40; i++) it.set(`k${i}`, i)
    expect(it.keys().length).toBe(40)
    it.set('k40', 40)
    it.delete('k0')
    expect(it.size).toBe(40)
    expect(it.asImmutable().entries()).toEqual(PMap.from(Array.from({ length: 40 }, (_, i) => [`k${i + 1}`, i + 1] as [string, number])).entries())
  })
})
