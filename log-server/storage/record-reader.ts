// The read path's view of a stored slot record (level-codec.ts `r` keys): what readLog
// and readStream need — slot, firstPosition, ts and each stored entry's streams and data —
// found by walking the record's msgpack in place, without building the record (its ops,
// entries, client ids, conflict keys and reads as objects). A full slot holds thousands
// of entries while a stream read may want a few of them; and even when it wants them all,
// building the record and then copying the wanted fields was most of a read's cost.
//
// Entries are materialized one at a time, on demand: `data` is a view of the record's
// bytes (as the library's decoder gives), and `streams` is decoded once per distinct
// run (consecutive entries naming the same streams share one frozen array).
//
// Same meaning as decodeRecord + storedEntries (entries.ts): ops of kind 'append' whose
// outcome is 'new' store their entries, in op order then entry order. Anything this walk
// does not expect throws; the caller then decodes the record the general way, which
// reports corruption as before.

import { Decoder } from '@msgpack/msgpack'
import { fixstr } from '../msgpack-writer.ts'

const libraryDecoder = new Decoder()

export class RecordShapeError extends Error {}

const fail = (why: string): never => {
  throw new RecordShapeError(why)
}

/** Field names matched in place, as their msgpack fixstr bytes. */
const K_SLOT = fixstr('slot')
const K_VALUE = fixstr('value')
const K_FIRST = fixstr('firstPosition')
const K_TS = fixstr('ts')
const K_OUTCOMES = fixstr('outcomes')
const K_OPS = fixstr('ops')
const K_KIND = fixstr('kind')
const K_ENTRIES = fixstr('entries')
const K_STREAMS = fixstr('streams')
const K_DATA = fixstr('data')
const S_APPEND = fixstr('append')
const S_NEW = fixstr('new')

export class RecordEntries {
  readonly slot: number
  readonly firstPosition: number
  readonly ts: number
  /** Stored entries. */
  readonly count: number
  private readonly bytes: Uint8Array
  /** Per stored entry: streams start, streams end, data start, data end (offsets in `bytes`). */
  private readonly spans: Int32Array
  private lastStreamsAt = -1
  private lastStreamsEnd = -1
  private lastStreams: readonly string[] = []

  /** `payload`: the record's msgpack (unframed, checksum already checked). Throws RecordShapeError. */
  constructor(payload: Uint8Array) {
    const w = new Walker(payload)
    let slot: number | undefined
    let first: number | undefined
    let ts: number | undefined
    let opKinds: boolean[] | undefined // per op: an append?
    let opEntries: number[][] | undefined // per op: spans of its entries (flattened, 4 per entry)
    let outcomeNew: boolean[] | undefined
    const fields = w.mapHeader()
    for (let f = 0; f < fields; f++) {
      if (w.key(K_SLOT)) slot = w.int()
      else if (w.key(K_FIRST)) first = w.int()
      else if (w.key(K_TS)) ts = w.number()
      else if (w.key(K_VALUE)) [opKinds, opEntries] = readValue(w)
      else if (w.key(K_OUTCOMES)) outcomeNew = readOutcomes(w)
      else {
        w.skip() // the key
        w.skip()
      }
    }
    if (w.pos !== payload.length) fail('trailing bytes')
    if (slot === undefined || first === undefined || ts === undefined || opKinds === undefined || opEntries === undefined || outcomeNew === undefined) fail('missing fields')
    if (outcomeNew!.length !== opKinds!.length) fail('outcomes do not match ops')
    let count = 0
    for (let i = 0; i < opKinds!.length; i++) if (opKinds![i] && outcomeNew![i]) count += opEntries![i]!.length / 4
    const spans = new Int32Array(count * 4)
    let k = 0
    for (let i = 0; i < opKinds!.length; i++) {
      if (!(opKinds![i] && outcomeNew![i])) continue
      const s = opEntries![i]!
      for (let j = 0; j < s.length; j++) spans[k++] = s[j]!
    }
    this.slot = slot!
    this.firstPosition = first!
    this.ts = ts!
    this.count = count
    this.bytes = payload
    this.spans = spans
  }

  /** The streams stored entry `i` names (frozen; shared with the entries before it that name the same). */
  streams(i: number): readonly string[] {
    const start = this.spans[4 * i]!
    const end = this.spans[4 * i + 1]!
    const b = this.bytes
    if (this.lastStreamsAt >= 0 && end - start === this.lastStreamsEnd - this.lastStreamsAt) {
      let same = true
      for (let k = 0; k < end - start && same; k++) same = b[start + k] === b[this.lastStreamsAt + k]
      if (same) return this.lastStreams
    }
    const streams = decodeStreams(b, start, end)
    this.lastStreamsAt = start
    this.lastStreamsEnd = end
    this.lastStreams = streams
    return streams
  }

