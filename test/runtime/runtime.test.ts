import { describe, expect, test } from 'vitest'
import {
  MemoryLog,
  MemoryLogClient,
  ObjectError,
  ObjectPoisonedError,
  connect,
  currentEntry,
  defineObject,
  encodeOp,
  streamOf,
} from '../../object-runtime/index.ts'
import type { LogClient, ObjectHandle } from '../../object-runtime/index.ts'
import { Counter, QMap, Queue } from '../../objects/index.ts'
import { cluster, rejection, tick } from './helpers.ts'
import { Map as ImmutableMap } from 'immutable'

const Leaderboard = defineObject({
  name: 'Leaderboard',
  initial: () => ({ scores: {} as Record<string, number> }),
  mutators: {
    add(state, player: string, pts: number) {
      state.scores[player] = (state.scores[player] ?? 0) + pts
      return state.scores[player]
    },
  },
  accessors: {
    score(state, player: string) {
      return state.scores[player] ?? 0
    },
    top(state, n: number) {
      return Object.entries(state.scores)
        .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
        .slice(0, n)
    },
    all(state) {
      return state.scores
    },
  },
})

/** Fails when `value` < 0: a mutator bug that must poison, identically everywhere. */
const Fragile = defineObject({
  name: 'Fragile',
  initial: () => ({ total: 0 }),
  mutators: {
    add(state, value: number) {
      if (value < 0) throw new Error(`negative value ${value}`)
      state.total += value
      return state.total
    },
  },
  accessors: {
    total(state) {
      return state.total
    },
  },
})

/** A client whose subscription pushes arrive `delayMs` late: a follower that lags. */
function laggingPushes(inner: LogClient, delayMs: number): LogClient {
  return {
    append: (e) => inner.append(e),
    read: (r) => inner.read(r),
    readStream: (s, r) => inner.readStream(s, r),
    tail: (s) => inner.tail(s),
    trim: (s, b) => inner.trim(s, b),
    close: () => inner.close(),
    subscribe: (streams, from, onEntries, onError) =>
      inner.subscribe(streams, from, (entries, next) => void setTimeout(() => onEntries(entries, next), delayMs), onError),
  }
}

