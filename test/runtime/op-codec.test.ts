import { decode, encode } from '@msgpack/msgpack'
import fc from 'fast-check'
import { describe, expect, test } from 'vitest'
import { FastDecoder } from '../../object-runtime/fast-decode.ts'
import { ObjectError, decodeRecord, encodeOp } from '../../object-runtime/index.ts'
import { encodeOwnOp, encodeTx, isFlatOp } from '../../object-runtime/op-codec.ts'

const plain = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.constant(null),
    fc.boolean(),
    fc.integer(),
    fc.double(),
    fc.maxSafeInteger(),
    fc.integer({ min: -(2 ** 31), max: 2 ** 32 }),
    fc.string({ unit: 'grapheme', maxLength: 12 }),
    fc.string({ unit: 'binary', maxLength: 12 }),
    fc.string({ minLength: 190, maxLength: 260 }),
    fc.uint8Array({ maxLength: 8 }),
    fc.date({ noInvalidDate: true }),
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(fc.string({ maxLength: 6 }).filter((k) => k !== '__proto__'), tie('value'), { maxKeys: 4, noNullPrototype: true }),
  ),
})).value

/** `v` with every -0 (at any depth) as 0: what a msgpack round trip gives. */
function noNegativeZero(v: unknown): unknown {
  if (Object.is(v, -0)) return 0
  if (Array.isArray(v)) return v.map(noNegativeZero)
  if (typeof v === 'object' && v !== null && !(v instanceof Uint8Array) && !(v instanceof Date)) {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, noNegativeZero(x)]))
  }
  return v
}

describe('op encoding', () => {
  test('the fast decoder agrees with @msgpack/msgpack on any plain value', () => {
    const fast = new FastDecoder()
    fc.assert(
      fc.property(plain, (value) => {
        const bytes = encode(value)
        expect(fast.decode(bytes)).toEqual(decode(bytes))
      }),
      { numRuns: 500 },
    )
  })

  test('args round-trip through encodeOp/decodeRecord, undefined included, containers frozen', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(plain, fc.constant(undefined)), { maxLength: 4 }), (args) => {
        const rec = decodeRecord(encodeOp({ type: 'T', version: 3, mutator: 'm', args }))
        if (rec.kind !== 'op') throw new Error(rec.kind === 'invalid' ? rec.reason : 'not a single op')
        expect(rec).toMatchObject({ type: 'T', version: 3, mutator: 'm' })
        expect(rec.args).toEqual(noNegativeZero(args)) // msgpack writes -0 as the integer 0 (so does the library)
        for (const a of rec.args) if (typeof a === 'object' && a !== null && !(a instanceof Uint8Array)) expect(Object.isFrozen(a)).toBe(true)
      }),
      { numRuns: 300 },
    )
    const zero = decodeRecord(encodeOp({ type: 'T', version: 1, mutator: 'm', args: [-0, [-0]] }))
    expect(zero.kind === 'op' && Object.is(zero.args[0], 0) && Object.is((zero.args[1] as number[])[0], 0)).toBe(true)
    const rec = decodeRecord(encodeOp({ type: 'T', version: 1, mutator: 'm', args: [{ a: undefined, b: [undefined] }] }))
    expect(rec.kind === 'op' && rec.args).toEqual([{ a: undefined, b: [undefined] }])
    expect(rec.kind === 'op' && Object.hasOwn(rec.args[0] as object, 'a')).toBe(true)
  })

  test('non-plain arguments are refused with bad_argument and a path', () => {
    const bad: Array<[unknown, RegExp]> = [
      [new Map(), /argument 0: a Map is not plain data/],
      [{ nested: [new Set()] }, /argument 0\.nested\[0\]: a Set/],
      [() => 1, /a function cannot be sent/],
      [10n, /a bigint cannot be sent/],
      [JSON.parse('{"__proto__": 1}'), /__proto__/],
    ]
    for (const [arg, pattern] of bad) {
      let caught: unknown
      try {
        encodeOp({ type: 'T', version: 1, mutator: 'm', args: [arg] })
      } catch (err) {
        caught = err
      }
      expect(caught).toBeInstanceOf(ObjectError)
      expect((caught as ObjectError).code).toBe('bad_argument')
      expect((caught as Error).message).toMatch(pattern)
    }
  })

  test('records that are not ops are reported, not thrown', () => {
    expect(decodeRecord(new Uint8Array([0xc1]))).toMatchObject({ kind: 'invalid', reason: expect.stringMatching(/undecodable/) as string })
    expect(decodeRecord(encode({ a: 1 }))).toMatchObject({ kind: 'invalid', reason: 'entry is not a tagged record' })
    expect(decodeRecord(encode([2, 'T', 1, 'm', []]))).toMatchObject({ kind: 'invalid', reason: 'unknown record kind 2' })
    expect(decodeRecord(encode([1, 'T', '1', 'm', []]))).toMatchObject({ kind: 'invalid', reason: 'malformed op record' })
    expect(decodeRecord(new Uint8Array([0x95, 0x01]))).toMatchObject({ kind: 'invalid', reason: expect.stringMatching(/truncated/) as string })
  })
})