  /** The data of stored entry `i`: a view of the record's bytes. */
  data(i: number): Uint8Array {
    return this.bytes.subarray(this.spans[4 * i + 2]!, this.spans[4 * i + 3]!)
  }
}

/** `value`: { ts, ops: [{ kind, entries?, ... }] } → per op: is it an append, and its entries' spans. */
function readValue(w: Walker): [boolean[], number[][]] {
  let kinds: boolean[] | undefined
  let entries: number[][] | undefined
  const fields = w.mapHeader()
  for (let f = 0; f < fields; f++) {
    if (w.key(K_OPS)) {
      const n = w.arrayHeader()
      kinds = []
      entries = []
      for (let i = 0; i < n; i++) {
        let append = false
        let spans: number[] = []
        const opFields = w.mapHeader()
        for (let g = 0; g < opFields; g++) {
          if (w.key(K_KIND)) append = w.str(S_APPEND)
          else if (w.key(K_ENTRIES)) spans = readEntries(w)
          else {
            w.skip()
            w.skip()
          }
        }
        kinds.push(append)
        entries.push(spans)
      }
    } else {
      w.skip()
      w.skip()
    }
  }
  if (kinds === undefined || entries === undefined) fail('no ops')
  return [kinds!, entries!]
}

/** An op's entries: [{ streams, data, keys? }] → 4 offsets each. */
function readEntries(w: Walker): number[] {
  const n = w.arrayHeader()
  const out: number[] = []
  for (let i = 0; i < n; i++) {
    let streamsAt = -1
    let streamsEnd = -1
    let dataAt = -1
    let dataEnd = -1
    const fields = w.mapHeader()
    for (let f = 0; f < fields; f++) {
      if (w.key(K_STREAMS)) {
        streamsAt = w.pos
        w.skip()
        streamsEnd = w.pos
      } else if (w.key(K_DATA)) {
        const len = w.binHeader()
        dataAt = w.pos
        w.advance(len)
        dataEnd = w.pos
      } else {
        w.skip()
        w.skip()
      }
    }
    if (streamsAt < 0 || dataAt < 0) fail('entry without streams or data')
    out.push(streamsAt, streamsEnd, dataAt, dataEnd)
  }
  return out
}

/** outcomes: [{ kind, ... }] → per op: 'new'? */
function readOutcomes(w: Walker): boolean[] {
  const n = w.arrayHeader()
  const out: boolean[] = []
  for (let i = 0; i < n; i++) {
    let isNew = false
    const fields = w.mapHeader()
    for (let f = 0; f < fields; f++) {
      if (w.key(K_KIND)) isNew = w.str(S_NEW)
      else {
        w.skip()
        w.skip()
      }
    }
    out.push(isNew)
  }
  return out
}

/** A streams array (msgpack bytes [start, end)): ASCII names built here, anything else by the library. */
function decodeStreams(b: Uint8Array, start: number, end: number): readonly string[] {
  const w = new Walker(b, start, end)
  const n = w.arrayHeader()
  const out: string[] = []
  for (let i = 0; i < n; i++) {
    const head = w.u8()
    const len = head >= 0xa0 && head <= 0xbf ? head - 0xa0 : head === 0xd9 ? w.u8() : head === 0xda ? w.u16() : head === 0xdb ? w.u32() : -1
    if (len < 0) fail('a stream name that is not a string')
    const at = w.pos
    w.advance(len)
    let ascii = true
    for (let k = at; k < at + len && ascii; k++) ascii = b[k]! < 0x80
    if (!ascii) return Object.freeze(libraryDecoder.decode(b.subarray(start, end)) as string[])
    out.push(asciiString(b, at, len))
  }
  if (w.pos !== end) fail('streams')
  return Object.freeze(out)
}

function asciiString(b: Uint8Array, start: number, length: number): string {
  if (length <= 24) {
    let s = ''
    for (let i = start; i < start + length; i++) s += String.fromCharCode(b[i]!)
    return s
  }
  return String.fromCharCode.apply(null, b.subarray(start, start + length) as unknown as number[])
}

/** A cursor over msgpack bytes: headers, scalars and skipping, bounds-checked. */
class Walker {
  pos: number
  private readonly end: number
  constructor(
    private readonly b: Uint8Array,
    start = 0,
    end = b.length,
  ) {
    this.pos = start
    this.end = end
  }

  advance(n: number): void {
    if (n < 0 || this.pos + n > this.end) fail('truncated')
    this.pos += n
  }

  u8(): number {
    if (this.pos >= this.end) fail('truncated')
    return this.b[this.pos++]!
  }

