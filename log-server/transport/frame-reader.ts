// Splits a TCP byte stream into frames (4-byte big-endian body length, then the body).
// Complete frames inside one chunk are handed out as views of that chunk, without a
// copy; only a frame split across chunks is concatenated, once, when its last byte
// arrives. The length is checked against the bound as soon as the prefix is read, so
// an oversized frame is refused before any of its body is buffered.

import { FRAME_HEADER_BYTES } from './codec.ts'

export class FrameReader {
  /** Bytes of an incomplete frame, in arrival order. */
  private pending: Buffer[] = []
  private pendingBytes = 0
  /** Total size (prefix + body) of the incomplete frame, -1 while its prefix is incomplete. */
  private expected = -1

  /** Largest accepted body; may be raised after the handshake. */
  constructor(public bodyBytesMax: number) {}

  /** Bytes buffered for an incomplete frame. */
  get bufferedBytes(): number {
    return this.pendingBytes
  }

  /**
   * Feeds one chunk; calls `onFrame` with each complete body, in order, until it
   * returns false (the connection is done with). Returns an error message when the
   * stream announces a frame over the bound (stop reading), else null.
   */
  feed(chunk: Buffer, onFrame: (body: Buffer) => boolean): string | null {
    let buf = chunk
    let off = 0
    if (this.pendingBytes > 0) {
      if (this.expected < 0) {
        // Fewer than 4 bytes are pending: join them with the chunk and parse normally.
        buf = Buffer.concat([...this.pending, chunk])
        this.reset()
      } else {
        const missing = this.expected - this.pendingBytes
        if (chunk.length < missing) {
          this.pending.push(chunk)
          this.pendingBytes += chunk.length
          return null
        }
        this.pending.push(chunk.subarray(0, missing))
        const frame = Buffer.concat(this.pending, this.expected)
        this.reset()
        off = missing
        if (!onFrame(frame.subarray(FRAME_HEADER_BYTES))) return null
      }
    }
    while (true) {
      const avail = buf.length - off
      if (avail < FRAME_HEADER_BYTES) {
        if (avail > 0) this.keep(buf.subarray(off), -1)
        return null
      }
      const len = buf.readUInt32BE(off)
      if (len > this.bodyBytesMax) return `frame of ${len} bytes exceeds the limit of ${this.bodyBytesMax}`
      const end = off + FRAME_HEADER_BYTES + len
      if (end > buf.length) {
        this.keep(buf.subarray(off), FRAME_HEADER_BYTES + len)
        return null
      }
      const body = buf.subarray(off + FRAME_HEADER_BYTES, end)
      off = end
      if (!onFrame(body)) return null
    }
  }

  private keep(part: Buffer, expected: number): void {
    this.pending = [part]
    this.pendingBytes = part.length
    this.expected = expected
  }

  private reset(): void {
    this.pending = []
    this.pendingBytes = 0
    this.expected = -1
  }
}