describe('runtime basics', () => {
  test('a custom object: mutators return their value at their position, accessors read', async () => {
    const c = await cluster(1)
    const board = c.runtimes[0]!.open(Leaderboard, 'board')
    expect(await board.add('ann', 3)).toBe(3)
    expect(await board.add('ann', 4)).toBe(7)
    expect(await board.add('bob', 1)).toBe(1)
    expect(await board.score('ann')).toBe(7)
    expect(await board.top(1)).toEqual([['ann', 7]])
    expect(board.version).toBe(2)
    await c.close()
  })

  test('opening a name twice gives the same handle; another type under that name is refused', async () => {
    const c = await cluster(1)
    const rt = c.runtimes[0]!
    const a = rt.open(QMap<string, number>, 'm')
    const b = rt.open(QMap<string, number>(), 'm')
    expect(a).toBe(b)
    const err = (() => {
      try {
        rt.open(Counter, 'm')
      } catch (e) {
        return e
      }
    })()
    expect(err).toBeInstanceOf(ObjectError)
    expect((err as ObjectError).code).toBe('type_mismatch')
    await c.close()
  })

  test('concurrent mutators from many runtimes: every call gets its own answer', async () => {
    const c = await cluster(3)
    const counters = c.runtimes.map((rt) => rt.open(Counter, 'hits'))
    const answers = await Promise.all(counters.flatMap((counter) => Array.from({ length: 20 }, () => counter.add(1))))
    expect(answers.sort((x, y) => x - y)).toEqual(Array.from({ length: 60 }, (_, i) => i + 1))
    for (const counter of counters) expect(await counter.get()).toBe(60)
    await c.close()
  })

  test('a dequeue gives each item to exactly one of several concurrent consumers', async () => {
    const c = await cluster(3)
    const queues = c.runtimes.map((rt) => rt.open(Queue<number>, 'jobs'))
    await Promise.all(Array.from({ length: 90 }, (_, i) => queues[i % 3]!.enqueue(i)))
    const taken = await Promise.all(queues.flatMap((q) => Array.from({ length: 40 }, () => q.dequeue())))
    const items = taken.filter((x): x is number => x !== undefined)
    expect(items.length).toBe(90)
    expect(new Set(items).size).toBe(90)
    expect(taken.filter((x) => x === undefined).length).toBe(30)
    await c.close()
  })

  test('an object opened late catches up on its history, also in a runtime that already follows others', async () => {
    const c = await cluster(2)
    const [a, b] = c.runtimes
    const counterA = a!.open(Counter, 'late')
    for (let i = 0; i < 25; i++) await counterA.add(2)
    const other = b!.open(Counter, 'other')
    await other.add(1)
    const counterB = b!.open(Counter, 'late')
    expect(await counterB.get()).toBe(50)
    expect(counterB.version).toBe(counterA.version)
    expect(counterB.stateHash()).toBe(counterA.stateHash())
    await c.close()
  })

  test('an entry on several streams is applied once to each object it names', async () => {
    const c = await cluster(1)
    const rt = c.runtimes[0]!
    const x = rt.open(Counter, 'x')
    const y = rt.open(Counter, 'y')
    await x.add(1)
    await y.add(10)
    const data = encodeOp({ type: 'Counter', version: 1, mutator: 'add', args: [5] })
    const [p] = await c.clients[0]!.append([{ streams: [streamOf('x'), streamOf('y')], data }])
    expect(await x.get()).toBe(6)
    expect(await y.get()).toBe(15)
    expect(x.version).toBe(p)
    expect(y.version).toBe(p)
    // A fresh runtime replaying the log agrees.
    const late = await c.add()
    expect(await late.open(Counter, 'y').get()).toBe(15)
    await c.close()
  })

  test('arguments that are not plain data are refused before anything is appended', async () => {
    const c = await cluster(1)
    const m = c.runtimes[0]!.open(QMap<string, unknown>, 'm')
    const err = await rejection(m.set('k', new Map([[1, 2]])))
    expect((err as ObjectError).code).toBe('bad_argument')
    expect(c.log.length).toBe(0)
    // undefined survives the trip (it is not turned into null).
    await m.set('u', { a: undefined, b: [undefined, 1] })
    expect(await m.get('u')).toEqual({ a: undefined, b: [undefined, 1] })
    expect(await m.has('u')).toBe(true)
    await c.close()
  })

  test('snapshots stay valid across later writes (persistent root and draft root)', async () => {
    const Snap = defineObject({
      name: 'Snap',
      initial: () => ImmutableMap<string, number>(),
      mutators: {
        set(map, k: string, v: number) {
          map.set(k, v)
        },
      },
      accessors: {
        snapshot(map) {
          return map
        },
      },
    })
    const c = await cluster(1)
    const rt = c.runtimes[0]!
    const snap = rt.open(Snap, 's')
    await snap.set('a', 1)
    const before = await snap.snapshot()
    await Promise.all(Array.from({ length: 20 }, (_, i) => snap.set(`k${i}`, i)))
    await snap.set('a', 2)
    expect(before.get('a')).toBe(1)
    expect(before.size).toBe(1)
    expect((await snap.snapshot()).size).toBe(21)

    const board = rt.open(Leaderboard, 'b')
    await board.add('x', 1)
    const scores = await board.all()
    await board.add('x', 1)
    expect(scores).toEqual({ x: 1 })
    expect(Object.isFrozen(scores)).toBe(true)
    await c.close()
  })

  test('currentEntry() gives the position and log time of the op being applied', async () => {
    let now = 5000
    const c = await cluster(1, { log: { clock: () => now } })
    const Stamps = defineObject({
      name: 'Stamps',
      initial: () => ({ seen: [] as Array<[number, number]> }),
      mutators: {
        stamp(state) {
          const { position, ts } = currentEntry()
          state.seen.push([position, ts])
          return position
        },
      },
      accessors: {
        seen(state) {
          return state.seen
        },
      },
    })
    const s = c.runtimes[0]!.open(Stamps, 'st')
    const p0 = await s.stamp()
    now = 6000
    const p1 = await s.stamp()
    expect(await s.seen()).toEqual([[p0, 5000], [p1, 6000]])
    expect(() => currentEntry()).toThrow(/inside a mutator/)
    await c.close()
  })

  test('reserved and duplicate names are refused by defineObject', () => {
    const bad = (): unknown =>
      defineObject({
        name: 'Bad',
        initial: () => ({}),
        mutators: { version: () => undefined },
      })
    expect(bad).toThrow(/reserved/)
    expect(() =>
      defineObject({ name: 'Dup', initial: () => ({}), mutators: { x: () => undefined }, accessors: { x: () => 1 } }),
    ).toThrow(/both a mutator and an accessor/)
  })

  test('after close, calls reject with runtime_closed', async () => {
    const c = await cluster(1)
    const rt = c.runtimes[0]!
    const counter = rt.open(Counter, 'c')
    await counter.add(1)
    await rt.close()
    expect(((await rejection(counter.add(1))) as ObjectError).code).toBe('runtime_closed')
    expect(((await rejection(counter.get())) as ObjectError).code).toBe('runtime_closed')
  })

  test('connect({ servers }) needs at least one server (real clusters: test/cluster/objects-cluster.test.ts)', async () => {
    const err = await rejection(connect({ servers: [] }))
    expect((err as ObjectError).code).toBe('bad_argument')
  })

  test('a history that was trimmed without a checkpoint surfaces trimmed, it is not skipped', async () => {
    const c = await cluster(1)
    const counter = c.runtimes[0]!.open(Counter, 'c')
    for (let i = 0; i < 3; i++) await counter.add(1)
    await c.clients[0]!.trim(streamOf('c'), 2)
    const late = await c.add()
    const other = late.open(Counter, 'other')
    // A clear error (no complete checkpoint covers the trim point), with the log's `trimmed` as its cause.
    const err = await rejection(late.open(Counter, 'c').get())
    expect((err as ObjectError).code).toBe('history_trimmed')
    // It fails again on the next call (no silent skip), and the runtime's other objects are unaffected.
    expect(((await rejection(late.open(Counter, 'c').add(1))) as ObjectError).code).toBe('history_trimmed')
    expect(await other.add(5)).toBe(5)
    expect(await other.get()).toBe(5)
    await c.close()
  })
  test('a followed object whose history is trimmed past what it needs fails alone', async () => {
    const log = new MemoryLog()
    const writer = await connect({ log: new MemoryLogClient(log), closeLog: true })
    const reader = await connect({ log: laggingPushes(new MemoryLogClient(log), 1000), closeLog: true, config: { followGraceMs: 1 } })
    const [wa, wb] = [writer.open(Counter, 'a'), writer.open(Counter, 'b')]
    const [ra, rb] = [reader.open(Counter, 'a'), reader.open(Counter, 'b')]
    expect(await ra.get()).toBe(0)
    expect(await rb.get()).toBe(0)
    for (let i = 0; i < 3; i++) await wa.add(1)
    await wb.add(7)
    await writer.log.trim(streamOf('a'), log.length)
    expect(((await rejection(ra.get())) as ObjectError).code).toBe('history_trimmed')
    expect(await rb.get()).toBe(7)
    await writer.close()
    await reader.close()
  })
})