  u16(): number {
    return (this.u8() << 8) | this.u8()
  }

  u32(): number {
    return ((this.u8() << 24) | (this.u8() << 16) | (this.u8() << 8) | this.u8()) >>> 0
  }

  /** True (and past it) if the value at the cursor is the fixstr `name`; otherwise the cursor stays. */
  key(name: Uint8Array): boolean {
    const b = this.b
    const p = this.pos
    if (p + name.length > this.end) return false
    for (let i = 0; i < name.length; i++) if (b[p + i] !== name[i]) return false
    this.pos = p + name.length
    return true
  }

  /** Whether the string at the cursor is `name` (fixstr bytes); skips it either way. */
  str(name: Uint8Array): boolean {
    if (this.key(name)) return true
    const head = this.b[this.pos]
    if (head === undefined || !((head >= 0xa0 && head <= 0xbf) || head === 0xd9 || head === 0xda || head === 0xdb)) fail('expected a string')
    this.skip()
    return false
  }

  mapHeader(): number {
    const head = this.u8()
    if (head >= 0x80 && head <= 0x8f) return head - 0x80
    if (head === 0xde) return this.u16()
    if (head === 0xdf) return this.u32()
    return fail('expected a map')
  }

  arrayHeader(): number {
    const head = this.u8()
    if (head >= 0x90 && head <= 0x9f) return head - 0x90
    if (head === 0xdc) return this.u16()
    if (head === 0xdd) return this.u32()
    return fail('expected an array')
  }

  binHeader(): number {
    const head = this.u8()
    if (head === 0xc4) return this.u8()
    if (head === 0xc5) return this.u16()
    if (head === 0xc6) return this.u32()
    return fail('expected bytes')
  }

  /** A safe integer (the forms msgpack encoders give integers). */
  int(): number {
    const v = this.number()
    if (!Number.isSafeInteger(v)) fail('expected an integer')
    return v
  }

  number(): number {
    const head = this.u8()
    if (head <= 0x7f) return head
    if (head >= 0xe0) return head - 0x100
    switch (head) {
      case 0xcc:
        return this.u8()
      case 0xcd:
        return this.u16()
      case 0xce:
        return this.u32()
      case 0xcf:
        return this.u32() * 0x1_0000_0000 + this.u32()
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
      case 0xcb: {
        const size = head === 0xca ? 4 : 8
        if (this.pos + size > this.end) fail('truncated')
        const view = new DataView(this.b.buffer, this.b.byteOffset + this.pos, size)
        this.pos += size
        return size === 4 ? view.getFloat32(0) : view.getFloat64(0)
      }
      default:
        return fail('expected a number')
    }
  }

  /** Skips one whole value. */
  skip(): void {
    let pending = 1
    while (pending > 0) {
      pending--
      const head = this.u8()
      if (head <= 0x7f || head >= 0xe0 || head === 0xc0 || head === 0xc2 || head === 0xc3) continue
      if (head >= 0xa0 && head <= 0xbf) this.advance(head - 0xa0)
      else if (head >= 0x90 && head <= 0x9f) pending += head - 0x90
      else if (head >= 0x80 && head <= 0x8f) pending += 2 * (head - 0x80)
      else {
        switch (head) {
          case 0xcc:
          case 0xd0:
            this.advance(1)
            break
          case 0xcd:
          case 0xd1:
            this.advance(2)
            break
          case 0xce:
          case 0xd2:
          case 0xca:
            this.advance(4)
            break
          case 0xcf:
          case 0xd3:
          case 0xcb:
            this.advance(8)
            break
          case 0xd9:
          case 0xc4:
            this.advance(this.u8())
            break
          case 0xda:
          case 0xc5:
            this.advance(this.u16())
            break
          case 0xdb:
          case 0xc6:
            this.advance(this.u32())
            break
          case 0xdc:
            pending += this.u16()
            break
          case 0xdd:
            pending += this.u32()
            break
          case 0xde:
            pending += 2 * this.u16()
            break
          case 0xdf:
            pending += 2 * this.u32()
            break
          case 0xd4:
            this.advance(2)
            break
          case 0xd5:
            this.advance(3)
            break
          case 0xd6:
            this.advance(5)
            break
          case 0xd7:
            this.advance(9)
            break
          case 0xd8:
            this.advance(17)
            break
          case 0xc7:
            this.advance(this.u8() + 1)
            break
          case 0xc8:
            this.advance(this.u16() + 1)
            break
          case 0xc9:
            this.advance(this.u32() + 1)
            break
          default:
            fail(`invalid byte 0x${head.toString(16)}`)
        }
      }
    }
  }
}
