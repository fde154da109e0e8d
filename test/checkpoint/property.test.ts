// Property (STYLE.md #9): checkpoint at step k, then the remaining ops, equals replaying
// all ops — for every built-in object and a custom one. Runtime A applies every op by
// playback and writes the checkpoint after op k (which trims the history below it); a
// fresh runtime B then opens the object from that checkpoint plus the ops after it.
// Their versions and state hashes must be equal, and so must every observer's answer.
// Seeds print on failure (fast-check); CKPT_RUNS raises the number of runs.

import fc from 'fast-check'
import { describe, expect, test } from 'vitest'
import { PMap, defineObject } from '../../object-runtime/index.ts'
import type { AnyObjectDefinition, DefinitionSource } from '../../object-runtime/index.ts'
import { Counter, List, Lock, QMap, QSet, Queue, Register, SortedMap } from '../../objects/index.ts'
import { cluster } from '../runtime/helpers.ts'

const RUNS = Number(process.env.CKPT_RUNS ?? 12)

interface Call {
  readonly name: string
  readonly args: readonly unknown[]
}
const call = (name: string, ...args: unknown[]): Call => ({ name, args })

type Dynamic = Record<string, (...args: unknown[]) => Promise<unknown>> & { version: number; stateHash(): string; sync(): Promise<void> }

const str = fc.string({ maxLength: 6 })
const longStr = fc.oneof(str, fc.string({ minLength: 100, maxLength: 400 }))
const key = fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f', 'g')
const plain: fc.Arbitrary<unknown> = fc.oneof(
  fc.integer(),
  fc.double({ noNaN: true }),
  longStr,
  fc.constant(undefined),
  fc.constant(null),
  fc.boolean(),
  fc.record({ n: fc.integer(), s: str, u: fc.constant(undefined), d: fc.date({ noInvalidDate: true }) }),
  fc.array(fc.oneof(fc.integer(), str), { maxLength: 4 }),
  fc.uint8Array({ maxLength: 8 }),
)

/** A custom object in draft mode: nested plain data, a JS Map, and a PMap field updated persistently. */
const Notebook = defineObject({
  name: 'Notebook',
  initial: () => ({ pages: {} as Record<string, unknown>, history: [] as unknown[], counts: new Map<string, number>(), big: PMap.empty<string, unknown>() }),
  mutators: {
    write(state, page: string, value: unknown) {
      state.pages[page] = value
      state.history.push([page, value])
      if (state.history.length > 5) state.history.shift()
      state.counts.set(page, (state.counts.get(page) ?? 0) + 1)
      state.big = state.big.set(page, value)
      return state.history.length
    },
    tear(state, page: string) {
      delete state.pages[page]
      state.counts.delete(page)
      state.big = state.big.delete(page)
    },
  },
  accessors: {
    page: (state, page: string) => state.pages[page],
    counts: (state) => [...state.counts.entries()],
  },
})

interface Spec {
  readonly title: string
  readonly def: DefinitionSource<AnyObjectDefinition>
  readonly ops: fc.Arbitrary<Call>
  readonly observers: readonly Call[]
}

