// The body of POST /v1/append for many commits at once, written straight into one buffer:
// `{ entries: [{ streams, data, keys?, reads }], clientId, seq }`, each entry carrying its
// own reads (per-entry conditions, docs/http-api.md). Byte for byte what @msgpack/msgpack
// writes for the same object (test/runtime/append-body.test.ts), at a fraction of the cost:
// this body goes out for every batch of concurrent transaction commits.

import { MsgpackWriter, binHeaderSize, strSizeMax } from '../log-server/msgpack-writer.ts'
import type { AppendEntry, ReadDependency } from './log-client.ts'

/** One commit of the body: one entry and the reads it depends on. */
export interface EachEntry {
  readonly entry: AppendEntry
  readonly reads: readonly ReadDependency[]
}

/** Largest map/array header. */
const H = 5
/** Largest number. */
const NUM = 9
/** Field names as written: header byte + ASCII. */
const F = (name: string): number => 1 + name.length

/** Bytes the body takes at most (strings counted at 3 bytes per UTF-16 unit). */
function sizeMax(items: readonly EachEntry[], clientId: string): number {
  let size = H + F('entries') + H + F('clientId') + strSizeMax(clientId) + F('seq') + NUM
  for (const { entry, reads } of items) {
    size += H + F('streams') + H + F('data') + binHeaderSize(entry.data.length) + entry.data.length + F('reads') + H
    for (const s of entry.streams) size += strSizeMax(s)
    if (entry.keys !== undefined) {
      size += F('keys') + H
      for (const k of entry.keys) size += strSizeMax(k)
    }
    for (const r of reads) size += H + F('stream') + strSizeMax(r.stream) + F('key') + strSizeMax(r.key) + F('version') + NUM
  }
  return size
}

export function encodeEachBody(items: readonly EachEntry[], clientId: string, seq: number): Uint8Array {
  const w = new MsgpackWriter(new Uint8Array(sizeMax(items, clientId)))
  w.mapHeader(3)
  w.str('entries')
  w.arrayHeader(items.length)
  for (const { entry, reads } of items) {
    w.mapHeader(entry.keys === undefined ? 3 : 4)
    w.str('streams')
    w.arrayHeader(entry.streams.length)
    for (const s of entry.streams) w.str(s)
    w.str('data')
    w.binHeader(entry.data.length)
    w.bytes(entry.data)
    if (entry.keys !== undefined) {
      w.str('keys')
      w.arrayHeader(entry.keys.length)
      for (const k of entry.keys) w.str(k)
    }
    w.str('reads')
    w.arrayHeader(reads.length)
    for (const r of reads) {
      w.mapHeader(3)
      w.str('stream')
      w.str(r.stream)
      w.str('key')
      w.str(r.key)
      w.str('version')
      w.number(r.version)
    }
  }
  w.str('clientId')
  w.str(clientId)
  w.str('seq')
  w.number(seq)
  return w.out.subarray(0, w.pos)
}
