// Ops a runtime appended and has not met in playback yet, oldest first. Playback decodes
// each entry it applies; an entry whose bytes equal the oldest op sent is that op, so the
// record it was encoded from is used instead (a byte compare instead of a decode: the
// writer's own ops are most of what it plays back).
//
// Matched by content, not by whose entry it is: equal bytes decode to equal records, so
// taking the record for another client's identical op is just as right. Only records that
// decode back to themselves are added (op-codec encodeOwnOp). An op met out of the order
// sent (another batch overtook it) is simply decoded; its record goes when its call ends.

import type { DecodedRecord } from './op-codec.ts'

export interface SentOp {
  readonly data: Uint8Array
  readonly record: DecodedRecord
  /** Met in playback, or its call is over: skipped from then on. */
  done: boolean
}

export class SentOps {
  private items: SentOp[] = []
  private head = 0

  /** Number of ops kept (met or not), for tests. */
  get size(): number {
    return this.items.length - this.head
  }

  add(data: Uint8Array, record: DecodedRecord): SentOp {
    const op: SentOp = { data, record, done: false }
    this.items.push(op)
    return op
  }

  /** The record of the oldest op not yet met, if its bytes are `data`; it is then taken. */
  take(data: Uint8Array): DecodedRecord | undefined {
    this.skipDone()
    const op = this.items[this.head]
    if (op === undefined || !sameBytes(op.data, data)) return undefined
    op.done = true
    this.head++
    this.skipDone()
    return op.record
  }

  /** The call of `op` is over (answered or failed): if never met, it is not waited for. */
  done(op: SentOp): void {
    op.done = true
    this.skipDone()
  }

  private skipDone(): void {
    const items = this.items
    while (this.head < items.length && items[this.head]!.done) this.head++
    if (this.head === items.length) {
      if (this.head > 0) {
        this.items = []
        this.head = 0
      }
    } else if (this.head > 1024 && this.head * 2 > items.length) {
      this.items = items.slice(this.head)
      this.head = 0
    }
  }
}

/** Buffer's native compare, on any Uint8Array: a few times faster than a loop at ~100 bytes. */
const bufferEquals = (Buffer.prototype as unknown as { equals(this: Uint8Array, other: Uint8Array): boolean }).equals

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && bufferEquals.call(a, b)
}
