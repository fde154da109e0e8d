// The wire format of object ops: one msgpack array per log entry,
//
//   [RECORD_OP, typeName, formatVersion, mutatorName, args]
//
// e.g. [1, "QMap", 1, "set", ["alice", {"age": 3}]] — 20-odd bytes for a small op. The
// leading record kind leaves room for other records on object streams (checkpoints,
// transaction records) without guessing from shapes; a kind this client does not know
// poisons the objects it names (never a silent skip).
//
// Arguments must be plain data: null, booleans, numbers, strings, Uint8Array, Date, arrays
// and plain objects of those. `undefined` round-trips (as a msgpack extension), so the
// value a mutator sees equals the value the caller passed. Anything else (Map, Set, class
// instances, functions, bigint) is rejected before it is appended, because msgpack would
// silently turn it into something else and the writer's intent would be lost.

import { Decoder, Encoder, ExtensionCodec } from '@msgpack/msgpack'
import { ObjectError } from './errors.ts'
import { EXT_UNDEFINED, FastDecoder, Unsupported } from './fast-decode.ts'
import { MsgpackWriter, arrayHeaderSize, isAscii, numberSize } from '../log-server/msgpack-writer.ts'

export const RECORD_OP = 1
/** A committed transaction: `[2, [[object, type, version, mutator, args], ...]]`, applied to each object it names, in order. */
export const RECORD_TX = 2

/** One op of a transaction record, for the object named `object`. */
export interface TxOpRecord extends OpRecord {
  readonly object: string
}

export interface OpRecord {
  readonly type: string
  readonly version: number
  readonly mutator: string
  readonly args: readonly unknown[]
}

export type DecodedRecord =
  | { readonly kind: 'op'; readonly type: string; readonly version: number; readonly mutator: string; readonly args: readonly unknown[] }
  | { readonly kind: 'tx'; readonly ops: readonly TxOpRecord[] }
  | { readonly kind: 'invalid'; readonly reason: string }

/** Stands for `undefined` inside args while they are encoded (msgpack would turn it into nil). */
const UNDEFINED_MARK: object = Object.freeze({ mark: 'undefined' })

const extensionCodec = new ExtensionCodec()
extensionCodec.register({
  type: EXT_UNDEFINED,
  encode: (value: unknown) => (value === UNDEFINED_MARK ? new Uint8Array(0) : null),
  decode: () => undefined,
})

const encoder = new Encoder({ extensionCodec })
const decoder = new Decoder({ extensionCodec })
const fast = new FastDecoder()

export function encodeOp(op: OpRecord): Uint8Array {
  return encodeOwnOp(op).data
}

/**
 * encodeOp, and whether the bytes decode back to `op` itself (flat args without -0, as
 * isFlatOp): then whoever plays them back may take `op` instead of decoding them.
 */
export function encodeOwnOp(op: OpRecord): { readonly data: Uint8Array; readonly decodesToItself: boolean } {
  if (typeof op.type !== 'string' || op.type.length === 0) throw new ObjectError('bad_argument', 'op type must be a non-empty string')
  if (typeof op.mutator !== 'string' || op.mutator.length === 0) throw new ObjectError('bad_argument', 'op mutator must be a non-empty string')
  const fast = encodeFlatOp(op)
  if (fast !== null) return { data: fast, decodesToItself: !hasNegativeZero(op.args) }
  const args = prepareArgs(op.args, `${op.type}.${op.mutator}`)
  return { data: encoder.encode([RECORD_OP, op.type, op.version, op.mutator, args]), decodesToItself: false }
}

/** (msgpack writes -0 as the integer 0.) */
function hasNegativeZero(args: readonly unknown[]): boolean {
  for (let i = 0; i < args.length; i++) if (args[i] === 0 && Object.is(args[i], -0)) return true
  return false
}

// The common op — a few ASCII strings, small integers, floats, booleans or null as args
// (map.set('k', 3), counter.add(1)) — is written directly: the same bytes the library
// writes, without its per-value dispatch. Anything else goes the general way.

const FLAT_ARGS_MAX = 15
const FLAT_STRING_MAX = 0xffff
/**
 * Encoded leading items of op records, by the strings and number they encode; bounded.
 * Looked up by nested Maps, so that the (usually same) name strings are hashed once, not
 * joined into a new key per op.
 */
class PrefixCache {
  private readonly byA = new Map<string, Map<string, Map<number, Uint8Array>>>()
  private size = 0
  constructor(private readonly make: (a: string, b: string, n: number) => Uint8Array) {}

