// A msgpack decoder for the hot path of playback (replay must decode ≥ 500,000 entries/s
// together with applying them). It reads exactly what @msgpack/msgpack reads, with the
// same results (numbers, UTF-8 rules, int64 as numbers, timestamps as Date, map keys,
// `__proto__` refused), but:
//   - no DataView or decoder state per call (the library builds a DataView per buffer);
//   - short ASCII strings that repeat (type and mutator names) are interned, not rebuilt;
//   - containers are frozen as they are built (decoded args must be immutable).
// Anything it does not handle (extension types other than `undefined` and timestamps)
// throws `Unsupported`, and the caller falls back to the library for that entry. Both
// paths give equal values, so clients agree whichever path an entry takes.

import { decodeTimestampExtension } from '@msgpack/msgpack'
import type { LogEntry } from './log-client.ts'

export const EXT_UNDEFINED = 0
const EXT_TIMESTAMP = -1

export class Unsupported extends Error {}
export class Malformed extends Error {}

const f32 = new Float32Array(1)
const f32Bytes = new Uint8Array(f32.buffer)
const f64 = new Float64Array(1)
const f64Bytes = new Uint8Array(f64.buffer)
const littleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1
const textDecoder = new TextDecoder()

/** Interned short ASCII strings, by content hash. Bounded: past the bound, strings are just built. */
const interned = new Map<number, string>()
const INTERNED_MAX = 4096

/** Field names of a read answer, by KEY_* index. */
const KEY_NAMES = ['entries', 'next', 'position', 'streams', 'data', 'ts'] as const
const KEY_ENTRIES = 0
const KEY_NEXT = 1
const KEY_POSITION = 2
const KEY_STREAMS = 3
const KEY_DATA = 4
const KEY_TS = 5
const LAYOUT_HEAD = Uint8Array.of(0x84, 0xa8, ...Array.from('position', (c) => c.charCodeAt(0)))
const LAYOUT_STREAMS = Uint8Array.of(0xa7, ...Array.from('streams', (c) => c.charCodeAt(0)))
const LAYOUT_DATA = Uint8Array.of(0xa4, ...Array.from('data', (c) => c.charCodeAt(0)))
const LAYOUT_TS = Uint8Array.of(0xa2, 0x74, 0x73)
const KEY_BYTES = KEY_NAMES.map((name) => Uint8Array.from(name, (c) => c.charCodeAt(0)))

/** The fields of an op record, as decodeOpHeader() found them (not yet checked). */
export interface OpHeader {
  kind: unknown
  type: unknown
  version: unknown
  mutator: unknown
  args: unknown
}

export class FastDecoder {
  private bytes: Uint8Array = new Uint8Array(0)
  private pos = 0
  /** decodeReadAnswer: whether the bytes are a plain Uint8Array (not a Buffer or other subclass). */
  private plain = false
  private readonly header: OpHeader = { kind: undefined, type: undefined, version: undefined, mutator: undefined, args: undefined }

  /** Decodes one whole msgpack value. Throws Unsupported or Malformed. */
  decode(bytes: Uint8Array): unknown {
    this.bytes = bytes
    this.pos = 0
    const value = this.value(0)
    if (this.pos !== bytes.length) throw new Malformed(`${bytes.length - this.pos} extra bytes after the value`)
    return value
  }

  /**
   * Decodes an op record `[kind, type, version, mutator, args]` without building the
   * outer array; the two names are interned. Returns null if the bytes are not a
   * 5-element array (the caller then decodes generically to report what it is).
   * The answer is one object of this decoder, overwritten by the next call: read its
   * fields before decoding again (one object per entry less for the collector).
   */
  decodeOpHeader(bytes: Uint8Array): OpHeader | null {
    this.bytes = bytes
    this.pos = 0
    if (bytes.length === 0 || bytes[0] !== 0x95) return null
    this.pos = 1
    const kind = this.value(0)
    const type = this.value(0, true)
    const version = this.value(0)
    const mutator = this.value(0, true)
    // The args array itself is never stored (its elements are), so it is left unfrozen.
    const head = this.bytes[this.pos]
    const args = head !== undefined && head >= 0x90 && head <= 0x9f ? (this.pos++, this.array(head - 0x90, 0, false)) : this.value(0)
    if (this.pos !== bytes.length) throw new Malformed(`${bytes.length - this.pos} extra bytes after the record`)
    const h = this.header
    h.kind = kind
    h.type = type
    h.version = version
    h.mutator = mutator
    h.args = args
    return h
  }

