// The checkpoint state format: an object's state snapshot as bytes, deterministic (the same
// state gives the same bytes on every client) and versioned (STATE_FORMAT_VERSION, written
// in every checkpoint record; a reader refuses versions it does not know).
//
// Encoding: msgpack, plain objects with sorted keys, plus extension types for what msgpack
// has no type for. Each container extension holds one msgpack array:
//
//   ext 0x10 undefined            (empty)
//   ext 0x11 PMap                 [k0, v0, k1, v1, ...] in the PMap's canonical order
//   ext 0x12 BTree                [k0, v0, ...] in key order (default comparator)
//   ext 0x13 immutable List       [v0, v1, ...]
//   ext 0x14 immutable Map        [k0, v0, ...] sorted by the encoded bytes of the keys
//   ext 0x15 immutable OrderedMap [k0, v0, ...] in order
//   ext 0x16 immutable Set        [v0, ...] sorted by encoded bytes
//   ext 0x17 immutable OrderedSet [v0, ...] in order
//   ext 0x18 JS Map               [k0, v0, ...] in insertion order
//   ext 0x19 JS Set               [v0, ...] in insertion order
//
// Dates use msgpack's timestamp extension, bytes are `bin`. Anything else (class
// instances, functions, bigints, symbols) cannot be checkpointed and is refused with a
// clear error naming where it sits in the state. Decoded values are frozen (plain arrays
// and objects), as values coming from ops are.

import { Decoder, Encoder, ExtensionCodec } from '@msgpack/msgpack'
import { List as ImmutableList, Map as ImmutableMap, OrderedMap, OrderedSet, Set as ImmutableSet, isImmutable, isList, isMap, isOrderedMap, isOrderedSet, isSet } from 'immutable'
import { ObjectError } from './errors.ts'
import { BTree, isBTree } from './persistent.ts'
import { PMap, isPMap } from './pmap.ts'
import type { PMapKey } from './pmap.ts'

/** Version of the state encoding above. Bump it when the encoding changes; readers refuse unknown versions. */
export const STATE_FORMAT_VERSION = 1

const EXT = {
  undefined: 0x10,
  pmap: 0x11,
  btree: 0x12,
  list: 0x13,
  imap: 0x14,
  omap: 0x15,
  iset: 0x16,
  oset: 0x17,
  jsmap: 0x18,
  jsset: 0x19,
} as const

/** Stands for `undefined` while encoding (msgpack would turn it into nil). */
const UNDEFINED_MARK: object = Object.freeze({ mark: 'undefined' })

const codec = new ExtensionCodec()
const encoder = new Encoder({ extensionCodec: codec, sortKeys: true })
const decoder = new Decoder({ extensionCodec: codec })

function flatPairs(pairs: Iterable<readonly [unknown, unknown]>, path: string): unknown[] {
  const out: unknown[] = []
  for (const [k, v] of pairs) out.push(prep(k, path, 0), prep(v, path, 0))
  return out
}

/** Sorts [k, v] pairs (or single values) by the encoded bytes of the key: a total, history-free order. */
function sortedByEncoding<T>(items: T[], keyOf: (item: T) => unknown): T[] {
  const keyed = items.map((item) => ({ item, bytes: encoder.encode(prep(keyOf(item), 'key', 0)) }))
  keyed.sort((a, b) => compareBytes(a.bytes, b.bytes))
  return keyed.map((x) => x.item)
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!
  return a.length - b.length
}

codec.register({
  type: EXT.undefined,
  encode: (value: unknown) => (value === UNDEFINED_MARK ? new Uint8Array(0) : null),
  decode: () => undefined,
})
codec.register({
  type: EXT.pmap,
  encode: (value: unknown) => (isPMap(value) ? encoder.encode(flatPairs(value.entries(), 'PMap')) : null),
  decode: (data: Uint8Array) => {
    const flat = decodeArray(data)
    const m = PMap.empty<PMapKey, unknown>().asMutable()
    for (let i = 0; i < flat.length; i += 2) m.set(flat[i] as PMapKey, flat[i + 1])
    return m.asImmutable()
  },
})
codec.register({
  type: EXT.btree,
  encode: (value: unknown) => (isBTree(value) ? encoder.encode(flatPairs(value.entries(), 'BTree')) : null),
  decode: (data: Uint8Array) => {
    const flat = decodeArray(data)
    const pairs: Array<[unknown, unknown]> = []
    for (let i = 0; i < flat.length; i += 2) pairs.push([flat[i], flat[i + 1]])
    const tree = new BTree<unknown, unknown>(pairs)
    tree.freeze()
    return tree
  },
})
codec.register({
  type: EXT.list,
  encode: (value: unknown) => (isList(value) ? encoder.encode(value.toArray().map((v) => prep(v, 'List', 0))) : null),
  decode: (data: Uint8Array) => ImmutableList(decodeArray(data)),
})
codec.register({
  type: EXT.omap,
  encode: (value: unknown) => (isOrderedMap(value) ? encoder.encode(flatPairs(value.entries(), 'OrderedMap')) : null),
  decode: (data: Uint8Array) => OrderedMap(pairsOf(decodeArray(data))),
})
codec.register({
  type: EXT.imap,
  encode: (value: unknown) =>
    isMap(value) && !isOrderedMap(value)
      ? encoder.encode(flatPairs(sortedByEncoding([...(value as ImmutableMap<unknown, unknown>).entries()], (e) => e[0]), 'Map'))
      : null,
  decode: (data: Uint8Array) => ImmutableMap(pairsOf(decodeArray(data))),
})
codec.register({
  type: EXT.oset,
  encode: (value: unknown) => (isOrderedSet(value) ? encoder.encode(value.toArray().map((v) => prep(v, 'OrderedSet', 0))) : null),
  decode: (data: Uint8Array) => OrderedSet(decodeArray(data)),
})
codec.register({
  type: EXT.iset,
  encode: (value: unknown) =>
    isSet(value) && !isOrderedSet(value) ? encoder.encode(sortedByEncoding(value.toArray(), (v) => v).map((v) => prep(v, 'Set', 0))) : null,
  decode: (data: Uint8Array) => ImmutableSet(decodeArray(data)),
})
codec.register({
  type: EXT.jsmap,
  encode: (value: unknown) => (value instanceof Map ? encoder.encode(flatPairs(value.entries(), 'Map')) : null),
  decode: (data: Uint8Array) => Object.freeze(new Map(pairsOf(decodeArray(data)))),
})
codec.register({
  type: EXT.jsset,
  encode: (value: unknown) => (value instanceof Set ? encoder.encode([...value].map((v) => prep(v, 'Set', 0))) : null),
  decode: (data: Uint8Array) => Object.freeze(new Set(decodeArray(data))),
})

