import fc from 'fast-check'
import { describe } from 'vitest'
import { List } from '../../objects/index.ts'
import { modelTests } from './harness.ts'
import type { Call } from './harness.ts'

const index = fc.integer({ min: -12, max: 12 })
const item = fc.oneof(fc.integer({ min: 0, max: 99 }), fc.constantFrom('p', 'q'))

function clamp(i: number, length: number): number {
  return i < 0 ? Math.max(0, length + i) : Math.min(i, length)
}

describe('List', () => {
  modelTests<unknown[]>({
    title: 'List',
    def: List<unknown>,
    mutators: fc.oneof(
      item.map((v): Call => ({ name: 'push', args: [v] })),
      fc.tuple(index, item).map(([i, v]): Call => ({ name: 'insert', args: [i, v] })),
      index.map((i): Call => ({ name: 'removeAt', args: [i] })),
    ),
    accessors: fc.oneof(
      index.map((i): Call => ({ name: 'at', args: [i] })),
      fc.tuple(fc.option(index, { nil: undefined }), fc.option(index, { nil: undefined })).map(([s, e]): Call => ({ name: 'slice', args: [s, e] })),
      fc.constant<Call>({ name: 'length', args: [] }),
    ),
    model: () => [],
    apply: (list, call) => {
      switch (call.name) {
        case 'push':
          list.push(call.args[0])
          return list.length
        case 'insert':
          list.splice(clamp(call.args[0] as number, list.length), 0, call.args[1])
          return list.length
        case 'removeAt': {
          const raw = call.args[0] as number
          const i = raw < 0 ? list.length + raw : raw
          if (i < 0 || i >= list.length) return undefined
          return list.splice(i, 1)[0]
        }
        case 'at':
          return list.at(call.args[0] as number)
        case 'slice':
          return list.slice(call.args[0] as number | undefined, call.args[1] as number | undefined)
        case 'length':
          return list.length
      }
      throw new Error(call.name)
    },
    observers: [{ name: 'slice', args: [] }],
  })
})