  // The last hit: a run of ops of one type and mutator (the usual load) skips the lookups.
  private lastA = ''
  private lastB = ''
  private lastN = NaN
  private lastHit: Uint8Array | null = null

  get(a: string, b: string, n: number): Uint8Array {
    if (a === this.lastA && b === this.lastB && n === this.lastN && this.lastHit !== null) return this.lastHit
    const hit = this.lookup(a, b, n)
    this.lastA = a
    this.lastB = b
    this.lastN = n
    this.lastHit = hit
    return hit
  }

  private lookup(a: string, b: string, n: number): Uint8Array {
    let byB = this.byA.get(a)
    let byN = byB?.get(b)
    const hit = byN?.get(n)
    if (hit !== undefined) return hit
    const made = this.make(a, b, n)
    if (this.size < OP_PREFIXES_MAX) {
      if (byB === undefined) this.byA.set(a, (byB = new Map()))
      if (byN === undefined) byB.set(b, (byN = new Map()))
      byN.set(n, made)
      this.size++
    }
    return made
  }
}
const OP_PREFIXES_MAX = 4096

/** Without the trailing empty args array (0x90). */
const withoutArgs = (whole: Uint8Array): Uint8Array => whole.slice(0, whole.length - 1)

/** Encoded [RECORD_OP, type, version, mutator] (with the 5-item array header), by (type, mutator, version). */
const opPrefixes = new PrefixCache((type, mutator, version) => withoutArgs(encoder.encode([RECORD_OP, type, version, mutator, []])))

function opPrefix(op: OpRecord): Uint8Array {
  return opPrefixes.get(op.type, op.mutator, op.version)
}

/**
 * Bytes the flat encoding of `args` takes (array header included), or -1 if some arg is
 * not flat (see above).
 */
function flatArgsSize(args: readonly unknown[]): number {
  if (args.length > FLAT_ARGS_MAX) return -1
  let size = 1
  for (let i = 0; i < args.length; i++) {
    const a = args[i]
    if (typeof a === 'string') {
      if (a.length > FLAT_STRING_MAX || !isAscii(a)) return -1
      size += 3 + a.length
    } else if (typeof a === 'number') {
      size += numberSize(a)
    } else if (typeof a === 'boolean' || a === null) {
      size += 1
    } else {
      return -1
    }
  }
  return size
}

function writeFlatArgs(w: MsgpackWriter, args: readonly unknown[]): void {
  w.u8(0x90 | args.length)
  for (let i = 0; i < args.length; i++) {
    const a = args[i]
    if (typeof a === 'string') {
      w.asciiStr(a) // checked by flatArgsSize
    } else if (typeof a === 'number') {
      w.number(a)
    } else {
      w.u8(a === null ? 0xc0 : a === true ? 0xc3 : 0xc2)
    }
  }
}

/**
 * Whether an op's args can be used as they are, without the encode/decode round trip that
 * checks and freezes them: every arg is flat (see above; primitives are immutable) and
 * decodes back to itself, which every flat value does except -0 (msgpack writes the
 * integer 0). Then encodeOp and encodeTx take them too.
 */
export function isFlatOp(op: OpRecord): boolean {
  if (typeof op.type !== 'string' || op.type.length === 0 || typeof op.mutator !== 'string' || op.mutator.length === 0) return false
  return flatArgsSize(op.args) >= 0 && !hasNegativeZero(op.args)
}

// Small encodings are written into a shared slab and handed out as views of it (as
// Buffer's pool does): no ArrayBuffer and no DataView per op. A view is never written again.
const SLAB_BYTES = 16 * 1024
const SLAB_ITEM_MAX = 1024
let slab = new MsgpackWriter(new Uint8Array(SLAB_BYTES))

/** A writer with room for `size` bytes from its `pos`; `take(w, start)` then hands them out. */
function writerFor(size: number): MsgpackWriter {
  if (size > SLAB_ITEM_MAX) return new MsgpackWriter(new Uint8Array(size))
  if (slab.pos + size > SLAB_BYTES) slab = new MsgpackWriter(new Uint8Array(SLAB_BYTES))
  return slab
}

function take(w: MsgpackWriter, start: number): Uint8Array {
  if (w !== slab) return w.pos === w.out.length ? w.out : w.out.subarray(0, w.pos)
  const out = w.out.subarray(start, w.pos)
  w.pos = Math.min(SLAB_BYTES, (w.pos + 7) & ~7) // the next view starts 8-aligned
  return out
}