  /**
   * Decodes a read answer `{ entries: [{ position, streams, data, ts? }], next }` straight
   * into LogEntry objects, for the catch-up path of the HTTP client: `data` is a view of
   * `bytes` (no copy, as the library gives), field names are matched in place, and an
   * entry naming the same streams as the entry before it shares that entry's (frozen)
   * `streams` array. Returns null for anything else (other or missing fields, other
   * types): the caller then decodes generically.
   */
  decodeReadAnswer(bytes: Uint8Array): { entries: LogEntry[]; next: number } | null {
    this.bytes = bytes
    this.pos = 0
    this.plain = bytes.constructor === Uint8Array
    const fields = this.mapHeader()
    if (fields < 0) return null
    let entries: LogEntry[] | null | undefined = null
    let next: number | null | undefined = null
    for (let f = 0; f < fields; f++) {
      const key = this.key()
      if (key === KEY_ENTRIES && entries === null) entries = this.wireEntries()
      else if (key === KEY_NEXT && next === null) next = this.safeInt()
      else return null
      if (entries === undefined || next === undefined) return null
    }
    if (entries === null || next === null || this.pos !== bytes.length) return null
    return { entries, next }
  }

  /** The entries array of a read answer; undefined if it is not one. */
  private wireEntries(): LogEntry[] | undefined {
    const count = this.arrayHeader()
    if (count < 0) return undefined
    const out: LogEntry[] = []
    const b = this.bytes
    let lastStreams: readonly string[] = []
    let lastStart = -1
    let lastEnd = -1
    for (let i = 0; i < count; i++) {
      // The layout servers write (read-answer.ts), read with local offsets; anything else
      // goes the general way below.
      if (lastStart >= 0) {
        const e = this.laidOutEntry(lastStart, lastEnd - lastStart, lastStreams)
        if (e !== null) {
          out.push(e)
          continue
        }
      }
      const fields = this.mapHeader()
      if (fields < 0) return undefined
      let position: number | undefined
      let streams: readonly string[] | undefined
      let data: Uint8Array | undefined
      let ts: number | undefined
      for (let f = 0; f < fields; f++) {
        switch (this.key()) {
          case KEY_POSITION:
            position = this.safeInt()
            if (position === undefined) return undefined
            break
          case KEY_STREAMS: {
            const start = this.pos
            // The same streams as the entry before (bytes compared in place): the same array.
            const end = start + (lastEnd - lastStart)
            let same = lastStart >= 0 && end <= b.length
            for (let k = 0; same && k < lastEnd - lastStart; k++) same = b[start + k] === b[lastStart + k]
            if (same) {
              this.pos = end
              streams = lastStreams
            } else {
              const n = this.arrayHeader()
              if (n < 0) return undefined
              const list: string[] = []
              for (let k = 0; k < n; k++) {
                const head = this.u8()
                const len = head >= 0xa0 && head <= 0xbf ? head - 0xa0 : head === 0xd9 ? this.u8() : head === 0xda ? this.u16() : -1
                if (len < 0) return undefined
                list.push(this.str(len, true))
              }
              streams = lastStreams = Object.freeze(list)
              lastStart = start
              lastEnd = this.pos
            }
            break
          }
          case KEY_DATA: {
            const head = this.u8()
            const len = head === 0xc4 ? this.u8() : head === 0xc5 ? this.u16() : head === 0xc6 ? this.u32() : -1
            if (len < 0) return undefined
            this.need(len)
            data = b.subarray(this.pos, this.pos + len)
            this.pos += len
            break
          }
          case KEY_TS:
            ts = this.number()
            if (ts === undefined) return undefined
            break
          default:
            return undefined
        }
      }
      if (position === undefined || streams === undefined || data === undefined) return undefined
      out.push(ts === undefined ? { position, streams, data } : { position, streams, data, ts })
    }
    return out
  }

