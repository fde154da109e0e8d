// The transaction's view of an object: ops applied there must give what playback of the
// commit gives (args as decoded from the log, results, sealed persistent-root results),
// on every path the view takes (flat args used as they are, other args copied through
// the codec, objects opened during the transaction, concurrent first uses of one object).
import { afterEach, describe, expect, test } from 'vitest'
import { PMap, TransactionAborted, defineObject, decodeRecord, streamOf } from '../../object-runtime/index.ts'
import type { AppendEntry, AppendOptions, Runtime } from '../../object-runtime/index.ts'
import { QMap } from '../../objects/index.ts'
import { cluster } from '../runtime/helpers.ts'
import type { Cluster } from '../runtime/helpers.ts'

let c: Cluster | undefined
afterEach(async () => {
  await c?.close()
  c = undefined
})

/** How a mutator saw its args: -0 and the type are kept apart from 0 and from each other. */
const describeArg = (a: unknown): string => (Object.is(a, -0) ? '-0' : `${typeof a}:${JSON.stringify(a)}:${Object.isFrozen(a)}`)

/** Records how each call saw its args, and hands out its own state (a PMap root) on request. */
const Recorder = defineObject({
  name: 'Recorder',
  initial: () => PMap.empty<string, unknown>(),
  mutators: {
    record(map, key: string, ...args: unknown[]): string[] {
      const seen = args.map(describeArg)
      map.set(key, seen)
      return seen
    },
    /** Returns the state itself (the working copy, during playback or on the view). */
    put(map, key: string, value: number): PMap<string, unknown> {
      map.set(key, value)
      return map
    },
    /** Changes an arg in place if it can (it must not be able to: args are frozen). */
    poke(map, key: string, arg: { n: number }): number {
      arg.n++
      map.set(key, arg.n)
      return arg.n
    },
  },
  accessors: {
    get(map, key: string): unknown {
      return map.get(key)
    },
  },
  conflictKeys: { record: (key) => [key], put: (key) => [key], poke: (key) => [key], get: (key) => [key] },
})

/** A draft-mode object (plain root, immer) whose mutator returns part of its state. */
const Lists = defineObject({
  name: 'Lists',
  initial: () => ({ items: [] as number[][] }),
  mutators: {
    push(state, n: number): number[][] {
      state.items.push([n, n * 2])
      return state.items
    },
  },
  accessors: {
    items(state): number[][] {
      return state.items
    },
  },
})

async function twoRuntimes(): Promise<[Runtime, Runtime]> {
  c = await cluster(2)
  return c.runtimes as [Runtime, Runtime]
}