/** The op's bytes when every arg is flat (see above), else null. */
export function encodeFlatOp(op: OpRecord): Uint8Array | null {
  const size = flatArgsSize(op.args)
  if (size < 0) return null
  const prefix = opPrefix(op)
  const w = writerFor(prefix.length + size)
  const start = w.pos
  w.bytes(prefix)
  writeFlatArgs(w, op.args)
  return take(w, start)
}

/** A transaction op `[object, type, version, mutator, args]` starts with its 5-item array header and the object's name. */
const txOpHeads = new PrefixCache((object) => {
  const name = encoder.encode(object)
  const out = new Uint8Array(1 + name.length)
  out[0] = 0x95
  out.set(name, 1)
  return out
})

/** ... and goes on with [type, version, mutator]: an op prefix without its header and record kind. */
const txOpTails = new PrefixCache((type, mutator, version) => opPrefixes.get(type, mutator, version).slice(2))

/**
 * Encodes a transaction's commit record. Args were checked when each op was buffered
 * (encodeOp, or isFlatOp). Flat ops, the common case, are written directly, byte for byte
 * as the library writes them.
 */
export function encodeTx(ops: readonly TxOpRecord[]): Uint8Array {
  let size = 2 + arrayHeaderSize(ops.length)
  for (const op of ops) {
    const n = flatArgsSize(op.args)
    if (n < 0) return encoder.encode([RECORD_TX, ops.map((o) => [o.object, o.type, o.version, o.mutator, prepareArgs(o.args, `${o.type}.${o.mutator}`)])])
    size += txOpHeads.get(op.object, '', 0).length + txOpTails.get(op.type, op.mutator, op.version).length + n
  }
  const w = writerFor(size)
  const start = w.pos
  w.u8(0x92) // [RECORD_TX, ops]
  w.u8(RECORD_TX)
  w.arrayHeader(ops.length)
  for (const op of ops) {
    w.bytes(txOpHeads.get(op.object, '', 0))
    w.bytes(txOpTails.get(op.type, op.mutator, op.version))
    writeFlatArgs(w, op.args)
  }
  return take(w, start)
}

// Transaction records of flat ops — what encodeTx writes for the common transaction — are
// read back directly: [0x92, 2, n ops × (0x95, object, type, version, mutator, flat args)].
// Anything else in them (other value types, non-ASCII strings, 64-bit integers, float32)
// makes readFlatTx answer null, and the record is decoded the general way; both give equal
// values (args arrays frozen).

const f64 = new Float64Array(1)
const f64Bytes = new Uint8Array(f64.buffer)
const hostLittleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1

/** Reads one flat record at a time; `pos` < 0 after anything it does not read. */
class FlatTxReader {
  private data: Uint8Array = new Uint8Array(0)
  private pos = 0
  /** The last names read, returned again when the same bytes come back (no new string). */
  private readonly names: string[] = []
  private readonly nameBytes: Uint8Array[] = []

  read(data: Uint8Array): DecodedRecord | null {
    this.data = data
    this.pos = 2
    if (data.length < 3 || data[0] !== 0x92 || data[1] !== RECORD_TX) return null
    const head = data[2]!
    let n: number
    if (head >= 0x90 && head <= 0x9f) {
      n = head - 0x90
      this.pos = 3
    } else if (head === 0xdc && data.length >= 5) {
      n = (data[3]! << 8) | data[4]!
      this.pos = 5
    } else {
      return null
    }
    const ops = new Array<TxOpRecord>(n)
    for (let i = 0; i < n; i++) {
      if (data[this.pos++] !== 0x95) return null
      const object = this.name(0)
      const type = this.name(1)
      const version = this.value()
      const mutator = this.name(2)
      const argsHead = data[this.pos++]
      if (object === null || type === null || mutator === null || typeof version !== 'number' || argsHead === undefined || argsHead < 0x90 || argsHead > 0x9f) return null
      const args = new Array<unknown>(argsHead - 0x90)
      for (let j = 0; j < args.length; j++) {
        const v = this.value()
        if (v === NOT_FLAT) return null
        args[j] = v
      }
      ops[i] = { object, type, version, mutator, args: Object.freeze(args) }
    }
    if (this.pos !== data.length) return null
    return { kind: 'tx', ops }
  }