  /**
   * `{ position: uint, streams: <the bytes at streamsAt>, data: bin, ts: uint }` at the
   * cursor, exactly in that order and with those streams (the entry before's): the entry,
   * cursor moved past it. Otherwise null and the cursor does not move.
   */
  private laidOutEntry(streamsAt: number, streamsLength: number, streams: readonly string[]): LogEntry | null {
    const b = this.bytes
    const n = b.length
    let p = this.pos
    // 0x84 "position"
    if (p + LAYOUT_HEAD.length > n) return null
    for (let k = 0; k < LAYOUT_HEAD.length; k++) if (b[p + k] !== LAYOUT_HEAD[k]) return null
    p += LAYOUT_HEAD.length
    let position: number
    const h = b[p]!
    if (h <= 0x7f) {
      position = h
      p += 1
    } else if (h === 0xcc && p + 2 <= n) {
      position = b[p + 1]!
      p += 2
    } else if (h === 0xcd && p + 3 <= n) {
      position = (b[p + 1]! << 8) | b[p + 2]!
      p += 3
    } else if (h === 0xce && p + 5 <= n) {
      position = ((b[p + 1]! << 24) | (b[p + 2]! << 16) | (b[p + 3]! << 8) | b[p + 4]!) >>> 0
      p += 5
    } else {
      return null
    }
    // "streams" <the same bytes as the entry before> "data"
    if (p + LAYOUT_STREAMS.length + streamsLength + LAYOUT_DATA.length > n) return null
    for (let k = 0; k < LAYOUT_STREAMS.length; k++) if (b[p + k] !== LAYOUT_STREAMS[k]) return null
    p += LAYOUT_STREAMS.length
    for (let k = 0; k < streamsLength; k++) if (b[p + k] !== b[streamsAt + k]) return null
    p += streamsLength
    for (let k = 0; k < LAYOUT_DATA.length; k++) if (b[p + k] !== LAYOUT_DATA[k]) return null
    p += LAYOUT_DATA.length
    // bin 8 / bin 16
    let len: number
    if (b[p] === 0xc4 && p + 2 <= n) {
      len = b[p + 1]!
      p += 2
    } else if (b[p] === 0xc5 && p + 3 <= n) {
      len = (b[p + 1]! << 8) | b[p + 2]!
      p += 3
    } else {
      return null
    }
    if (p + len + LAYOUT_TS.length + 9 > n) return null
    const dataAt = p
    p += len
    // "ts" uint 64 (log times in ms)
    for (let k = 0; k < LAYOUT_TS.length; k++) if (b[p + k] !== LAYOUT_TS[k]) return null
    p += LAYOUT_TS.length
    if (b[p] !== 0xcf) return null
    const hi = ((b[p + 1]! << 24) | (b[p + 2]! << 16) | (b[p + 3]! << 8) | b[p + 4]!) >>> 0
    const lo = ((b[p + 5]! << 24) | (b[p + 6]! << 16) | (b[p + 7]! << 8) | b[p + 8]!) >>> 0
    const ts = hi * 0x1_0000_0000 + lo
    if (!Number.isSafeInteger(ts)) return null
    p += 9
    this.pos = p
    // A view made by the constructor is the same view as subarray() makes of a plain
    // Uint8Array, for less (no species lookup); a Buffer's views stay Buffers.
    const data = this.plain ? new Uint8Array(b.buffer, b.byteOffset + dataAt, len) : b.subarray(dataAt, dataAt + len)
    return { position, streams, data, ts }
  }

  /** Number of fields of a map header at the cursor, or -1 if the value is not a map. */
  private mapHeader(): number {
    const head = this.u8()
    if (head >= 0x80 && head <= 0x8f) return head - 0x80
    if (head === 0xde) return this.u16()
    if (head === 0xdf) return this.u32()
    return -1
  }

  /** Number of elements of an array header at the cursor, or -1 if the value is not an array. */
  private arrayHeader(): number {
    const head = this.u8()
    if (head >= 0x90 && head <= 0x9f) return head - 0x90
    if (head === 0xdc) return this.u16()
    if (head === 0xdd) return this.u32()
    return -1
  }

  /** A non-negative safe integer at the cursor, else undefined. */
  private safeInt(): number | undefined {
    const v = this.number()
    return v !== undefined && Number.isSafeInteger(v) && v >= 0 ? v : undefined
  }

  /** A number at the cursor (unsigned forms read directly), else undefined. */
  private number(): number | undefined {
    const head = this.bytes[this.pos]
    if (head !== undefined && head <= 0x7f) {
      this.pos++
      return head
    }
    if (head === 0xce) {
      this.pos++
      return this.u32()
    }
    if (head === 0xcf) {
      this.pos++
      const hi = this.u32()
      return hi * 0x1_0000_0000 + this.u32()
    }
    const v = this.value(0)
    return typeof v === 'number' ? v : undefined
  }

