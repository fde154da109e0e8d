// Bodies of POST /v1/append written straight into one buffer, byte for byte what
// @msgpack/msgpack writes for the same object (test/runtime/append-body.test.ts), at a
// fraction of the cost: one of them goes out for every batch of appends.
// - encodeAppendBody: `{ entries: [{ streams, data, keys? }], clientId, seq, reads? }`,
//   a batch of plain appends (or one conditional append, all or nothing);
// - encodeEachBody: `{ entries: [{ streams, data, keys?, reads }], clientId, seq }`, many
//   commits at once, each entry with its own reads (per-entry conditions, docs/http-api.md).

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

function entrySizeMax(entry: AppendEntry): number {
  let size = H + F('streams') + H + F('data') + binHeaderSize(entry.data.length) + entry.data.length
  for (let i = 0; i < entry.streams.length; i++) size += strSizeMax(entry.streams[i]!)
  if (entry.keys !== undefined) {
    size += F('keys') + H
    for (let i = 0; i < entry.keys.length; i++) size += strSizeMax(entry.keys[i]!)
  }
  return size
}

function readsSizeMax(reads: readonly ReadDependency[]): number {
  let size = F('reads') + H
  for (const r of reads) size += H + F('stream') + strSizeMax(r.stream) + F('key') + strSizeMax(r.key) + F('version') + NUM
  return size
}

/** Bytes of `{ entries, clientId, seq }` at most, besides the entries themselves. */
const envelopeSizeMax = (clientId: string): number => H + F('entries') + H + F('clientId') + strSizeMax(clientId) + F('seq') + NUM

/** An entry's map, with `extra` more fields to follow (the caller writes them). */
function writeEntry(w: MsgpackWriter, entry: AppendEntry, extra: number): void {
  w.mapHeader((entry.keys === undefined ? 2 : 3) + extra)
  w.str('streams')
  w.arrayHeader(entry.streams.length)
  for (let i = 0; i < entry.streams.length; i++) w.str(entry.streams[i]!)
  w.str('data')
  w.binHeader(entry.data.length)
  w.bytes(entry.data)
  if (entry.keys !== undefined) {
    w.str('keys')
    w.arrayHeader(entry.keys.length)
    for (let i = 0; i < entry.keys.length; i++) w.str(entry.keys[i]!)
  }
}

function writeReads(w: MsgpackWriter, reads: readonly ReadDependency[]): void {
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

function writeSession(w: MsgpackWriter, clientId: string, seq: number): void {
  w.str('clientId')
  w.str(clientId)
  w.str('seq')
  w.number(seq)
}

/** `{ entries: [{ streams, data, keys? }], clientId, seq, reads? }` (reads only when given). */
export function encodeAppendBody(entries: readonly AppendEntry[], clientId: string, seq: number, reads?: readonly ReadDependency[]): Uint8Array {
  let size = envelopeSizeMax(clientId) + (reads === undefined ? 0 : readsSizeMax(reads))
  for (let i = 0; i < entries.length; i++) size += entrySizeMax(entries[i]!)
  const w = new MsgpackWriter(new Uint8Array(size))
  w.mapHeader(reads === undefined ? 3 : 4)
  w.str('entries')
  w.arrayHeader(entries.length)
  for (let i = 0; i < entries.length; i++) writeEntry(w, entries[i]!, 0)
  writeSession(w, clientId, seq)
  if (reads !== undefined) writeReads(w, reads)
  return w.out.subarray(0, w.pos)
}

/** `{ entries: [{ streams, data, keys?, reads }], clientId, seq }`: each entry with its own reads. */
export function encodeEachBody(items: readonly EachEntry[], clientId: string, seq: number): Uint8Array {
  let size = envelopeSizeMax(clientId)
  for (const { entry, reads } of items) size += entrySizeMax(entry) + readsSizeMax(reads)
  const w = new MsgpackWriter(new Uint8Array(size))
  w.mapHeader(3)
  w.str('entries')
  w.arrayHeader(items.length)
  for (const { entry, reads } of items) {
    writeEntry(w, entry, 1)
    writeReads(w, reads)
  }
  writeSession(w, clientId, seq)
  return w.out.subarray(0, w.pos)
}