describe('encodeOp: the flat fast path (ASCII strings, numbers, booleans, null)', () => {
  const flat = fc.oneof(
    fc.constant(null),
    fc.boolean(),
    fc.integer(),
    fc.integer({ min: -0x80000000, max: 0xffffffff }),
    fc.constantFrom(0, -0, 127, 128, 255, 256, 65535, 65536, -32, -33, -128, -129, -32768, -32769, 2 ** 32 - 1, 2 ** 32, -(2 ** 31), -(2 ** 31) - 1),
    fc.double(),
    fc.maxSafeInteger(),
    fc.string({ unit: fc.integer({ min: 0, max: 0x7f }).map((c) => String.fromCharCode(c)), maxLength: 300 }),
    fc.string(),
    // Past 16 units strings are checked and copied natively: non-ASCII ones (latin1,
    // lone surrogates) must still go the general way.
    fc.string({ unit: 'binary', minLength: 14, maxLength: 40 }),
    fc.string({ unit: fc.integer({ min: 0, max: 0xff }).map((c) => String.fromCharCode(c)), minLength: 14, maxLength: 40 }),
  )
  test('writes exactly the bytes of the general encoder, and falls back for anything else', () => {
    fc.assert(
      fc.property(fc.array(flat, { maxLength: 17 }), fc.constantFrom('QMap', 'Counter', 'Ünïcode'), fc.constantFrom('set', 'add', 'x'.repeat(40)), (args, type, mutator) => {
        const op = { type, version: 1, mutator, args }
        const bytes = encodeOp(op)
        expect(Array.from(bytes)).toEqual(Array.from(encode([1, type, 1, mutator, args])))
        expect(decodeRecord(bytes)).toMatchObject({ kind: 'op', type, mutator })
      }),
      { numRuns: 500 },
    )
  })

  test('encodeOwnOp: the same bytes, and decodesToItself exactly when decoding gives the op back', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(flat, fc.constant(undefined), fc.array(flat, { maxLength: 2 })), { maxLength: 6 }), (args) => {
        const op = { type: 'QMap', version: 3, mutator: 'set', args }
        const { data, decodesToItself } = encodeOwnOp(op)
        expect(Array.from(data)).toEqual(Array.from(encodeOp(op)))
        expect(decodesToItself).toBe(isFlatOp(op))
        if (decodesToItself) {
          const back = decodeRecord(data) as unknown as { args: unknown[] }
          expect(back).toEqual({ kind: 'op', ...op })
          back.args.forEach((a, i) => expect(Object.is(a, args[i])).toBe(true))
        }
      }),
      { numRuns: 500 },
    )
  })

  test('encodings handed out earlier are never overwritten by later ones (shared slab)', () => {
    fc.assert(
      fc.property(fc.array(fc.array(flat, { maxLength: 6 }), { minLength: 300, maxLength: 600 }), (argLists) => {
        const ops = argLists.map((args, i) => ({ type: 'QMap', version: 1, mutator: i % 2 === 0 ? 'set' : 'delete', args }))
        const held = ops.map((op) => encodeOp(op))
        ops.forEach((op, i) => expect(Array.from(held[i]!)).toEqual(Array.from(encode([1, op.type, 1, op.mutator, op.args]))))
      }),
      { numRuns: 20 },
    )
  })
})