function pairsOf(flat: readonly unknown[]): Array<[unknown, unknown]> {
  const out: Array<[unknown, unknown]> = []
  for (let i = 0; i < flat.length; i += 2) out.push([flat[i], flat[i + 1]])
  return out
}

function decodeArray(data: Uint8Array): unknown[] {
  const value = decoder.decode(data)
  if (!Array.isArray(value)) throw new ObjectError('bad_argument', 'corrupt checkpoint: container extension does not hold an array')
  return value
}

/**
 * Checks a value can be checkpointed and swaps `undefined` for its marker, copying only
 * the plain containers on the way to one. Known containers are returned as they are
 * (their extension encoders prepare their own contents).
 */
function prep(value: unknown, path: string, depth: number): unknown {
  if (depth > 512) throw new ObjectError('bad_argument', `checkpoint: ${path}: state nested more than 512 levels (a cycle?)`)
  switch (typeof value) {
    case 'undefined':
      return UNDEFINED_MARK
    case 'boolean':
    case 'number':
    case 'string':
      return value
    case 'object':
      break
    default:
      throw new ObjectError('bad_argument', `checkpoint: ${path}: a ${typeof value} cannot be checkpointed`)
  }
  if (value === null || value instanceof Uint8Array || value instanceof Date) return value
  if (isPMap(value) || isBTree(value) || value instanceof Map || value instanceof Set) return value
  if (isImmutable(value)) {
    if (isList(value) || isMap(value) || isSet(value)) return value
    throw new ObjectError('bad_argument', `checkpoint: ${path}: this kind of immutable.js collection cannot be checkpointed`)
  }
  if (Array.isArray(value)) {
    let copy: unknown[] | undefined
    for (let i = 0; i < value.length; i++) {
      const v: unknown = value[i]
      const p = prep(v, path, depth + 1)
      if (p !== v) (copy ??= value.slice())[i] = p
    }
    return copy ?? value
  }
  const proto: unknown = Object.getPrototypeOf(value)
  if (proto !== Object.prototype && proto !== null) {
    const what = (value as { constructor?: { name?: string } }).constructor?.name ?? 'object'
    throw new ObjectError('bad_argument', `checkpoint: ${path}: a ${what} instance cannot be checkpointed (use plain data, PMap, BTree or immutable.js)`)
  }
  let copy: Record<string, unknown> | undefined
  for (const [k, v] of Object.entries(value)) {
    const p = prep(v, `${path}.${k}`, depth + 1)
    if (p !== v) (copy ??= { ...value })[k] = p
  }
  return copy ?? value
}

/** Encodes a state snapshot (see the header for the format). */
export function encodeState(state: unknown): Uint8Array {
  return encoder.encode(prep(state, 'state', 0))
}

/** Decodes what encodeState wrote; plain arrays and objects come back frozen. */
export function decodeState(bytes: Uint8Array): unknown {
  const value = decoder.decode(bytes)
  freezePlain(value)
  return value
}

/** Freezes plain arrays and objects, deeply, and the plain values inside decoded containers. */
function freezePlain(value: unknown): void {
  if (typeof value !== 'object' || value === null || ArrayBuffer.isView(value) || value instanceof Date) return
  if (isPMap(value)) {
    value.forEach((v) => freezePlain(v))
    return
  }
  if (isBTree(value)) {
    for (const [, v] of value.entries()) freezePlain(v)
    return
  }
  if (isImmutable(value)) {
    for (const v of (value as unknown as { values(): Iterable<unknown> }).values()) freezePlain(v)
    return
  }
  if (value instanceof Map) {
    for (const [k, v] of value) {
      freezePlain(k)
      freezePlain(v)
    }
    return
  }
  if (value instanceof Set) {
    for (const v of value) freezePlain(v)
    return
  }
  if (Object.isFrozen(value)) return
  Object.freeze(value)
  for (const v of Object.values(value)) freezePlain(v)
}

/** CRC-32 (IEEE) of bytes, to detect a corrupt or mixed-up checkpoint. */
export function crc32(bytes: Uint8Array, crc = 0): number {
  let c = ~crc
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8)
  return ~c >>> 0
}

const CRC_TABLE = (() => {
  const t = new Int32Array(256)
  for (let n = 0; n < 256; n++) {
    let c = n
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1
    t[n] = c
  }
  return t
})()