describe('consistency', () => {
  test('a linearizable read sees a write another runtime completed before the read started', async () => {
    const log = new MemoryLog()
    const writer = await connect({ log: new MemoryLogClient(log), closeLog: true })
    // The reader's pushes lag 1 s: only the tail check can make it see the write.
    const readerClient = new MemoryLogClient(log)
    const reader = await connect({ log: laggingPushes(readerClient, 1000), closeLog: true, config: { followGraceMs: 1 } })
    const w = writer.open(QMap<string, number>, 'm')
    const r = reader.open(QMap<string, number>, 'm')
    expect(await r.get('k')).toBeUndefined()
    for (let i = 1; i <= 5; i++) {
      await w.set('k', i)
      expect(await r.get('k', { consistency: 'cached' })).toBe(i - 1 === 0 ? undefined : i - 1)
      expect(await r.get('k')).toBe(i)
    }
    await writer.close()
    await reader.close()
  })

  test('a cached read does not contact the log', async () => {
    const c = await cluster(1)
    const m = c.runtimes[0]!.open(QMap<string, number>, 'm')
    await m.set('a', 1)
    await tick()
    const client = c.clients[0]!
    const before = { ...client.calls }
    for (let i = 0; i < 10; i++) expect(await m.get('a', { consistency: 'cached' })).toBe(1)
    expect(await m.size({ consistency: 'cached' })).toBe(1)
    expect(client.calls).toEqual(before)
    // A linearizable read does: one tail check.
    await m.get('a')
    expect(client.calls.tail).toBe(before.tail + 1)
    await c.close()
  })

  test('concurrent linearizable reads share tail checks: at most one in flight plus one queued', async () => {
    // Tail requests wait at a gate the test opens, so "in flight" is under the test's control.
    const log = new MemoryLog()
    const inner = new MemoryLogClient(log)
    const gates: Array<() => void> = []
    let tailCalls = 0
    const gated: LogClient = {
      append: (e) => inner.append(e),
      read: (r) => inner.read(r),
      readStream: (s, r) => inner.readStream(s, r),
      trim: (s, b) => inner.trim(s, b),
      subscribe: (st, f, on, err) => inner.subscribe(st, f, on, err),
      close: () => inner.close(),
      tail: async (s) => {
        // Opening looks up the newest checkpoint (ci/ streams): not a read's tail check.
        if (s?.some((name) => name.startsWith('ci/')) === true) return inner.tail(s)
        tailCalls++
        await new Promise<void>((resolve) => gates.push(resolve))
        return inner.tail(s)
      },
    }
    const rt = await connect({ log: gated, closeLog: true })
    const writer = await connect({ log: new MemoryLogClient(log), closeLog: true })
    const m = rt.open(QMap<string, number>, 'm')
    const first = Array.from({ length: 30 }, () => m.get('a')) // one request sent, held at the gate
    await tick()
    expect(tailCalls).toBe(1)
    // A write completes now; readers arriving after it must not be served by the request in flight.
    await writer.open(QMap<string, number>, 'm').set('a', 1)
    const second = Array.from({ length: 30 }, () => m.get('a'))
    await tick()
    expect(tailCalls).toBe(1) // the late readers wait in one queued request
    gates.shift()!()
    await tick()
    expect(tailCalls).toBe(2) // the queued one goes out when the first returns
    gates.shift()!()
    const [early, late] = [await Promise.all(first), await Promise.all(second)]
    expect(late.every((v) => v === 1)).toBe(true)
    expect(early.every((v) => v === undefined || v === 1)).toBe(true)
    expect(tailCalls).toBe(2)
    await rt.close()
    await writer.close()
  })

  test('following by subscription: syncs after a write find nothing to read', async () => {
    const c = await cluster(2)
    const [a, b] = c.runtimes
    const ma = a!.open(QMap<string, number>, 'm')
    const mb = b!.open(QMap<string, number>, 'm')
    await mb.size()
    const readsBefore = b!.stats.reads
    for (let i = 0; i < 20; i++) await ma.set(`k${i}`, i)
    await tick(5)
    expect(await mb.size()).toBe(20)
    expect(b!.stats.reads).toBe(readsBefore)
    expect(b!.stats.pushes).toBeGreaterThan(0)
    await c.close()
  })
})

