// Type-level tests: `npx tsc --noEmit` fails if a wrong call below compiles (each
// `@ts-expect-error` must meet an error) or a right one does not. vitest runs the file
// too, but the checks happen at compile time; the runtime part only opens the objects.

import { describe, expect, expectTypeOf, test } from 'vitest'
import { MemoryLog, MemoryLogClient, connect, defineObject } from '../../object-runtime/index.ts'
import type { Runtime } from '../../object-runtime/index.ts'
import type { LockGrant } from '../../objects/index.ts'
import { Counter, List, Lock, QMap, QSet, Queue, Register, SortedMap } from '../../objects/index.ts'

/** Type-checks `body` without running it (the calls inside would fail at run time). */
function compileOnly(body: () => unknown): void {
  void body
}

interface User {
  name: string
  age: number
}

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
    top(state, n: number) {
      return Object.entries(state.scores).slice(0, n)
    },
  },
  conflictKeys: {
    add: (player) => [player],
  },
})

describe('types flow from definitions', () => {
  test('compile-time checks (the calls are type-checked, not run)', async () => {
    const rt = await connect({ log: new MemoryLogClient(new MemoryLog()), closeLog: true })
    compileOnly(() => checks(rt))
    await rt.close()
  })
})

function checks(rt: Runtime): void {
  {
    const users = rt.open(QMap<string, User>, 'users')
    const users2 = rt.open(QMap<string, User>(), 'users')
    expectTypeOf(users).toEqualTypeOf(users2)

    expectTypeOf(users.set('alice', { name: 'Alice', age: 3 })).toEqualTypeOf<Promise<boolean>>()
    expectTypeOf(users.get('alice')).toEqualTypeOf<Promise<User | undefined>>()
    expectTypeOf(users.get('alice', { consistency: 'cached' })).toEqualTypeOf<Promise<User | undefined>>()
    expectTypeOf(users.entries()).toEqualTypeOf<Promise<Array<[string, User]>>>()
    expectTypeOf(users.version).toEqualTypeOf<number>()
    expectTypeOf(users.stateHash()).toEqualTypeOf<string>()

    compileOnly(() => {
      // @ts-expect-error the key is a string
      void users.set(1, { name: 'x', age: 1 }).catch(() => undefined)
    })
    compileOnly(() => {
      // @ts-expect-error age is a number
      void users.set('bob', { name: 'Bob', age: 'five' }).catch(() => undefined)
    })
    compileOnly(() => {
      // @ts-expect-error a value is required
      void users.set('bob').catch(() => undefined)
    })
    compileOnly(() => {
      // @ts-expect-error not a consistency level
      void users.get('alice', { consistency: 'eventual' })
    })
    compileOnly(() => {
      // @ts-expect-error no such method
      void users.upsert('alice', { name: 'A', age: 1 })
    })

    const hits = rt.open(Counter, 'hits')
    expectTypeOf(hits.add(1)).toEqualTypeOf<Promise<number>>()
    compileOnly(() => {
      // @ts-expect-error a number
      void hits.add('1').catch(() => undefined)
    })

    const jobs = rt.open(Queue<{ id: number }>, 'jobs')
    expectTypeOf(jobs.dequeue()).toEqualTypeOf<Promise<{ id: number } | undefined>>()
    compileOnly(() => {
      // @ts-expect-error wrong item shape
      void jobs.enqueue({ id: 'one' }).catch(() => undefined)
    })

    const reg = rt.open(Register<string>, 'reg')
    expectTypeOf(reg.compareAndSet(undefined, 'x')).toEqualTypeOf<Promise<boolean>>()
    compileOnly(() => {
      // @ts-expect-error a string register
      void reg.set(5).catch(() => undefined)
    })

    const tags = rt.open(QSet<string>, 'tags')
    expectTypeOf(tags.values()).toEqualTypeOf<Promise<string[]>>()
    const todo = rt.open(List<string>, 'todo')
    expectTypeOf(todo.slice(0, 2, { consistency: 'cached' })).toEqualTypeOf<Promise<string[]>>()
    compileOnly(() => {
      // @ts-expect-error an index is a number
      void todo.insert('0', 'x').catch(() => undefined)
    })
    const scores = rt.open(SortedMap<number, string>, 'scores')
    expectTypeOf(scores.range(1, 10, 5)).toEqualTypeOf<Promise<Array<[number, string]>>>()
    compileOnly(() => {
      // @ts-expect-error numeric keys
      void scores.set('1', 'x').catch(() => undefined)
    })

    const lock = rt.open(Lock, 'lock')
    expectTypeOf(lock.acquire('me', 1000)).toEqualTypeOf<Promise<LockGrant>>()
    compileOnly(() => {
      // @ts-expect-error ttl is a number
      void lock.acquire('me', '1000').catch(() => undefined)
    })

    const board = rt.open(Leaderboard, 'board')
    expectTypeOf(board.add('ann', 1)).toEqualTypeOf<Promise<number>>()
    expectTypeOf(board.top(3)).toEqualTypeOf<Promise<Array<[string, number]>>>()
    compileOnly(() => {
      // @ts-expect-error points are numbers
      void board.add('ann', '1').catch(() => undefined)
    })
    compileOnly(() => {
      // @ts-expect-error too many arguments for a mutator (mutators take no options)
      void board.add('ann', 1, { consistency: 'cached' }).catch(() => undefined)
    })
  }
}

// Definition-time checks (compile-time; the bad one also throws when run).
const definitionChecks = (): unknown => defineObject({
  name: 'Typed',
  initial: () => ({ n: 0 }),
  mutators: {
    add(state, k: number) {
      expectTypeOf(state).toEqualTypeOf<{ n: number }>()
      state.n += k
    },
  },
  accessors: {
    get(state) {
      return state.n
    },
  },
  conflictKeys: {
    add: (k) => {
      expectTypeOf(k).toEqualTypeOf<number>()
      return [k]
    },
    // @ts-expect-error conflict keys only for declared mutators and accessors
    nope: () => [],
  },
})

test('conflict keys for undeclared names are refused at run time too', () => {
  expect(definitionChecks).toThrow(/conflictKeys names "nope"/)
})

defineObject({
  name: 'Strict',
  initial: () => ({ n: 0 }),
  mutators: {
    add(state, k: number) {
      compileOnly(() => {
        // @ts-expect-error the state is typed from initial()
        state.m = k
      })
    },
  },
})