describe('transaction views', () => {
  test('a mutator sees the args playback will see: -0 as 0, strings, numbers, null, booleans, nested values frozen', async () => {
    const [r1, r2] = await twoRuntimes()
    const a = r1.open(Recorder, 'r')
    const b = r2.open(Recorder, 'r')
    const argLists: unknown[][] = [
      ['s', 1, -1, 1.5, NaN, 2 ** 40, null, true, false],
      [-0],
      [0, -0, 'x'],
      ['ünïcode', '\u{1F600}'],
      [{ n: 1 }, [1, [2]], undefined],
      [new Date(0), new Uint8Array([1, 2])],
      new Array<number>(20).fill(3),
    ]
    const inTx = await r1.transaction(async () => {
      const out: unknown[] = []
      for (let i = 0; i < argLists.length; i++) out.push(await a.record(`k${i}`, ...argLists[i]!))
      return out
    })
    await r2.sync()
    for (let i = 0; i < argLists.length; i++) {
      expect(await b.get(`k${i}`)).toEqual(inTx[i]) // playback on another runtime
      expect(await a.get(`k${i}`)).toEqual(inTx[i]) // and on the committing one
    }
    expect(inTx[1]).toEqual(['number:0:true'])
    expect(a.stateHash()).toBe(b.stateHash())
  })

  test('args are copies: changing the caller\'s object after the call changes nothing, and a mutator cannot change them', async () => {
    const [r1] = await twoRuntimes()
    const m = r1.open(QMap<string, { n: number }>, 'm')
    const rec = r1.open(Recorder, 'r')
    const len = c!.log.length
    await r1.transaction(async () => {
      const o = { n: 1 }
      await m.set('k', o)
      o.n = 2
      expect(await m.get('k')).toEqual({ n: 1 })
    })
    expect(await m.get('k')).toEqual({ n: 1 })
    // A mutator that changes its (frozen) arg throws on the view: the transaction fails, nothing is logged.
    await expect(r1.transaction(() => rec.poke('p', { n: 1 }))).rejects.toThrow(/mutator threw/)
    expect(c!.log.length).toBe(len + 1)
    expect(rec.poisoned).toBeUndefined()
    expect(await rec.get('p')).toBeUndefined()
  })

  test('a mutator that returns the persistent root gets a sealed snapshot: later ops of the transaction do not change it', async () => {
    const [r1, r2] = await twoRuntimes()
    const a = r1.open(Recorder, 'r')
    const b = r2.open(Recorder, 'r')
    const [first, second] = await r1.transaction(async () => {
      const s1 = await a.put('x', 1)
      const s2 = await a.put('y', 2)
      await a.put('z', 3)
      return [s1, s2]
    })
    expect(first.get('x')).toBe(1)
    expect(first.has('y')).toBe(false)
    expect(second.get('y')).toBe(2)
    expect(second.has('z')).toBe(false)
    await r2.sync()
    expect([await b.get('x'), await b.get('y'), await b.get('z')]).toEqual([1, 2, 3])
  })

  test('draft-mode objects: results are plain copies, unchanged by later ops; the commit replays the same', async () => {
    const [r1, r2] = await twoRuntimes()
    const a = r1.open(Lists, 'l')
    const b = r2.open(Lists, 'l')
    const results = await r1.transaction(async () => [await a.push(1), await a.push(2), await a.items()])
    expect(results).toEqual([[[1, 2]], [[1, 2], [2, 4]], [[1, 2], [2, 4]]])
    await r2.sync()
    expect(await b.items()).toEqual([[1, 2], [2, 4]])
    expect(a.stateHash()).toBe(b.stateHash())
  })

  test('concurrent first uses of an object, one opened during the transaction: one view, own writes seen, one commit entry', async () => {
    const [r1, r2] = await twoRuntimes()
    const m = r1.open(QMap<string, number>, 'm')
    await m.set('a', 1)
    const out = await r1.transaction(async () => {
      const late = r1.open(QMap<string, number>, 'late') // opened after the transaction began
      await Promise.all([m.set('b', 2), late.set('x', 1), late.set('y', 2), m.get('a')])
      const [x, y, got] = await Promise.all([late.get('x'), late.get('y'), Promise.all([m.get('a'), m.get('b')])])
      return { x, y, got }
    })
    expect(out).toEqual({ x: 1, y: 2, got: [1, 2] })
    const entries = c!.log.readStream(streamOf('late'), { from: 0 }).entries
    expect(entries).toHaveLength(1)
    const rec = decodeRecord(entries[0]!.data)
    expect(rec.kind === 'tx' && rec.ops.map((o) => `${o.object}.${o.mutator}(${o.args.join()})`)).toEqual(['m.set(b,2)', 'late.set(x,1)', 'late.set(y,2)'])
    const late2 = r2.open(QMap<string, number>, 'late')
    expect([await late2.get('x'), await late2.get('y')]).toEqual([1, 2])
  })

  test('a transaction returns once this runtime has applied its commit: cached reads see it, also when pushes lag', async () => {
    c = await cluster(1)
    const held: Array<() => void> = []
    let hold = false
    const rt = await c.add({
      wrap: (client) =>
        Object.assign(Object.create(client) as typeof client, {
          subscribe: (...[streams, from, onEntries, onError]: Parameters<typeof client.subscribe>) =>
            client.subscribe(streams, from, (entries, next) => (hold ? held.push(() => onEntries(entries, next)) : onEntries(entries, next)), onError),
        }),
    })
    const m = rt.open(QMap<string, number>, 'm')
    await m.sync()
    for (let i = 0; i < 20; i++) {
      hold = i % 2 === 1 // every other commit: its push is held back, so the runtime must read it
      await rt.transaction(async () => {
        await m.set('k', ((await m.get('k')) ?? 0) + 1)
      })
      expect(await m.get('k', { consistency: 'cached' })).toBe(i + 1)
      hold = false
      for (const deliver of held.splice(0)) deliver()
    }
  })

  test('large transactions (many keys, many objects): every read and write key sent once, conflicts found on any of them', async () => {
    c = await cluster(1)
    const sent: Array<{ entries: readonly AppendEntry[]; options?: AppendOptions }> = []
    let hold = false // holds back the runtime's pushes: its local state goes stale
    const rt = await c.add({
      wrap: (client) =>
        Object.assign(Object.create(client) as typeof client, {
          append: (entries: readonly AppendEntry[], options?: AppendOptions) => {
            if (options?.reads !== undefined) sent.push({ entries, options })
            return client.append(entries, options)
          },
          subscribe: (...[streams, from, onEntries, onError]: Parameters<typeof client.subscribe>) =>
            client.subscribe(streams, from, (entries, next) => (hold ? undefined : onEntries(entries, next)), onError),
        }),
    })
    const other = c.runtimes[0]!
    const OBJECTS = 20
    const KEYS = 30
    const maps = Array.from({ length: OBJECTS }, (_, i) => rt.open(QMap<string, number>, `m${i}`))
    const others = Array.from({ length: OBJECTS }, (_, i) => other.open(QMap<string, number>, `m${i}`))
    const run = (): Promise<number> =>
      rt.transaction(
        async () => {
          let sum = 0
          for (let round = 0; round < 2; round++) {
            for (const m of maps) for (let k = 0; k < KEYS; k++) sum += (await m.get(`k${k}`)) ?? 0
          }
          for (const m of maps) for (let k = 0; k < KEYS; k += 2) await m.set(`k${k}`, 1)
          for (const m of maps) await m.set('k0', 2)
          return sum
        },
        { retries: 0 },
      )
    expect(await run()).toBe(0)
    expect(sent).toHaveLength(1)
    const { entries, options } = sent[0]!
    const reads = options!.reads!.map((r) => `${r.stream} ${r.key}`)
    expect(new Set(reads).size).toBe(reads.length)
    expect(reads).toHaveLength(OBJECTS * (KEYS + 1)) // each key once, and '*' once per object
    const keys = entries[0]!.keys!
    expect(new Set(keys).size).toBe(keys.length)
    expect([...keys].sort()).toEqual([...Array.from({ length: KEYS / 2 }, (_, i) => `=k${i * 2}`), '+'].sort())
    expect(entries[0]!.streams).toHaveLength(OBJECTS)
    // Another runtime writes a key the transaction reads (never writes), unseen by it: the first attempt conflicts.
    hold = true
    await others[OBJECTS - 1]!.set(`k${KEYS - 1}`, 5)
    const err = await run().then(
      () => null,
      (e: unknown) => e,
    )
    expect(err).toBeInstanceOf(TransactionAborted)
    expect((err as TransactionAborted).objectName).toBe(`m${OBJECTS - 1}`)
    expect((err as TransactionAborted).key).toBe(`k${KEYS - 1}`)
  })
})