  /** An ASCII string; the one read last in this slot if the bytes are the same. Null if not an ASCII str. */
  private name(slot: number): string | null {
    const data = this.data
    const head = data[this.pos]
    if (head === undefined || head < 0xa0 || head > 0xbf) return null // fixstr only: names are short
    const length = head - 0xa0
    const start = this.pos + 1
    const end = start + length
    if (end > data.length) return null
    this.pos = end
    const last = this.nameBytes[slot]
    if (last !== undefined && last.length === length) {
      let same = true
      for (let i = 0; i < length; i++) {
        if (last[i] !== data[start + i]) {
          same = false
          break
        }
      }
      if (same) return this.names[slot]!
    }
    const s = this.ascii(start, end)
    if (s === null) return null
    this.names[slot] = s
    this.nameBytes[slot] = data.slice(start, end)
    return s
  }

  private ascii(start: number, end: number): string | null {
    const data = this.data
    let s = ''
    for (let i = start; i < end; i++) {
      const c = data[i]!
      if (c > 0x7f) return null
      s += String.fromCharCode(c)
    }
    return s
  }

  /** A flat value (null, boolean, number that is not 64-bit or float32, ASCII string), else NOT_FLAT. */
  private value(): unknown {
    const data = this.data
    const p = this.pos
    const b = data[p]
    if (b === undefined) return NOT_FLAT
    this.pos = p + 1
    if (b <= 0x7f) return b
    if (b >= 0xe0) return b - 0x100
    if (b >= 0xa0 && b <= 0xbf) return this.str(b - 0xa0)
    switch (b) {
      case 0xc0:
        return null
      case 0xc2:
        return false
      case 0xc3:
        return true
      case 0xcc:
        return this.need(1) ? data[p + 1]! : NOT_FLAT
      case 0xcd:
        return this.need(2) ? (data[p + 1]! << 8) | data[p + 2]! : NOT_FLAT
      case 0xce:
        return this.need(4) ? ((data[p + 1]! << 24) | (data[p + 2]! << 16) | (data[p + 3]! << 8) | data[p + 4]!) >>> 0 : NOT_FLAT
      case 0xd0:
        return this.need(1) ? (data[p + 1]! << 24) >> 24 : NOT_FLAT
      case 0xd1:
        return this.need(2) ? (((data[p + 1]! << 8) | data[p + 2]!) << 16) >> 16 : NOT_FLAT
      case 0xd2:
        return this.need(4) ? (data[p + 1]! << 24) | (data[p + 2]! << 16) | (data[p + 3]! << 8) | data[p + 4]! : NOT_FLAT
      case 0xcb: {
        if (!this.need(8)) return NOT_FLAT
        for (let i = 0; i < 8; i++) f64Bytes[hostLittleEndian ? 7 - i : i] = data[p + 1 + i]!
        return f64[0]
      }
      case 0xd9:
        return this.need(1) ? this.str(data[p + 1]!) : NOT_FLAT
      case 0xda:
        return this.need(2) ? this.str((data[p + 1]! << 8) | data[p + 2]!) : NOT_FLAT
      default:
        return NOT_FLAT
    }
  }

  /** Whether `n` bytes follow the value's first byte; if so, skips them. */
  private need(n: number): boolean {
    if (this.pos + n > this.data.length) return false
    this.pos += n
    return true
  }

  private str(length: number): unknown {
    const start = this.pos
    const end = start + length
    if (end > this.data.length) return NOT_FLAT
    this.pos = end
    return this.ascii(start, end) ?? NOT_FLAT
  }
}

const NOT_FLAT: unique symbol = Symbol('not flat')
const flatTx = new FlatTxReader()

function decodeTx(value: unknown): DecodedRecord {
  const list = Array.isArray(value) && value.length === 2 ? (value[1] as unknown) : undefined
  if (!Array.isArray(list)) return { kind: 'invalid', reason: 'malformed transaction record' }
  const ops: TxOpRecord[] = []
  for (const raw of list as unknown[]) {
    if (!Array.isArray(raw) || raw.length !== 5) return { kind: 'invalid', reason: 'malformed transaction record' }
    const [object, type, version, mutator, args] = raw as unknown[]
    if (typeof object !== 'string' || typeof type !== 'string' || typeof version !== 'number' || typeof mutator !== 'string' || !Array.isArray(args)) {
      return { kind: 'invalid', reason: 'malformed transaction record' }
    }
    ops.push({ object, type, version, mutator, args })
  }
  return { kind: 'tx', ops }
}

