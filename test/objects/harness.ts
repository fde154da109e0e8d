// Shared property harnesses for objects (STYLE.md #9): each object supplies a generator
// of calls and a plain reference model; the harness checks
//
//   1. model agreement: one runtime, a random sequence of mutator and accessor calls, each
//      answer equal to the model's;
//   2. convergence: three runtimes on one log issue random mutator calls concurrently;
//      afterwards all have the same version and state hash, equal to a fresh runtime
//      replaying the log, and the state equals the model folded over the log in order
//      (the checker reads the log itself, outside the runtime).
//
// fast-check prints the seed and the shrunk counterexample on failure; rerun one with
// `fc.assert(..., { seed, path })`.

import fc from 'fast-check'
import { expect, test } from 'vitest'
import { decodeRecord, streamOf } from '../../object-runtime/index.ts'
import type { AnyObjectDefinition, DefinitionSource } from '../../object-runtime/index.ts'
import { cluster } from '../runtime/helpers.ts'

/** One call: a mutator or accessor name and its arguments. */
export interface Call {
  readonly name: string
  readonly args: readonly unknown[]
}

export interface ObjectModel<M> {
  /** For test titles. */
  readonly title: string
  readonly def: DefinitionSource<AnyObjectDefinition>
  readonly mutators: fc.Arbitrary<Call>
  readonly accessors: fc.Arbitrary<Call>
  readonly model: () => M
  /** Applies a call to the model (mutating it) and returns the expected answer. */
  readonly apply: (model: M, call: Call) => unknown
  /** Calls that observe the whole state, compared at the end of each run. */
  readonly observers: readonly Call[]
  /** Puts an answer in canonical form where the object leaves an order unspecified. */
  readonly normalize?: (call: Call, answer: unknown) => unknown
}

type Dynamic = Record<string, (...args: unknown[]) => Promise<unknown>> & { version: number; stateHash(): string; sync(): Promise<void> }

function invoke(handle: Dynamic, call: Call): Promise<unknown> {
  const fn = handle[call.name]
  if (fn === undefined) throw new Error(`no method ${call.name}`)
  return fn(...call.args)
}

export function modelTests<M>(spec: ObjectModel<M>, options: { numRuns?: number; maxCalls?: number } = {}): void {
  const numRuns = options.numRuns ?? 25
  const maxCalls = options.maxCalls ?? 30
  const norm = (call: Call, v: unknown): unknown => (spec.normalize ? spec.normalize(call, v) : v)

  test(`${spec.title}: agrees with a plain model over random call sequences`, async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.oneof({ weight: 3, arbitrary: spec.mutators }, { weight: 1, arbitrary: spec.accessors }), { maxLength: maxCalls }), async (calls) => {
        const c = await cluster(1)
        try {
          const handle = c.runtimes[0]!.open(spec.def, 'obj') as unknown as Dynamic
          const model = spec.model()
          for (const call of calls) {
            const expected = spec.apply(model, call)
            expect(norm(call, await invoke(handle, call)), `${call.name}(${JSON.stringify(call.args)})`).toEqual(norm(call, expected))
          }
          for (const call of spec.observers) expect(norm(call, await invoke(handle, call))).toEqual(norm(call, spec.apply(model, call)))
        } finally {
          await c.close()
        }
      }),
      { numRuns },
    )
  })

  test(`${spec.title}: three runtimes under concurrent calls converge, match a replay and the model folded over the log`, async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.array(spec.mutators, { maxLength: maxCalls }), { minLength: 3, maxLength: 3 }), async (perRuntime) => {
        const c = await cluster(3)
        try {
          const handles = c.runtimes.map((rt) => rt.open(spec.def, 'obj') as unknown as Dynamic)
          // Each runtime fires its calls without waiting for one another: they interleave in the log.
          await Promise.all(perRuntime.map((calls, i) => Promise.all(calls.map((call) => invoke(handles[i]!, call)))))
          for (const h of handles) await h.sync()
          const late = (await c.add()).open(spec.def, 'obj') as unknown as Dynamic
          await late.sync()
          const all = [...handles, late]
          expect(new Set(all.map((h) => h.version)).size).toBe(1)
          expect(new Set(all.map((h) => h.stateHash())).size).toBe(1)
          // The checker: fold the model over the log, in log order.
          const model = spec.model()
          const page = c.log.readStream(streamOf('obj'), { from: 0 })
          for (const entry of page.entries) {
            const rec = decodeRecord(entry.data)
            if (rec.kind !== 'op') throw new Error(rec.kind === 'invalid' ? rec.reason : 'not a single op')
            spec.apply(model, { name: rec.mutator, args: rec.args })
          }
          for (const h of all) {
            for (const call of spec.observers) expect(norm(call, await invoke(h, call))).toEqual(norm(call, spec.apply(model, call)))
          }
        } finally {
          await c.close()
        }
      }),
      { numRuns: Math.max(5, Math.floor(numRuns / 2)) },
    )
  })
}

/** Sorts arrays of primitives or of [key, value] pairs, for answers whose order is unspecified. */
export function sortAnswer(answer: unknown): unknown {
  if (!Array.isArray(answer)) return answer
  const key = (x: unknown): string => JSON.stringify(Array.isArray(x) ? x[0] : x)
  return [...(answer as unknown[])].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0))
}
