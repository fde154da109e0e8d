import fc from 'fast-check'
import { describe } from 'vitest'
import { Counter } from '../../objects/index.ts'
import { modelTests } from './harness.ts'
import type { Call } from './harness.ts'

describe('Counter', () => {
  modelTests<{ value: number }>({
    title: 'Counter',
    def: Counter,
    mutators: fc.integer({ min: -100, max: 100 }).map((n): Call => ({ name: 'add', args: [n] })),
    accessors: fc.constant<Call>({ name: 'get', args: [] }),
    model: () => ({ value: 0 }),
    apply: (m, call) => {
      switch (call.name) {
        case 'add':
          m.value += call.args[0] as number
          return m.value
        case 'get':
          return m.value
      }
      throw new Error(call.name)
    },
    observers: [{ name: 'get', args: [] }],
  })
})
