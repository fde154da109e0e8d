import fc from 'fast-check'
import { describe } from 'vitest'
import { QSet } from '../../objects/index.ts'
import { modelTests, sortAnswer } from './harness.ts'
import type { Call } from './harness.ts'

const member = fc.oneof(fc.integer({ min: 0, max: 6 }), fc.constantFrom('x', 'y', 'z'))

describe('QSet', () => {
  modelTests<Set<string | number>>({
    title: 'QSet',
    def: QSet<string | number>,
    mutators: fc.oneof(member.map((v): Call => ({ name: 'add', args: [v] })), member.map((v): Call => ({ name: 'delete', args: [v] }))),
    accessors: fc.oneof(member.map((v): Call => ({ name: 'has', args: [v] })), fc.constantFrom<Call>({ name: 'size', args: [] }, { name: 'values', args: [] })),
    model: () => new Set(),
    apply: (s, call) => {
      const v = call.args[0] as string | number
      switch (call.name) {
        case 'add': {
          const isNew = !s.has(v)
          s.add(v)
          return isNew
        }
        case 'delete':
          return s.delete(v)
        case 'has':
          return s.has(v)
        case 'size':
          return s.size
        case 'values':
          return [...s]
      }
      throw new Error(call.name)
    },
    observers: [{ name: 'values', args: [] }],
    normalize: (call, answer) => (call.name === 'values' ? sortAnswer(answer) : answer),
  })
})