  /** Which of the read answer's field names is at the cursor (KEY_*), -1 for any other value. */
  private key(): number {
    const b = this.bytes
    const head = b[this.pos]
    if (head === undefined || head < 0xa0 || head > 0xbf) {
      this.pos++
      return -1
    }
    const len = head - 0xa0
    this.need(len + 1)
    const p = this.pos + 1
    this.pos = p + len
    // The candidate by length (and first letter), then every byte.
    const k = len === 8 ? KEY_POSITION : len === 7 ? (b[p] === 0x73 ? KEY_STREAMS : KEY_ENTRIES) : len === 4 ? (b[p] === 0x64 ? KEY_DATA : KEY_NEXT) : len === 2 ? KEY_TS : -1
    if (k < 0) return -1
    const name = KEY_BYTES[k]!
    for (let i = 0; i < len; i++) if (b[p + i] !== name[i]) return -1
    return k
  }

  private need(n: number): void {
    if (this.pos + n > this.bytes.length) throw new Malformed('truncated')
  }

  private u8(): number {
    this.need(1)
    return this.bytes[this.pos++]!
  }

  private u16(): number {
    this.need(2)
    const b = this.bytes
    const v = (b[this.pos]! << 8) | b[this.pos + 1]!
    this.pos += 2
    return v
  }