const SPECS: Spec[] = [
  { title: 'Counter', def: Counter, ops: fc.integer({ min: -50, max: 50 }).map((d) => call('add', d)), observers: [call('get')] },
  {
    title: 'Register',
    def: Register<unknown>,
    ops: fc.oneof(plain.map((v) => call('set', v)), fc.tuple(plain, plain).map(([a, b]) => call('compareAndSet', a, b))),
    observers: [call('get')],
  },
  {
    title: 'QMap',
    def: QMap<string, unknown>,
    ops: fc.oneof(
      { weight: 6, arbitrary: fc.tuple(key, plain).map(([k, v]) => call('set', k, v)) },
      { weight: 2, arbitrary: key.map((k) => call('delete', k)) },
      { weight: 1, arbitrary: fc.constant(call('clear')) },
    ),
    observers: [call('size'), call('keys'), call('entries')],
  },
  {
    title: 'QSet',
    def: QSet<string | number>,
    ops: fc.oneof(fc.oneof(key, fc.integer({ min: 0, max: 9 })).map((v) => call('add', v)), key.map((v) => call('delete', v))),
    observers: [call('size'), call('values')],
  },
  {
    title: 'Queue',
    def: Queue<unknown>,
    ops: fc.oneof({ weight: 3, arbitrary: plain.map((v) => call('enqueue', v)) }, { weight: 1, arbitrary: fc.constant(call('dequeue')) }),
    observers: [call('size'), call('peek')],
  },
  {
    title: 'List',
    def: List<unknown>,
    ops: fc.oneof(
      plain.map((v) => call('push', v)),
      fc.tuple(fc.integer({ min: -3, max: 6 }), plain).map(([i, v]) => call('insert', i, v)),
      fc.integer({ min: -3, max: 6 }).map((i) => call('removeAt', i)),
    ),
    observers: [call('slice'), call('length')],
  },
  {
    title: 'SortedMap',
    def: SortedMap<number, unknown>,
    ops: fc.oneof(fc.tuple(fc.integer({ min: 0, max: 30 }), plain).map(([k, v]) => call('set', k, v)), fc.integer({ min: 0, max: 30 }).map((k) => call('delete', k))),
    observers: [call('entries'), call('size'), call('minKey')],
  },
  {
    title: 'Lock',
    def: Lock,
    ops: fc.oneof(
      fc.tuple(fc.constantFrom('n1', 'n2'), fc.integer({ min: 1, max: 100 })).map(([o, t]) => call('acquire', o, t)),
      fc.tuple(fc.constantFrom('n1', 'n2'), fc.integer({ min: -1, max: 40 })).map(([o, t]) => call('release', o, t)),
      fc.constant(call('check')),
    ),
    observers: [call('info')],
  },
  {
    title: 'custom (Notebook, draft mode)',
    def: Notebook,
    ops: fc.oneof({ weight: 3, arbitrary: fc.tuple(key, plain).map(([k, v]) => call('write', k, v)) }, { weight: 1, arbitrary: key.map((k) => call('tear', k)) }),
    observers: [call('counts'), ...['a', 'b', 'c'].map((k) => call('page', k))],
  },
]

function invoke(h: Dynamic, c: Call): Promise<unknown> {
  const fn = h[c.name]
  if (fn === undefined) throw new Error(`no method ${c.name}`)
  return fn(...c.args)
}

describe('checkpoint at step k, then the rest, equals replaying everything', () => {
  for (const spec of SPECS) {
    test(spec.title, async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(spec.ops, { maxLength: 40 }), fc.nat(), async (ops, kSeed) => {
          const k = ops.length === 0 ? 0 : kSeed % (ops.length + 1)
          // Small chunks, so that states of a few hundred bytes span several chunks.
          const c = await cluster(1, { log: { clock: () => 1_000 }, config: { checkpoint: { chunkBytesMax: 1024 } } })
          try {
            const rtA = c.runtimes[0]!
            const a = rtA.open(spec.def, 'o') as unknown as Dynamic
            for (const op of ops.slice(0, k)) await invoke(a, op)
            const written = await rtA.checkpoint(a)
            expect(written.outcome).toBe('written')
            for (const op of ops.slice(k)) await invoke(a, op)
            await a.sync()
            const rtB = await c.add()
            const b = rtB.open(spec.def, 'o') as unknown as Dynamic
            await b.sync()
            expect(b.version).toBe(a.version)
            expect(b.stateHash()).toBe(a.stateHash())
            for (const obs of spec.observers) expect(await invoke(b, obs)).toEqual(await invoke(a, obs))
            // B applied only the ops after the checkpoint (the history below it is trimmed).
            expect(rtB.stats.entriesApplied).toBe(ops.length - k)
            // And B goes on like A.
            if (ops.length > 0) {
              await invoke(b, ops[0]!)
              await a.sync()
              expect(a.stateHash()).toBe(b.stateHash())
            }
          } finally {
            await c.close()
          }
        }),
        { numRuns: RUNS },
      )
    })
  }
})