describe('poisoning', () => {
  async function expectSamePoison(handles: Array<ObjectHandle<typeof Fragile>>, position: number, pattern: RegExp): Promise<void> {
    const errors: ObjectPoisonedError[] = []
    for (const h of handles) {
      const err = await rejection(h.total())
      expect(err).toBeInstanceOf(ObjectPoisonedError)
      errors.push(err as ObjectPoisonedError)
      expect(((await rejection(h.add(1))) as ObjectPoisonedError).code).toBe('object_poisoned')
      expect(((await rejection(h.total({ consistency: 'cached' }))) as ObjectPoisonedError).position).toBe(position)
      expect(h.poisoned).toBe(err)
    }
    for (const err of errors) {
      expect(err.position).toBe(position)
      expect(err.message).toMatch(pattern)
      expect(err.message).toBe(errors[0]!.message)
    }
    const versions = new Set(handles.map((h) => h.version))
    const hashes = new Set(handles.map((h) => h.stateHash()))
    expect(versions.size).toBe(1)
    expect(hashes.size).toBe(1)
  }

  test('a mutator that throws poisons the object at that op, identically on every runtime', async () => {
    const c = await cluster(2)
    const [a, b] = c.runtimes
    const fa = a!.open(Fragile, 'f')
    const fb = b!.open(Fragile, 'f')
    await fa.add(2)
    await fb.add(3)
    const bad = await rejection(fa.add(-1))
    expect(bad).toBeInstanceOf(ObjectPoisonedError)
    const position = (bad as ObjectPoisonedError).position
    // Ops after the poison are in the log but never applied.
    await c.clients[1]!.append([{ streams: [streamOf('f')], data: encodeOp({ type: 'Fragile', version: 1, mutator: 'add', args: [100] }) }])
    await b!.sync().catch(() => undefined)
    await expectSamePoison([fa, fb], position, /op Fragile\.add .* at log position \d+ could not be applied: mutator threw Error: negative value -1/)
    expect(fa.version).toBe(position - 1)
    // A runtime that replays from scratch reaches the same verdict.
    const late = await c.add()
    const fl = late.open(Fragile, 'f')
    await expectSamePoison([fa, fb, fl], position, /negative value/)
    await c.close()
  })

  test('an unknown op kind, an unknown mutator, another format version or garbage each poison, never skip', async () => {
    const cases: Array<[string, Uint8Array, RegExp]> = [
      ['unknown mutator', encodeOp({ type: 'Fragile', version: 1, mutator: 'explode', args: [] }), /unknown mutator "explode"/],
      ['newer format', encodeOp({ type: 'Fragile', version: 2, mutator: 'add', args: [1] }), /format version 2/],
      ['other type', encodeOp({ type: 'Counter', version: 1, mutator: 'add', args: [1] }), /op for type Counter/],
      ['unknown record kind', new Uint8Array([0x92, 0x07, 0x01]), /unknown record kind 7/],
      ['garbage', new Uint8Array([0xc1]), /undecodable entry/],
    ]
    for (const [, data, pattern] of cases) {
      const c = await cluster(2)
      const [a, b] = c.runtimes
      const fa = a!.open(Fragile, 'f')
      const fb = b!.open(Fragile, 'f')
      await fa.add(5)
      const [p] = await c.clients[0]!.append([{ streams: [streamOf('f')], data }])
      await expectSamePoison([fa, fb], p!, pattern)
      await c.close()
    }
  })
})

