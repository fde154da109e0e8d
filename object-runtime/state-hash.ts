// A deterministic 64-bit hash of an object's state, over a canonical walk of its value,
// so that two clients can compare their copies at the same version. Hash-ordered
// containers (immutable.js Map/Set) are hashed order-independently (sum of entry hashes),
// because their iteration order is an accident of history; containers whose order is
// part of their meaning (arrays, List, OrderedMap, BTree, JS Map/Set insertion order) are
// hashed in order; plain objects by sorted keys. Not a cryptographic hash.

import { isImmutable, isKeyed, isOrdered, isRecord } from 'immutable'
import { isBTree } from './persistent.ts'
import { isPMap } from './pmap.ts'

const enum Tag {
  Undefined = 1,
  Null,
  False,
  True,
  Number,
  String,
  BigInt,
  Bytes,
  Date,
  Array,
  OrderedCollection,
  UnorderedCollection,
  Record,
  BTree,
  JsMap,
  JsSet,
  PlainObject,
  ClassInstance,
  Opaque,
}

const float = new Float64Array(1)
const floatWords = new Uint32Array(float.buffer)

/** Two independent 32-bit FNV-1a style lanes. */
class Hasher {
  a = 0x811c9dc5
  b = 0x9747b28c

  word(x: number): void {
    this.a = Math.imul(this.a ^ (x & 0xffff), 0x01000193)
    this.a = Math.imul(this.a ^ (x >>> 16), 0x01000193)
    this.b = Math.imul(this.b ^ (x & 0xffff), 0x5bd1e995)
    this.b ^= this.b >>> 15
    this.b = Math.imul(this.b ^ (x >>> 16), 0x5bd1e995)
    this.b ^= this.b >>> 13
  }

  string(s: string): void {
    this.word(s.length)
    for (let i = 0; i < s.length; i++) this.word(s.charCodeAt(i))
  }

  number(n: number): void {
    float[0] = Object.is(n, -0) ? 0 : n
    this.word(floatWords[0]!)
    this.word(floatWords[1]!)
  }

  hex(): string {
    return (this.a >>> 0).toString(16).padStart(8, '0') + (this.b >>> 0).toString(16).padStart(8, '0')
  }
}

export function stateHash(value: unknown): string {
  const h = new Hasher()
  hashInto(h, value, 0)
  return h.hex()
}

function hashInto(h: Hasher, v: unknown, depth: number): void {
  if (depth > 512) throw new RangeError('stateHash: state nested more than 512 levels (a cycle?)')
  switch (typeof v) {
    case 'undefined':
      h.word(Tag.Undefined)
      return
    case 'boolean':
      h.word(v ? Tag.True : Tag.False)
      return
    case 'number':
      h.word(Tag.Number)
      h.number(v)
      return
    case 'string':
      h.word(Tag.String)
      h.string(v)
      return
    case 'bigint':
      h.word(Tag.BigInt)
      h.string(v.toString())
      return
    case 'object':
      break
    default:
      h.word(Tag.Opaque)
      h.string(typeof v)
      return
  }
  if (v === null) {
    h.word(Tag.Null)
    return
  }
  if (v instanceof Uint8Array) {
    h.word(Tag.Bytes)
    h.word(v.length)
    for (const byte of v) h.word(byte)
    return
  }
  if (v instanceof Date) {
    h.word(Tag.Date)
    h.number(v.getTime())
    return
  }
  if (Array.isArray(v)) {
    h.word(Tag.Array)
    h.word(v.length)
    for (const item of v) hashInto(h, item, depth + 1)
    return
  }
  if (isRecord(v)) {
    h.word(Tag.Record)
    hashPlain(h, v.toObject(), depth)
    return
  }
  if (isImmutable(v)) {
    const keyed = isKeyed(v)
    const entries = v as unknown as Iterable<unknown>
    if (isOrdered(v)) {
      h.word(Tag.OrderedCollection)
      h.word(keyed ? 1 : 0)
      let n = 0
      for (const item of entries) {
        hashInto(h, item, depth + 1) // keyed collections iterate [key, value] pairs
        n++
      }
      h.word(n)
    } else {
      h.word(Tag.UnorderedCollection)
      h.word(keyed ? 1 : 0)
      let sumA = 0
      let sumB = 0
      let n = 0
      for (const item of entries) {
        const sub = new Hasher()
        hashInto(sub, item, depth + 1)
        sumA = (sumA + sub.a) | 0
        sumB = (sumB + sub.b) | 0
        n++
      }
      h.word(n)
      h.word(sumA)
      h.word(sumB)
    }
    return
  }
  if (isPMap(v)) {
    // Canonical order already, but hashed like any hash map: order-independent.
    h.word(Tag.UnorderedCollection)
    h.word(1)
    let sumA = 0
    let sumB = 0
    v.forEach((val, k) => {
      const sub = new Hasher()
      sub.word(Tag.Array)
      sub.word(2)
      hashInto(sub, k, depth + 1)
      hashInto(sub, val, depth + 1)
      sumA = (sumA + sub.a) | 0
      sumB = (sumB + sub.b) | 0
    })
    h.word(v.size)
    h.word(sumA)
    h.word(sumB)
    return
  }
  if (isBTree(v)) {
    h.word(Tag.BTree)
    h.word(v.size)
    for (const [k, val] of v.entries()) {
      hashInto(h, k, depth + 1)
      hashInto(h, val, depth + 1)
    }
    return
  }
  if (v instanceof Map) {
    h.word(Tag.JsMap)
    h.word(v.size)
    for (const [k, val] of v) {
      hashInto(h, k, depth + 1)
      hashInto(h, val, depth + 1)
    }
    return
  }
  if (v instanceof Set) {
    h.word(Tag.JsSet)
    h.word(v.size)
    for (const item of v) hashInto(h, item, depth + 1)
    return
  }
  const proto: unknown = Object.getPrototypeOf(v)
  if (proto === Object.prototype || proto === null) {
    h.word(Tag.PlainObject)
  } else {
    h.word(Tag.ClassInstance)
    h.string((v as { constructor?: { name?: string } }).constructor?.name ?? '')
  }
  hashPlain(h, v as Record<string, unknown>, depth)
}

function hashPlain(h: Hasher, obj: Record<string, unknown>, depth: number): void {
  const keys = Object.keys(obj).sort()
  h.word(keys.length)
  for (const k of keys) {
    h.string(k)
    hashInto(h, obj[k], depth + 1)
  }
}