  private u32(): number {
    this.need(4)
    const b = this.bytes
    const p = this.pos
    this.pos += 4
    return ((b[p]! << 24) | (b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!) >>> 0
  }

  private value(depth: number, intern = false): unknown {
    if (depth > 100) throw new Malformed('nested too deep')
    const head = this.u8()
    if (head <= 0x7f) return head
    if (head >= 0xe0) return head - 0x100
    if (head >= 0xa0 && head <= 0xbf) return this.str(head - 0xa0, intern)
    if (head >= 0x90 && head <= 0x9f) return this.array(head - 0x90, depth)
    if (head >= 0x80 && head <= 0x8f) return this.map(head - 0x80, depth)
    switch (head) {
      case 0xc0:
        return null
      case 0xc2:
        return false
      case 0xc3:
        return true
      case 0xcc:
        return this.u8()
      case 0xcd:
        return this.u16()
      case 0xce:
        return this.u32()
      case 0xcf: {
        const hi = this.u32()
        return hi * 0x1_0000_0000 + this.u32()
      }
      case 0xd0: {
        const v = this.u8()
        return v > 0x7f ? v - 0x100 : v
      }
      case 0xd1: {
        const v = this.u16()
        return v > 0x7fff ? v - 0x10000 : v
      }
      case 0xd2:
        return this.u32() | 0
      case 0xd3: {
        const hi = this.u32() | 0
        return hi * 0x1_0000_0000 + this.u32()
      }
      case 0xca:
        return this.float(4)
      case 0xcb:
        return this.float(8)
      case 0xd9:
        return this.str(this.u8(), intern)
      case 0xda:
        return this.str(this.u16(), intern)
      case 0xdb:
        return this.str(this.u32(), intern)
      case 0xc4:
        return this.bin(this.u8())
      case 0xc5:
        return this.bin(this.u16())
      case 0xc6:
        return this.bin(this.u32())
      case 0xdc:
        return this.array(this.u16(), depth)
      case 0xdd:
        return this.array(this.u32(), depth)
      case 0xde:
        return this.map(this.u16(), depth)
      case 0xdf:
        return this.map(this.u32(), depth)
      case 0xd4:
        return this.ext(1)
      case 0xd5:
        return this.ext(2)
      case 0xd6:
        return this.ext(4)
      case 0xd7:
        return this.ext(8)
      case 0xd8:
        return this.ext(16)
      case 0xc7:
        return this.ext(this.u8())
      case 0xc8:
        return this.ext(this.u16())
      case 0xc9:
        return this.ext(this.u32())
      default:
        throw new Malformed(`invalid byte 0x${head.toString(16)}`)
    }
  }

  private float(size: 4 | 8): number {
    this.need(size)
    const b = this.bytes
    const target = size === 4 ? f32Bytes : f64Bytes
    for (let i = 0; i < size; i++) target[littleEndian ? size - 1 - i : i] = b[this.pos + i]!
    this.pos += size
    return size === 4 ? f32[0]! : f64[0]!
  }

  private str(length: number, intern: boolean): string {
    this.need(length)
    const b = this.bytes
    const start = this.pos
    this.pos += length
    if (length > 200) return textDecoder.decode(b.subarray(start, start + length))
    let ascii = true
    let hash = 0x811c9dc5
    for (let i = start; i < start + length; i++) {
      const c = b[i]!
      if (c > 0x7f) {
        ascii = false
        break
      }
      hash = Math.imul(hash ^ c, 0x01000193)
    }
    if (ascii) {
      if (intern && length <= 64) {
        const key = (hash ^ length) | 0
        const known = interned.get(key)
        if (known !== undefined && known.length === length) {
          let same = true
          for (let i = 0; i < length; i++) {
            if (known.charCodeAt(i) !== b[start + i]) {
              same = false
              break
            }
          }
          if (same) return known
        }
        const s = asciiString(b, start, length)
        if (interned.size < INTERNED_MAX) interned.set(key, s)
        return s
      }
      return asciiString(b, start, length)
    }
    return utf8DecodeJs(b, start, length)
  }

  private bin(length: number): Uint8Array {
    this.need(length)
    const out = this.bytes.slice(this.pos, this.pos + length)
    this.pos += length
    return out
  }

  private array(length: number, depth: number, freeze = true): unknown[] {
    // Exactly sized: push() from [] reserves 17 slots for the first element. (Literal
    // elements are evaluated left to right.)
    const d = depth + 1
    let out: unknown[]
    switch (length) {
      case 0:
        out = []
        break
      case 1:
        out = [this.value(d)]
        break
      case 2:
        out = [this.value(d), this.value(d)]
        break
      case 3:
        out = [this.value(d), this.value(d), this.value(d)]
        break
      case 4:
        out = [this.value(d), this.value(d), this.value(d), this.value(d)]
        break
      default:
        out = []
        for (let i = 0; i < length; i++) out.push(this.value(d))
    }
    return freeze ? (Object.freeze(out) as unknown[]) : out
  }

  private map(size: number, depth: number): Record<string, unknown> {
    const out: Record<string, unknown> = {}
    for (let i = 0; i < size; i++) {
      const key = this.value(depth + 1)
      if (typeof key !== 'string' && typeof key !== 'number') throw new Malformed(`a map key must be a string or a number, not ${typeof key}`)
      if (key === '__proto__') throw new Malformed('the key __proto__ is not allowed')
      out[key] = this.value(depth + 1)
    }
    return Object.freeze(out)
  }

  private ext(length: number): unknown {
    const typeByte = this.u8()
    const type = typeByte > 0x7f ? typeByte - 0x100 : typeByte
    this.need(length)
    const data = this.bytes.subarray(this.pos, this.pos + length)
    this.pos += length
    if (type === EXT_UNDEFINED) return undefined
    if (type === EXT_TIMESTAMP) return Object.freeze(decodeTimestampExtension(data))
    throw new Unsupported(`extension type ${type}`)
  }
}

function asciiString(b: Uint8Array, s: number, length: number): string {
  // One string built at once: concatenating a character at a time makes a garbage string
  // per character (most keys are short), and apply() over a subarray makes a view.
  switch (length) {
    case 0:
      return ''
    case 1:
      return String.fromCharCode(b[s]!)
    case 2:
      return String.fromCharCode(b[s]!, b[s + 1]!)
    case 3:
      return String.fromCharCode(b[s]!, b[s + 1]!, b[s + 2]!)
    case 4:
      return String.fromCharCode(b[s]!, b[s + 1]!, b[s + 2]!, b[s + 3]!)
    case 5:
      return String.fromCharCode(b[s]!, b[s + 1]!, b[s + 2]!, b[s + 3]!, b[s + 4]!)
    case 6:
      return String.fromCharCode(b[s]!, b[s + 1]!, b[s + 2]!, b[s + 3]!, b[s + 4]!, b[s + 5]!)
    case 7:
      return String.fromCharCode(b[s]!, b[s + 1]!, b[s + 2]!, b[s + 3]!, b[s + 4]!, b[s + 5]!, b[s + 6]!)
    case 8:
      return String.fromCharCode(b[s]!, b[s + 1]!, b[s + 2]!, b[s + 3]!, b[s + 4]!, b[s + 5]!, b[s + 6]!, b[s + 7]!)
    case 9:
      return String.fromCharCode(b[s]!, b[s + 1]!, b[s + 2]!, b[s + 3]!, b[s + 4]!, b[s + 5]!, b[s + 6]!, b[s + 7]!, b[s + 8]!)
    case 10:
      return String.fromCharCode(b[s]!, b[s + 1]!, b[s + 2]!, b[s + 3]!, b[s + 4]!, b[s + 5]!, b[s + 6]!, b[s + 7]!, b[s + 8]!, b[s + 9]!)
    case 11:
      return String.fromCharCode(b[s]!, b[s + 1]!, b[s + 2]!, b[s + 3]!, b[s + 4]!, b[s + 5]!, b[s + 6]!, b[s + 7]!, b[s + 8]!, b[s + 9]!, b[s + 10]!)
    case 12:
      return String.fromCharCode(b[s]!, b[s + 1]!, b[s + 2]!, b[s + 3]!, b[s + 4]!, b[s + 5]!, b[s + 6]!, b[s + 7]!, b[s + 8]!, b[s + 9]!, b[s + 10]!, b[s + 11]!)
    case 13:
      return String.fromCharCode(b[s]!, b[s + 1]!, b[s + 2]!, b[s + 3]!, b[s + 4]!, b[s + 5]!, b[s + 6]!, b[s + 7]!, b[s + 8]!, b[s + 9]!, b[s + 10]!, b[s + 11]!, b[s + 12]!)
    case 14:
      return String.fromCharCode(b[s]!, b[s + 1]!, b[s + 2]!, b[s + 3]!, b[s + 4]!, b[s + 5]!, b[s + 6]!, b[s + 7]!, b[s + 8]!, b[s + 9]!, b[s + 10]!, b[s + 11]!, b[s + 12]!, b[s + 13]!)
    case 15:
      return String.fromCharCode(b[s]!, b[s + 1]!, b[s + 2]!, b[s + 3]!, b[s + 4]!, b[s + 5]!, b[s + 6]!, b[s + 7]!, b[s + 8]!, b[s + 9]!, b[s + 10]!, b[s + 11]!, b[s + 12]!, b[s + 13]!, b[s + 14]!)
    case 16:
      return String.fromCharCode(b[s]!, b[s + 1]!, b[s + 2]!, b[s + 3]!, b[s + 4]!, b[s + 5]!, b[s + 6]!, b[s + 7]!, b[s + 8]!, b[s + 9]!, b[s + 10]!, b[s + 11]!, b[s + 12]!, b[s + 13]!, b[s + 14]!, b[s + 15]!)
    default:
      // Native, and no view made: several times faster than fromCharCode.apply from ~20 bytes on.
      return latin1Slice.call(b, s, s + length)
  }
}

/** Buffer's native one-byte decoder; on ASCII bytes (checked by the caller) latin1 is ASCII. */
const latin1Slice = (Buffer.prototype as unknown as { latin1Slice(this: Uint8Array, start: number, end: number): string }).latin1Slice

/** Same algorithm as @msgpack/msgpack's utf8DecodeJs (used for strings of ≤ 200 bytes there too). */
function utf8DecodeJs(bytes: Uint8Array, inputOffset: number, byteLength: number): string {
  let offset = inputOffset
  const end = offset + byteLength
  const units: number[] = []
  while (offset < end) {
    const byte1 = bytes[offset++]!
    if ((byte1 & 0x80) === 0) {
      units.push(byte1)
    } else if ((byte1 & 0xe0) === 0xc0) {
      const byte2 = bytes[offset++]! & 0x3f
      units.push(((byte1 & 0x1f) << 6) | byte2)
    } else if ((byte1 & 0xf0) === 0xe0) {
      const byte2 = bytes[offset++]! & 0x3f
      const byte3 = bytes[offset++]! & 0x3f
      units.push(((byte1 & 0x1f) << 12) | (byte2 << 6) | byte3)
    } else if ((byte1 & 0xf8) === 0xf0) {
      const byte2 = bytes[offset++]! & 0x3f
      const byte3 = bytes[offset++]! & 0x3f
      const byte4 = bytes[offset++]! & 0x3f
      let unit = ((byte1 & 0x07) << 0x12) | (byte2 << 0x0c) | (byte3 << 0x06) | byte4
      if (unit > 0xffff) {
        unit -= 0x10000
        units.push(((unit >>> 10) & 0x3ff) | 0xd800)
        unit = 0xdc00 | (unit & 0x3ff)
      }
      units.push(unit)
    } else {
      units.push(byte1)
    }
  }
  return String.fromCharCode(...units)
}
