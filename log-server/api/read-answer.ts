// The msgpack of a read answer, `{ entries: [{ position, streams, data, ts }], next }`,
// written straight into one buffer: byte for byte what encodeMsgpack (the library) makes
// of the same object, at a fraction of the cost. A read answer is mostly many small
// entries naming the same streams: the library builds a map per entry and encodes every
// stream name again; here each distinct streams array (by identity; stores hand out one
// array per run of entries on the same streams) is encoded once, and the rest is copied.

import { encode } from '@msgpack/msgpack'
import type { ApiEntry } from './replica-api.ts'

function fixstr(s: string): Uint8Array {
  const out = new Uint8Array(1 + s.length)
  out[0] = 0xa0 + s.length
  for (let i = 0; i < s.length; i++) out[1 + i] = s.charCodeAt(i)
  return out
}
const K_ENTRIES = fixstr('entries')
const K_NEXT = fixstr('next')
const K_POSITION = fixstr('position')
const K_STREAMS = fixstr('streams')
const K_DATA = fixstr('data')
const K_TS = fixstr('ts')

/** Bytes of a number as the library encodes it (smallest integer form, else float64). */
function numberSize(v: number): number {
  if (!Number.isSafeInteger(v)) return 9
  if (v >= 0) return v < 0x80 ? 1 : v < 0x100 ? 2 : v < 0x10000 ? 3 : v < 0x100000000 ? 5 : 9
  return v >= -0x20 ? 1 : v >= -0x80 ? 2 : v >= -0x8000 ? 3 : v >= -0x80000000 ? 5 : 9
}

const arrayHeaderSize = (n: number): number => (n < 16 ? 1 : n < 0x10000 ? 3 : 5)
const binHeaderSize = (n: number): number => (n < 0x100 ? 2 : n < 0x10000 ? 3 : 5)

class Writer {
  pos = 0
  private readonly view: DataView
  constructor(readonly out: Buffer) {
    this.view = new DataView(out.buffer, out.byteOffset, out.byteLength)
  }

  /** (TypedArray#set: faster here than a loop, even for a few bytes.) */
  bytes(b: Uint8Array): void {
    this.out.set(b, this.pos)
    this.pos += b.length
  }

  u8(v: number): void {
    this.out[this.pos++] = v
  }

  u16(v: number): void {
    const out = this.out
    out[this.pos] = v >>> 8
    out[this.pos + 1] = v & 0xff
    this.pos += 2
  }

  u32(v: number): void {
    const out = this.out
    out[this.pos] = v >>> 24
    out[this.pos + 1] = (v >>> 16) & 0xff
    out[this.pos + 2] = (v >>> 8) & 0xff
    out[this.pos + 3] = v & 0xff
    this.pos += 4
  }

  number(v: number): void {
    if (!Number.isSafeInteger(v)) {
      this.u8(0xcb)
      this.view.setFloat64(this.pos, v)
      this.pos += 8
    } else if (v >= 0) {
      if (v < 0x80) {
        this.u8(v)
      } else if (v < 0x100) {
        this.u8(0xcc)
        this.u8(v)
      } else if (v < 0x10000) {
        this.u8(0xcd)
        this.u16(v)
      } else if (v < 0x100000000) {
        this.u8(0xce)
        this.u32(v)
      } else {
        this.u8(0xcf)
        this.u32(Math.floor(v / 0x1_0000_0000))
        this.u32(v >>> 0)
      }
    } else if (v >= -0x20) {
      this.u8(0xe0 | (v + 0x20))
    } else if (v >= -0x80) {
      this.u8(0xd0)
      this.view.setInt8(this.pos, v)
      this.pos += 1
    } else if (v >= -0x8000) {
      this.u8(0xd1)
      this.view.setInt16(this.pos, v)
      this.pos += 2
    } else if (v >= -0x80000000) {
      this.u8(0xd2)
      this.view.setInt32(this.pos, v)
      this.pos += 4
    } else {
      this.u8(0xd3)
      this.view.setInt32(this.pos, Math.floor(v / 0x1_0000_0000))
      this.view.setUint32(this.pos + 4, v >>> 0)
      this.pos += 8
    }
  }

  /** An array header (fixarray, array 16, array 32). */
  arrayHeader(n: number): void {
    if (n < 16) {
      this.u8(0x90 + n)
    } else if (n < 0x10000) {
      this.u8(0xdc)
      this.u16(n)
    } else {
      this.u8(0xdd)
      this.u32(n)
    }
  }

  binHeader(n: number): void {
    if (n < 0x100) {
      this.u8(0xc4)
      this.u8(n)
    } else if (n < 0x10000) {
      this.u8(0xc5)
      this.u16(n)
    } else {
      this.u8(0xc6)
      this.u32(n)
    }
  }
}

/** `{ entries, next }` as msgpack; entry fields in the order position, streams, data, ts (absent ts left out). */
export function encodeReadAnswer(entries: readonly ApiEntry[], next: number): Buffer {
  // Pass 1: the size. What repeats from one entry to the next is encoded once: the streams
  // with the field names around them, and the log time (equal across a slot).
  const mid = new Templates((streams: readonly string[]) => concat(K_STREAMS, encode(streams), K_DATA))
  const tail = new Templates((ts: number) => concat(K_TS, encode(ts)))
  let size = 1 + K_ENTRIES.length + arrayHeaderSize(entries.length) + K_NEXT.length + numberSize(next)
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i]!
    size += 1 + K_POSITION.length + numberSize(e.position) + mid.get(e.streams).length
    size += binHeaderSize(e.data.byteLength) + e.data.byteLength
    if ((e.ts as number | undefined) !== undefined) size += tail.get(e.ts).length
  }
  // Pass 2: write.
  const w = new Writer(Buffer.allocUnsafe(size))
  w.u8(0x82)
  w.bytes(K_ENTRIES)
  w.arrayHeader(entries.length)
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i]!
    const hasTs = (e.ts as number | undefined) !== undefined
    w.u8(hasTs ? 0x84 : 0x83)
    w.bytes(K_POSITION)
    w.number(e.position)
    w.bytes(mid.get(e.streams))
    w.binHeader(e.data.byteLength)
    w.bytes(e.data)
    if (hasTs) w.bytes(tail.get(e.ts))
  }
  w.bytes(K_NEXT)
  w.number(next)
  if (w.pos !== size) throw new Error(`internal: read answer of ${size} bytes written as ${w.pos}`)
  return w.out
}

/** The bytes made of the last value asked for, made again only when the value changes. */
class Templates<T> {
  private last: T | undefined
  private bytes: Uint8Array = new Uint8Array(0)
  private known = false
  constructor(private readonly make: (v: T) => Uint8Array) {}
  get(v: T): Uint8Array {
    if (!this.known || v !== this.last) {
      this.bytes = this.make(v)
      this.last = v
      this.known = true
    }
    return this.bytes
  }
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let at = 0
  for (const p of parts) {
    out.set(p, at)
    at += p.length
  }
  return out
}