describe('determinism guard', () => {
  const Sloppy = defineObject({
    name: 'Sloppy',
    initial: () => ({ value: 0 }),
    mutators: {
      now(state) {
        state.value = Date.now()
      },
      random(state) {
        state.value = Math.random()
      },
      newDate(state) {
        state.value = new Date().getTime()
      },
      uuid(state) {
        state.value = crypto.randomUUID().length
      },
      perf(state) {
        state.value = performance.now()
      },
      sneaky(state) {
        try {
          state.value = Math.random()
        } catch {
          state.value = -1
        }
      },
      fine(state, when: number) {
        state.value = new Date(when).getTime()
      },
    },
    accessors: {
      value(state) {
        return state.value
      },
    },
  })

  test.each([
    ['now', 'Date.now()'],
    ['random', 'Math.random()'],
    ['newDate', 'new Date()'],
    ['uuid', 'crypto.randomUUID()'],
    ['perf', 'performance.now()'],
    ['sneaky', 'Math.random()'],
  ] as const)('%s: %s inside a mutator poisons with an error naming the mutator', async (mutator, what) => {
    const c = await cluster(1)
    const s = c.runtimes[0]!.open(Sloppy, 's')
    await s.fine(1234)
    const err = await rejection(s[mutator]())
    expect(err).toBeInstanceOf(ObjectPoisonedError)
    const cause = (err as Error).cause
    expect(cause).toBeInstanceOf(ObjectError)
    expect((cause as ObjectError).code).toBe('nondeterministic')
    expect((cause as Error).message).toContain(what)
    expect((cause as Error).message).toContain(`mutator "Sloppy.${mutator}" of object "s"`)
    // Outside mutators everything works as usual.
    expect(typeof Date.now()).toBe('number')
    expect(new Date().getTime()).toBeGreaterThan(0)
    expect(Math.random()).toBeLessThan(1)
    await c.close()
  })

  test('it can be switched off (production mode)', async () => {
    const c = await cluster(1, { config: { determinismGuard: false } })
    const s = c.runtimes[0]!.open(Sloppy, 's')
    await s.random()
    expect(await s.value()).toBeLessThan(1)
    await c.close()
  })
})
