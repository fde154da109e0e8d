import fc from 'fast-check'
import { describe, expect, test } from 'vitest'
import { SortedMap } from '../../objects/index.ts'
import { cluster } from '../runtime/helpers.ts'
import { modelTests } from './harness.ts'
import type { Call } from './harness.ts'

const key = fc.integer({ min: -20, max: 20 })
const value = fc.constantFrom('a', 'b', 'c')

function sortedEntries(m: Map<number, string>): Array<[number, string]> {
  return [...m.entries()].sort((x, y) => x[0] - y[0])
}

describe('SortedMap', () => {
  modelTests<Map<number, string>>({
    title: 'SortedMap',
    def: SortedMap<number, string>,
    mutators: fc.oneof(
      { weight: 6, arbitrary: fc.tuple(key, value).map(([k, v]): Call => ({ name: 'set', args: [k, v] })) },
      { weight: 3, arbitrary: key.map((k): Call => ({ name: 'delete', args: [k] })) },
      { weight: 1, arbitrary: fc.constant<Call>({ name: 'clear', args: [] }) },
    ),
    accessors: fc.oneof(
      key.map((k): Call => ({ name: 'get', args: [k] })),
      key.map((k): Call => ({ name: 'has', args: [k] })),
      fc
        .tuple(fc.option(key, { nil: undefined }), fc.option(key, { nil: undefined }), fc.option(fc.integer({ min: 0, max: 6 }), { nil: undefined }))
        .map(([from, to, limit]): Call => ({ name: 'range', args: [from, to, limit] })),
      fc.constantFrom<Call>({ name: 'size', args: [] }, { name: 'keys', args: [] }, { name: 'minKey', args: [] }, { name: 'maxKey', args: [] }),
    ),
    model: () => new Map(),
    apply: (m, call) => {
      const [k, v] = call.args as [number, string]
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
          return sortedEntries(m).map((e) => e[0])
        case 'entries':
          return sortedEntries(m)
        case 'minKey':
          return sortedEntries(m)[0]?.[0]
        case 'maxKey':
          return sortedEntries(m).at(-1)?.[0]
        case 'range': {
          const [from, to, limit] = call.args as [number | undefined, number | undefined, number | undefined]
          return sortedEntries(m)
            .filter(([key]) => (from === undefined || key >= from) && (to === undefined || key < to))
            .slice(0, limit)
        }
      }
      throw new Error(call.name)
    },
    observers: [{ name: 'entries', args: [] }],
  })

  test('string keys sort in code-unit order', async () => {
    const c = await cluster(1)
    const m = c.runtimes[0]!.open(SortedMap<string, number>, 'words')
    for (const w of ['pear', 'apple', 'fig', 'Banana', 'cherry']) await m.set(w, w.length)
    expect(await m.keys()).toEqual(['Banana', 'apple', 'cherry', 'fig', 'pear'])
    expect(await m.range('b', 'g')).toEqual([['cherry', 6], ['fig', 3]])
    expect(await m.range(undefined, undefined, 2)).toEqual([['Banana', 6], ['apple', 5]])
    await c.close()
  })
})
