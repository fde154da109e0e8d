import fc from 'fast-check'
import { describe, expect, test } from 'vitest'
import { QMap } from '../../objects/index.ts'
import { cluster } from '../runtime/helpers.ts'
import { modelTests, sortAnswer } from './harness.ts'
import type { Call } from './harness.ts'

const key = fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j')
const value = fc.oneof(fc.integer({ min: 0, max: 9 }), fc.record({ n: fc.integer({ min: 0, max: 3 }), tags: fc.array(fc.constantFrom('x', 'y'), { maxLength: 2 }) }))

describe('QMap', () => {
  modelTests<Map<string, unknown>>({
    title: 'QMap',
    def: QMap<string, unknown>,
    mutators: fc.oneof(
      { weight: 6, arbitrary: fc.tuple(key, value).map(([k, v]): Call => ({ name: 'set', args: [k, v] })) },
      { weight: 3, arbitrary: key.map((k): Call => ({ name: 'delete', args: [k] })) },
      { weight: 1, arbitrary: fc.constant<Call>({ name: 'clear', args: [] }) },
    ),
    accessors: fc.oneof(
      key.map((k): Call => ({ name: 'get', args: [k] })),
      key.map((k): Call => ({ name: 'has', args: [k] })),
      fc.constantFrom<Call>({ name: 'size', args: [] }, { name: 'keys', args: [] }, { name: 'entries', args: [] }),
    ),
    model: () => new Map(),
    apply: (m, call) => {
      const [k, v] = call.args as [string, unknown]
      switch (call.name) {
        case 'set': {
          const isNew = !m.has(k)
          m.set(k, v)
          return isNew
        }
        case 'delete':
          return m.delete(k)
        case 'clear': {
          const n = m.size
          m.clear()
          return n
        }
        case 'get':
          return m.get(k)
        case 'has':
          return m.has(k)
        case 'size':
          return m.size
        case 'keys':
          return [...m.keys()]
        case 'entries':
          return [...m.entries()]
      }
      throw new Error(call.name)
    },
    observers: [{ name: 'entries', args: [] }, { name: 'size', args: [] }],
    normalize: (call, answer) => (call.name === 'keys' || call.name === 'entries' ? sortAnswer(answer) : answer),
  })

  test('numeric and string keys are different keys', async () => {
    const c = await cluster(1)
    const m = c.runtimes[0]!.open(QMap<string | number, string>, 'm')
    await m.set(1, 'number')
    await m.set('1', 'string')
    expect(await m.get(1)).toBe('number')
    expect(await m.get('1')).toBe('string')
    expect(await m.size()).toBe(2)
    await c.close()
  })

  test('values handed out are frozen: a caller cannot change the replicated state in place', async () => {
    const c = await cluster(1)
    const m = c.runtimes[0]!.open(QMap<string, { n: number }>, 'm')
    await m.set('a', { n: 1 })
    const v = await m.get('a')
    expect(Object.isFrozen(v)).toBe(true)
    expect(() => {
      ;(v as { n: number }).n = 2
    }).toThrow(TypeError)
    expect(await m.get('a')).toEqual({ n: 1 })
    await c.close()
  })
})
