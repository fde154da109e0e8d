import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { crc32c } from '../../log-server/storage/crc32c.ts'

// Byte-at-a-time reference, straight from the definition.
function crc32cSlow(bytes: Uint8Array): number {
  let crc = 0xffffffff
  for (const b of bytes) {
    crc ^= b
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1
  }
  return ~crc >>> 0
}

describe('crc32c', () => {
  it('matches the known check value and RFC 3720 vectors', () => {
    expect(crc32c('123456789')).toBe(0xe3069283)
    expect(crc32c(new Uint8Array(0))).toBe(0)
    expect(crc32c(new Uint8Array(32))).toBe(0x8a9136aa)
    expect(crc32c(new Uint8Array(32).fill(0xff))).toBe(0x62a8ab43)
    expect(crc32c(Uint8Array.from({ length: 32 }, (_, i) => i))).toBe(0x46dd794e)
    expect(crc32c(Uint8Array.from({ length: 32 }, (_, i) => 31 - i))).toBe(0x113fdb5c)
    expect(crc32c('The quick brown fox jumps over the lazy dog')).toBe(0x22620404)
  })

  it('agrees with the bitwise definition and continues across chunks', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.uint8Array({ maxLength: 50 }), (a, b) => {
        expect(crc32c(a)).toBe(crc32cSlow(a))
        const ab = new Uint8Array(a.length + b.length)
        ab.set(a)
        ab.set(b, a.length)
        expect(crc32c(b, crc32c(a))).toBe(crc32c(ab))
      }),
    )
  })
})
