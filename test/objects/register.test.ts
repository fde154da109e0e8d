import { isDeepStrictEqual } from 'node:util'
import fc from 'fast-check'
import { describe, expect, test } from 'vitest'
import { Register } from '../../objects/index.ts'
import { cluster } from '../runtime/helpers.ts'
import { modelTests } from './harness.ts'
import type { Call } from './harness.ts'

const value = fc.oneof(fc.integer({ min: 0, max: 3 }), fc.constantFrom('a', 'b'), fc.record({ a: fc.integer({ min: 0, max: 2 }) }), fc.constant(undefined))

describe('Register', () => {
  modelTests<{ value: unknown }>({
    title: 'Register',
    def: Register<unknown>,
    mutators: fc.oneof(
      value.map((v): Call => ({ name: 'set', args: [v] })),
      fc.tuple(value, value).map(([e, n]): Call => ({ name: 'compareAndSet', args: [e, n] })),
    ),
    accessors: fc.constant<Call>({ name: 'get', args: [] }),
    model: () => ({ value: undefined }),
    apply: (m, call) => {
      switch (call.name) {
        case 'set': {
          const previous = m.value
          m.value = call.args[0]
          return previous
        }
        case 'compareAndSet':
          // Ops carry plain data: prototypes (fast-check makes null-prototype records) do not travel.
          if (!isDeepStrictEqual(structuredClone(m.value), structuredClone(call.args[0]))) return false
          m.value = call.args[1]
          return true
        case 'get':
          return m.value
      }
      throw new Error(call.name)
    },
    observers: [{ name: 'get', args: [] }],
  })

  test('racing compare-and-sets from three runtimes: exactly one wins', async () => {
    const c = await cluster(3)
    const regs = c.runtimes.map((rt) => rt.open(Register<string>, 'leader'))
    const wins = await Promise.all(regs.map((r, i) => r.compareAndSet(undefined, `node-${i}`)))
    expect(wins.filter(Boolean).length).toBe(1)
    const winner = `node-${wins.indexOf(true)}`
    for (const r of regs) expect(await r.get()).toBe(winner)
    await c.close()
  })
})