/**
 * Decodes one entry's data. Never throws: a bad record is reported, and poisons its
 * objects. Args come back deeply frozen.
 */
export function decodeRecord(data: Uint8Array): DecodedRecord {
  let kind: unknown
  let type: unknown
  let version: unknown
  let mutator: unknown
  let args: unknown
  try {
    const header = fast.decodeOpHeader(data)
    if (header === null) return (data[0] === 0x92 ? flatTx.read(data) : null) ?? describeOther(fast.decode(data))
    ;({ kind, type, version, mutator, args } = header)
  } catch (err) {
    if (!(err instanceof Unsupported)) return { kind: 'invalid', reason: `undecodable entry (${errorMessage(err)})` }
    // An extension type the fast path does not know: the library decodes it (as ExtData).
    let value: unknown
    try {
      value = decoder.decode(data)
    } catch (libraryErr) {
      return { kind: 'invalid', reason: `undecodable entry (${errorMessage(libraryErr)})` }
    }
    deepFreeze(value)
    if (!Array.isArray(value) || value.length !== 5) return describeOther(value)
    ;[kind, type, version, mutator, args] = value as unknown[]
  }
  if (kind !== RECORD_OP) return { kind: 'invalid', reason: `unknown record kind ${JSON.stringify(kind)}` }
  if (typeof type !== 'string' || typeof version !== 'number' || typeof mutator !== 'string' || !Array.isArray(args)) {
    return { kind: 'invalid', reason: 'malformed op record' }
  }
  return { kind: 'op', type, version, mutator, args }
}

function describeOther(value: unknown): DecodedRecord {
  if (!Array.isArray(value) || value.length === 0) return { kind: 'invalid', reason: 'entry is not a tagged record' }
  if (value[0] === RECORD_TX) {
    deepFreeze(value)
    return decodeTx(value)
  }
  if (value[0] !== RECORD_OP) return { kind: 'invalid', reason: `unknown record kind ${JSON.stringify(value[0])}` }
  return { kind: 'invalid', reason: 'malformed op record' }
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}

/**
 * Checks that args are plain data and swaps nested `undefined` for the marker. Copies
 * only the containers on the way to an `undefined`; other args are returned as they are.
 */
function prepareArgs(args: readonly unknown[], where: string): unknown[] {
  const out = args.slice()
  for (let i = 0; i < out.length; i++) out[i] = prepareValue(out[i], `${where} argument ${i}`, 0)
  return out
}

function prepareValue(value: unknown, path: string, depth: number): unknown {
  if (depth > 64) throw new ObjectError('bad_argument', `${path}: nested more than 64 levels`)
  switch (typeof value) {
    case 'undefined':
      return UNDEFINED_MARK
    case 'boolean':
    case 'number':
    case 'string':
      return value
    case 'object': {
      if (value === null || value instanceof Uint8Array || value instanceof Date) return value
      if (Array.isArray(value)) {
        let copy: unknown[] | undefined
        for (let i = 0; i < value.length; i++) {
          const v: unknown = value[i]
          const p = prepareValue(v, `${path}[${i}]`, depth + 1)
          if (p !== v) (copy ??= value.slice())[i] = p
        }
        return copy ?? value
      }
      const proto: unknown = Object.getPrototypeOf(value)
      if (proto === Object.prototype || proto === null) {
        let copy: Record<string, unknown> | undefined
        for (const [k, v] of Object.entries(value)) {
          if (k === '__proto__') throw new ObjectError('bad_argument', `${path}: a key named __proto__ cannot be sent in an op`)
          const p = prepareValue(v, `${path}.${k}`, depth + 1)
          if (p !== v) (copy ??= { ...value })[k] = p
        }
        return copy ?? value
      }
      const what = (value as { constructor?: { name?: string } }).constructor?.name ?? 'object'
      throw new ObjectError('bad_argument', `${path}: a ${what} is not plain data (use arrays and plain objects)`)
    }
    default:
      throw new ObjectError('bad_argument', `${path}: a ${typeof value} cannot be sent in an op`)
  }
}

/** Freezes decoded args so that values stored in state (or handed to callers) cannot be changed in place. */
export function deepFreeze(value: unknown): void {
  if (typeof value !== 'object' || value === null || Object.isFrozen(value) || ArrayBuffer.isView(value)) return
  Object.freeze(value)
  if (Array.isArray(value)) {
    for (const v of value) deepFreeze(v)
  } else {
    for (const v of Object.values(value)) deepFreeze(v)
  }
}
