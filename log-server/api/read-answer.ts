// The msgpack of a read answer, `{ entries: [{ position, streams, data, ts }], next }`,
// written straight into one buffer: byte for byte what encodeMsgpack (the library) makes
// of the same object, at a fraction of the cost. A read answer is mostly many small
// entries naming the same streams: the library builds a map per entry and encodes every
// stream name again; here each run of entries naming the same streams (compared by
// identity, then by names: entries decoded from different requests have arrays of their
// own) is encoded once, and the rest is copied.

import { Encoder } from '@msgpack/msgpack'
import { MsgpackWriter, arrayHeaderSize, binHeaderSize, fixstr, numberSize } from '../msgpack-writer.ts'
import type { ApiEntry } from './replica-api.ts'

/** One encoder for the templates (the library's encode() builds an Encoder, and its 2 KB buffer, per call). */
const encoder = new Encoder()
const encode = (v: unknown): Uint8Array => encoder.encode(v)

const K_ENTRIES = fixstr('entries')
const K_NEXT = fixstr('next')
const K_POSITION = fixstr('position')
const K_STREAMS = fixstr('streams')
const K_DATA = fixstr('data')
const K_TS = fixstr('ts')

/** `{ entries, next }` as msgpack; entry fields in the order position, streams, data, ts (absent ts left out). */
export function encodeReadAnswer(entries: readonly ApiEntry[], next: number): Buffer {
  // Pass 1: the size. What repeats from one entry to the next is encoded once: the streams
  // with the field names around them, and the log time (equal across a slot).
  const mid = new Templates((streams: readonly string[]) => concat(K_STREAMS, encode(streams), K_DATA), sameNames)
  const tail = new Templates((ts: number) => concat(K_TS, encode(ts)))
  let size = 1 + K_ENTRIES.length + arrayHeaderSize(entries.length) + K_NEXT.length + numberSize(next)
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i]!
    size += 1 + K_POSITION.length + numberSize(e.position) + mid.get(e.streams).length
    size += binHeaderSize(e.data.byteLength) + e.data.byteLength
    if ((e.ts as number | undefined) !== undefined) size += tail.get(e.ts).length
  }
  // Pass 2: write.
  const w = new MsgpackWriter(Buffer.allocUnsafe(size))
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
  constructor(
    private readonly make: (v: T) => Uint8Array,
    private readonly same: (a: T, b: T) => boolean = (a, b) => a === b,
  ) {}
  get(v: T): Uint8Array {
    if (!this.known || (v !== this.last && !this.same(v, this.last as T))) {
      this.bytes = this.make(v)
      this.last = v
      this.known = true
    }
    return this.bytes
  }
}

function sameNames(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
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
