// The wire format on its own: frames split at any byte still decode to the same
// messages, binary data comes back as plain Uint8Array, the SlotValue encoding is
// shared between the messages of one turn, and an oversized length is refused before
// its body is buffered.

import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { HANDSHAKE_BYTES_MAX, MessageEncoder, decodeBody, encodeControlFrame, parseHello, parseHelloReply, checkMessage, PROTOCOL } from '../../log-server/transport/codec.ts'
import { FrameReader } from '../../log-server/transport/frame-reader.ts'
import type { Message } from '../../log-server/paxos/types.ts'
import { binaries, everyMessage, slotValue } from './helpers.ts'

/** Feeds `stream` to a reader cut at `cuts` and returns the decoded messages. */
function readAll(stream: Buffer, cuts: number[], bodyBytesMax = 1 << 20): unknown[] {
  const reader = new FrameReader(bodyBytesMax)
  const out: unknown[] = []
  const points = [...new Set(cuts.map((c) => c % (stream.length + 1)))].sort((a, b) => a - b)
  let prev = 0
  for (const p of [...points, stream.length]) {
    if (p < prev) continue
    const err = reader.feed(stream.subarray(prev, p), (body) => {
      out.push(decodeBody(body))
      return true
    })
    expect(err).toBeNull()
    prev = p
  }
  expect(reader.bufferedBytes).toBe(0)
  return out
}

describe('codec', () => {
  it('round-trips every message type with binary entry data intact, as plain Uint8Array', () => {
    const enc = new MessageEncoder()
    const msgs = everyMessage(0, 1)
    const stream = Buffer.concat(msgs.map((m) => enc.encodeFrame(m)))
    const out = readAll(stream, [])
    expect(out).toEqual(msgs)
    const bins = binaries(out)
    expect(bins.length).toBeGreaterThan(30)
    for (const b of bins) expect(Object.getPrototypeOf(b)).toBe(Uint8Array.prototype)
  })

  it('decodes the same messages however the stream is cut into chunks', () => {
    const enc = new MessageEncoder()
    const msgs = [...everyMessage(2, 0), ...everyMessage(2, 0)]
    const stream = Buffer.concat(msgs.map((m) => enc.encodeFrame(m)))
    fc.assert(
      fc.property(fc.array(fc.nat(stream.length), { maxLength: 40 }), (cuts) => {
        expect(readAll(stream, cuts)).toEqual(msgs)
      }),
      { numRuns: 100 },
    )
    // Byte by byte, the worst case.
    expect(readAll(stream, Array.from({ length: stream.length }, (_, i) => i))).toEqual(msgs)
  })

  it('encodes a SlotValue once for all the messages of one turn that carry it', () => {
    const enc = new MessageEncoder()
    const value = slotValue(200, 100)
    const accept = (to: number): Message => ({ type: 'accept', from: 0, to, inc: 1, vec: [1, 1, 1, 1, 1], ballot: { round: 1, replica: 0 }, slot: 1, value, commitSlot: 0 })
    const frames = [1, 2, 3, 4].map((to) => enc.encodeFrame(accept(to)))
    expect(enc.cacheHits).toBe(3)
    for (const [i, f] of frames.entries()) expect(decodeBody(f.subarray(4))).toEqual(accept(i + 1))
    // After the flush the cache is empty: the next turn encodes afresh (and holds nothing alive).
    enc.clearCache()
    enc.encodeFrame(accept(1))
    expect(enc.cacheHits).toBe(3)
  })

  it('refuses an oversized length before buffering its body', () => {
    const reader = new FrameReader(1000)
    const header = Buffer.alloc(4)
    header.writeUInt32BE(1001)
    expect(reader.feed(header, () => true)).toMatch(/exceeds/)
    const ok = new FrameReader(1000)
    header.writeUInt32BE(1000)
    expect(ok.feed(header, () => true)).toBeNull()
    expect(ok.bufferedBytes).toBe(4)
  })

  it('stops handing out frames when the callback says so', () => {
    const enc = new MessageEncoder()
    const msgs = everyMessage(0, 1)
    const stream = Buffer.concat(msgs.map((m) => enc.encodeFrame(m)))
    const reader = new FrameReader(1 << 20)
    let n = 0
    reader.feed(stream, () => ++n < 2)
    expect(n).toBe(2)
  })

  it('throws on undecodable bodies (the transport closes the connection)', () => {
    expect(() => decodeBody(Buffer.from([0xc1]))).toThrow()
    expect(() => decodeBody(Buffer.from([0x92, 0x01]))).toThrow()
    expect(() => decodeBody(Buffer.from([0x01, 0x02]))).toThrow() // trailing bytes
  })

  it('parses handshakes and checks addressing', () => {
    const hello = { protocol: PROTOCOL, cluster: 'c', from: 1, to: 2 }
    expect(parseHello(decodeBody(encodeControlFrame(hello).subarray(4)))).toEqual(hello)
    expect(parseHello({ ...hello, protocol: 'http/1.1' })).toMatch(/protocol/)
    expect(parseHello([1, 2])).toMatch(/not a map/)
    expect(parseHello({ ...hello, from: '1' })).toMatch(/from/)
    expect(parseHelloReply({ protocol: PROTOCOL, ok: false, reason: 'no' })).toEqual({ protocol: PROTOCOL, ok: false, reason: 'no' })
    expect(parseHelloReply({ protocol: PROTOCOL, ok: true, cluster: 'c', from: 2, to: 1 })).toMatchObject({ ok: true })
    expect(typeof parseHelloReply({ protocol: PROTOCOL, ok: true })).toBe('string')
    expect(encodeControlFrame({ ...hello, cluster: 'x'.repeat(200) }).length).toBeLessThan(HANDSHAKE_BYTES_MAX)
    expect(checkMessage({ to: 2, from: 1 }, 2, 1)).toBeNull()
    expect(checkMessage({ to: 3, from: 1 }, 2, 1)).toMatch(/addressed/)
    expect(checkMessage({ to: 2, from: 0 }, 2, 1)).toMatch(/from 0/)
    expect(checkMessage(new Uint8Array(3), 2, 1)).toMatch(/not a map/)
    expect(checkMessage(null, 2, 1)).toMatch(/not a map/)
  })
})
