// Writing msgpack directly into a buffer, byte for byte as @msgpack/msgpack writes the
// same values (smallest integer form, float64 otherwise; the smallest headers). For the
// hot encoders that know their shapes: read answers (api/read-answer.ts), field names
// matched in stored records (storage/record-reader.ts), the client's flat ops
// (object-runtime/op-codec.ts) and its conditional append bodies (object-runtime/
// append-body.ts). Tests compare each against the library.

/** A short ASCII string (under 32 characters, e.g. a field name) as msgpack fixstr bytes. */
export function fixstr(s: string): Uint8Array {
  const out = new Uint8Array(1 + s.length)
  out[0] = 0xa0 + s.length
  for (let i = 0; i < s.length; i++) out[1 + i] = s.charCodeAt(i)
  return out
}

/** Bytes of a number as the library encodes it (smallest integer form, else float64). */
export function numberSize(v: number): number {
  if (!Number.isSafeInteger(v)) return 9
  if (v >= 0) return v < 0x80 ? 1 : v < 0x100 ? 2 : v < 0x10000 ? 3 : v < 0x100000000 ? 5 : 9
  return v >= -0x20 ? 1 : v >= -0x80 ? 2 : v >= -0x8000 ? 3 : v >= -0x80000000 ? 5 : 9
}

/** Bytes a string takes at most (header and UTF-8: at most 3 bytes per UTF-16 unit). */
export const strSizeMax = (s: string): number => 5 + 3 * s.length

const utf8 = new TextEncoder()

/** Strings longer than this are copied by native code (latin1Write), shorter ones by a loop. */
const SHORT_STRING = 16

/**
 * Whether every UTF-16 unit of `s` is ASCII, so that its UTF-8 bytes are its units: any
 * other unit takes 2 or 3 bytes (a lone surrogate 3). Buffer.byteLength counts a one-byte
 * string in a few ns, far faster than a loop or a regex over it.
 */
export function isAscii(s: string): boolean {
  return Buffer.byteLength(s, 'utf8') === s.length
}

/** Buffer's native one-byte encoder, on any Uint8Array (for ASCII: isAscii). */
const latin1Write = (Buffer.prototype as unknown as { latin1Write(this: Uint8Array, s: string, offset: number, length: number): number }).latin1Write

export const arrayHeaderSize = (n: number): number => (n < 16 ? 1 : n < 0x10000 ? 3 : 5)
export const binHeaderSize = (n: number): number => (n < 0x100 ? 2 : n < 0x10000 ? 3 : 5)

/** Writes msgpack into a buffer sized beforehand; numbers and headers as the library writes them. */
export class MsgpackWriter<B extends Uint8Array = Uint8Array> {
  pos = 0
  private readonly view: DataView
  constructor(readonly out: B) {
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

  /** A map header (fixmap, map 16, map 32). */
  mapHeader(n: number): void {
    if (n < 16) {
      this.u8(0x80 + n)
    } else if (n < 0x10000) {
      this.u8(0xde)
      this.u16(n)
    } else {
      this.u8(0xdf)
      this.u32(n)
    }
  }

  /** A string, UTF-8 (room for `strSizeMax(s)` bytes must be left). */
  str(s: string): void {
    if (!isAscii(s)) {
      const b = utf8.encode(s)
      this.strHeader(b.length)
      this.bytes(b)
      return
    }
    this.asciiStr(s)
  }

  /** A string known to be ASCII (isAscii): header, then one byte per unit. */
  asciiStr(s: string): void {
    const n = s.length
    this.strHeader(n)
    const out = this.out
    let p = this.pos
    if (n > SHORT_STRING) {
      latin1Write.call(out, s, p, n)
      this.pos = p + n
      return
    }
    for (let i = 0; i < n; i++) out[p++] = s.charCodeAt(i)
    this.pos = p
  }

  /** A string header (fixstr, str 8, str 16, str 32) for `n` bytes of UTF-8. */
  strHeader(n: number): void {
    if (n < 32) {
      this.u8(0xa0 + n)
    } else if (n < 0x100) {
      this.u8(0xd9)
      this.u8(n)
    } else if (n < 0x10000) {
      this.u8(0xda)
      this.u16(n)
    } else {
      this.u8(0xdb)
      this.u32(n)
    }
  }
}