describe('encodeTx: transaction records', () => {
  const flatArg = fc.oneof(fc.constant(null), fc.boolean(), fc.integer(), fc.double(), fc.maxSafeInteger(), fc.string({ unit: fc.integer({ min: 0, max: 0x7f }).map((c) => String.fromCharCode(c)), maxLength: 40 }))
  const txOp = fc.record({
    object: fc.constantFrom('bank', 'm', 'Ünïcode-name', 'x'.repeat(40)),
    type: fc.constantFrom('QMap', 'Counter'),
    version: fc.constantFrom(1, 2, 300),
    mutator: fc.constantFrom('set', 'add', 'y'.repeat(33)),
    args: fc.array(fc.oneof(flatArg, flatArg, fc.constant(undefined), fc.array(flatArg, { maxLength: 2 }), fc.string()), { maxLength: 17 }),
  })
  test('writes exactly the bytes of the general encoder (flat ops directly, others through it) and decodes back', () => {
    const undefinedAsNil = (args: readonly unknown[]): unknown[] => args.map((a) => (a === undefined ? null : a))
    fc.assert(
      fc.property(fc.array(txOp, { minLength: 1, maxLength: 18 }), (ops) => {
        const bytes = encodeTx(ops)
        const rec = decodeRecord(bytes)
        expect(rec.kind).toBe('tx')
        if (rec.kind !== 'tx') return
        const noNegativeZero = (v: unknown): unknown => (Array.isArray(v) ? v.map(noNegativeZero) : Object.is(v, -0) ? 0 : v) // msgpack writes -0 as 0
        expect(rec.ops.map((o) => ({ ...o, args: [...o.args] }))).toEqual(ops.map((o) => ({ ...o, args: noNegativeZero(o.args) })))
        if (ops.every((op) => !op.args.some((a) => a === undefined))) {
          expect(Array.from(bytes)).toEqual(Array.from(encode([2, ops.map((o) => [o.object, o.type, o.version, o.mutator, undefinedAsNil(o.args)])])))
        }
      }),
      { numRuns: 500 },
    )
  })

  test('isFlatOp: only args that decode back to themselves', () => {
    const op = (args: unknown[]): { type: string; version: number; mutator: string; args: unknown[] } => ({ type: 'QMap', version: 1, mutator: 'set', args })
    expect(isFlatOp(op(['k', 1, 1.5, null, true, false, -1, 2 ** 40, NaN]))).toBe(true)
    expect(isFlatOp(op([-0]))).toBe(false) // msgpack writes the integer 0
    expect(isFlatOp(op(['ü']))).toBe(false)
    expect(isFlatOp(op([undefined]))).toBe(false)
    expect(isFlatOp(op([{ a: 1 }]))).toBe(false)
    expect(isFlatOp(op([[1]]))).toBe(false)
    expect(isFlatOp(op(new Array<number>(16).fill(1)))).toBe(false)
    expect(isFlatOp({ ...op([]), mutator: '' })).toBe(false)
    fc.assert(
      fc.property(fc.array(fc.oneof(flatArg, fc.constant(-0)), { maxLength: 15 }), (args) => {
        if (!isFlatOp(op(args))) return
        const rec = decodeRecord(encodeOp(op(args)))
        if (rec.kind !== 'op') throw new Error(rec.kind)
        rec.args.forEach((a, i) => expect(Object.is(a, args[i])).toBe(true))
      }),
    )
  })

  test('decodeRecord reads transaction records the way the library does, whoever wrote them', () => {
    const value = fc.oneof(
      fc.constant(null),
      fc.boolean(),
      fc.integer(),
      fc.double(),
      fc.maxSafeInteger(),
      fc.constantFrom(-0, 2 ** 32, -(2 ** 31) - 1, 2 ** 53 - 1, 127, 128, 255, 256, 65535, 65536, -32, -33, -128, -129, -32768, -32769),
      fc.string({ unit: fc.integer({ min: 0, max: 0x7f }).map((ch) => String.fromCharCode(ch)), maxLength: 300 }),
      fc.string({ maxLength: 4 }),
      fc.array(fc.integer(), { maxLength: 2 }),
    )
    const anyOp = fc.tuple(
      fc.constantFrom('bank', 'm', 'ü', 'o'.repeat(31), 'o'.repeat(32)),
      fc.constantFrom('QMap', 'Counter'),
      fc.oneof(fc.constantFrom(1, 2, 300, 2 ** 40), fc.double()),
      fc.constantFrom('set', 'add', 'é'),
      fc.array(value, { maxLength: 16 }),
    )
    fc.assert(
      fc.property(fc.array(anyOp, { maxLength: 17 }), (ops) => {
        const bytes = encode([2, ops])
        const rec = decodeRecord(bytes)
        expect(rec).toEqual({ kind: 'tx', ops: ops.map(([object, type, version, mutator, args]) => ({ object, type, version: decode(encode(version)), mutator, args: decode(encode(args)) })) })
        if (rec.kind === 'tx') for (const op of rec.ops) expect(Object.isFrozen(op.args)).toBe(true)
      }),
      { numRuns: 1000 },
    )
    // float32 (the library never writes it for a number, another writer may): [2, [["m", "T", 1, "x", [1.5]]]]
    const f32 = Uint8Array.of(0x92, 0x02, 0x91, 0x95, 0xa1, 0x6d, 0xa1, 0x54, 0x01, 0xa1, 0x78, 0x91, 0xca, 0x3f, 0xc0, 0x00, 0x00)
    expect(decodeRecord(f32)).toEqual({ kind: 'tx', ops: [{ object: 'm', type: 'T', version: 1, mutator: 'x', args: [1.5] }] })
    const good = encodeTx([{ object: 'm', type: 'T', version: 1, mutator: 'x', args: ['a', 1] }])
    for (let cut = 1; cut < good.length; cut++) expect(decodeRecord(good.subarray(0, cut)).kind).toBe('invalid')
    expect(decodeRecord(Uint8Array.of(...good, 0xc0)).kind).toBe('invalid')
    expect(decodeRecord(encode([2, [['m', 'T', '1', 'x', []]]]))).toEqual({ kind: 'invalid', reason: 'malformed transaction record' })
    expect(decodeRecord(encode([2, [['m', 'T', 1, 'x', 'args']]]))).toEqual({ kind: 'invalid', reason: 'malformed transaction record' })
    expect(decodeRecord(encode([2, [['m', 'T', 1, 'x']]]))).toEqual({ kind: 'invalid', reason: 'malformed transaction record' })
  })
})
