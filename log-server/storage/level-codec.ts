// Key layout and value framing of LevelLogStore. Keys are bytes; one leading byte
// names the keyspace; numbers are fixed-width 8-byte big-endian so that byte order is
// numeric order.
//
//   r <end:8> <slot:8>            slot record: the msgpack ChosenRecord as chosen, ONE
//                                 per chosen slot. Keyed by the position one past its
//                                 last stored entry, then slot: byte order = slot order
//                                 = position order, and the record holding position p
//                                 is the FIRST key > r<p><max>, so readLog(from) is one
//                                 forward iteration with no backward seek. A slot that
//                                 stored nothing (no-op) has end = firstPosition and
//                                 sorts right after the previous slot.
//   s <slot:8>                    slot index: [first, end, [[stream, lastPosition]...]]
//                                 finds a record by slot (catch-up, no-op slots) and
//                                 tells compact() what the record holds without
//                                 reading it.
//   x <stream> 0x00 <last:8>      stream index, one key per (stream, slot):
//                                 [slot, first, end, recordBytes, runs] where runs are
//                                 (offset, count) pairs of the stream's entries within
//                                 the slot and <last> is the stream's last position in
//                                 the slot. readStream(from) iterates x<stream>0<from>..
//                                 (only that stream's keys) and fetches the named
//                                 records with one getMany; streamLast is the last key.
//   l <stream>                    last position of a stream whose index keys were all
//                                 reclaimed (written by compact()).
//   a <slot:8>                    accept record [ballot, value]; deleted when chosen.
//   e <clientId>                  session state; deleted when evicted.
//   t <stream>                    trim point (only rises).
//   m <name>                      meta: format, promise, identity, applied, reclaimed.
//
// Every value is framed as <crc32c:4 BE><msgpack payload> and checked on read: a
// mismatch is a CorruptionError, never wrong data.

import { Decoder, Encoder } from '@msgpack/msgpack'
import { crc32c } from './crc32c.ts'
import { CorruptionError } from './errors.ts'
import type { ChosenRecord, SlotValue } from '../paxos/types.ts'
import { valueBytes } from '../value-bytes.ts'

export const FORMAT_VERSION = 1

const R = 0x72
const S = 0x73
const X = 0x78
const L = 0x6c
const A = 0x61
const E = 0x65
const T = 0x74
const M = 0x6d

const utf8 = new TextEncoder()
const utf8d = new TextDecoder('utf-8', { fatal: false })

function putU64(buf: Uint8Array, off: number, n: number): void {
  const hi = Math.floor(n / 0x1_0000_0000)
  const lo = n >>> 0
  buf[off] = hi >>> 24
  buf[off + 1] = (hi >>> 16) & 0xff
  buf[off + 2] = (hi >>> 8) & 0xff
  buf[off + 3] = hi & 0xff
  buf[off + 4] = lo >>> 24
  buf[off + 5] = (lo >>> 16) & 0xff
  buf[off + 6] = (lo >>> 8) & 0xff
  buf[off + 7] = lo & 0xff
}

export function getU64(buf: Uint8Array, off: number): number {
  const hi = ((buf[off]! << 24) | (buf[off + 1]! << 16) | (buf[off + 2]! << 8) | buf[off + 3]!) >>> 0
  const lo = ((buf[off + 4]! << 24) | (buf[off + 5]! << 16) | (buf[off + 6]! << 8) | buf[off + 7]!) >>> 0
  return hi * 0x1_0000_0000 + lo
}

/** Largest value an 8-byte key field is given (positions and slots stay far below). */
export const U64_MAX_SAFE = Number.MAX_SAFE_INTEGER

export function recordKey(end: number, slot: number): Uint8Array {
  const k = new Uint8Array(17)
  k[0] = R
  putU64(k, 1, end)
  putU64(k, 9, slot)
  return k
}

export function parseRecordKey(k: Uint8Array): { end: number; slot: number } | null {
  if (k.length !== 17 || k[0] !== R) return null
  return { end: getU64(k, 1), slot: getU64(k, 9) }
}

export function slotKey(slot: number): Uint8Array {
  const k = new Uint8Array(9)
  k[0] = S
  putU64(k, 1, slot)
  return k
}

export function parseSlotKey(k: Uint8Array): number | null {
  if (k.length !== 9 || k[0] !== S) return null
  return getU64(k, 1)
}

export function acceptKey(slot: number): Uint8Array {
  const k = new Uint8Array(9)
  k[0] = A
  putU64(k, 1, slot)
  return k
}

export function parseAcceptKey(k: Uint8Array): number | null {
  if (k.length !== 9 || k[0] !== A) return null
  return getU64(k, 1)
}

function named(prefix: number, name: string): Uint8Array {
  const b = utf8.encode(name)
  const k = new Uint8Array(1 + b.length)
  k[0] = prefix
  k.set(b, 1)
  return k
}

export function streamKey(stream: string, last: number): Uint8Array {
  const b = utf8.encode(stream)
  const k = new Uint8Array(1 + b.length + 1 + 8)
  k[0] = X
  k.set(b, 1)
  k[1 + b.length] = 0
  putU64(k, 2 + b.length, last)
  return k
}

/** The stream index range of one stream: [x<stream>0<from>, x<stream>1). */
export function streamRange(stream: string, from: number): { gte: Uint8Array; lt: Uint8Array } {
  const lt = named(X, stream + '\u0001')
  return { gte: streamKey(stream, from), lt }
}

/** The position encoded in a stream index key. */
export function streamKeyPosition(k: Uint8Array): number {
  return getU64(k, k.length - 8)
}

export const streamLastKey = (stream: string): Uint8Array => named(L, stream)
export const sessionKey = (clientId: string): Uint8Array => named(E, clientId)
export const trimKey = (stream: string): Uint8Array => named(T, stream)
export const metaKey = (name: 'format' | 'promise' | 'identity' | 'applied' | 'reclaimed'): Uint8Array => named(M, name)

export function nameOf(k: Uint8Array): string {
  return utf8d.decode(k.subarray(1))
}

/** All keys of one single-byte keyspace. */
export function keyspace(prefix: 'r' | 's' | 'x' | 'a' | 'e' | 't'): { gte: Uint8Array; lt: Uint8Array } {
  const c = prefix.charCodeAt(0)
  return { gte: Uint8Array.of(c), lt: Uint8Array.of(c + 1) }
}

export const recordsFrom = (end: number, slot: number): { gte: Uint8Array; lt: Uint8Array } => ({
  gte: recordKey(end, slot),
  lt: Uint8Array.of(R + 1),
})

// ---------------------------------------------------------------------------------
// Values.

const encoder = new Encoder({ ignoreUndefined: true })
const decoder = new Decoder()

/** <crc32c(payload):4 BE><payload> with payload = msgpack(value). */
export function frame(value: unknown): Uint8Array {
  const payload = encoder.encodeSharedRef(value)
  const out = new Uint8Array(4 + payload.length)
  out.set(payload, 4)
  const crc = crc32c(payload)
  out[0] = crc >>> 24
  out[1] = (crc >>> 16) & 0xff
  out[2] = (crc >>> 8) & 0xff
  out[3] = crc & 0xff
  return out
}

/** A frame of a payload given in parts (concatenated). */
function framePieces(pieces: readonly Uint8Array[]): Uint8Array {
  let n = 0
  for (const p of pieces) n += p.length
  const out = new Uint8Array(4 + n)
  let at = 4
  for (const p of pieces) {
    out.set(p, at)
    at += p.length
  }
  const crc = crc32c(out.subarray(4))
  out[0] = crc >>> 24
  out[1] = (crc >>> 16) & 0xff
  out[2] = (crc >>> 8) & 0xff
  out[3] = crc & 0xff
  return out
}

/** msgpack header of a map of `n` entries (fixmap, map 16, map 32). */
function mapHeader(n: number): Uint8Array {
  return n < 16 ? Uint8Array.of(0x80 + n) : n < 0x10000 ? Uint8Array.of(0xde, n >>> 8, n & 0xff) : Uint8Array.of(0xdf, n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff)
}

const FIXARRAY_2 = Uint8Array.of(0x92)

/** frame([[ballot.round, ballot.replica], value]) — with the value's shared bytes spliced in (value-bytes.ts). */
export function frameAccept(ballot: { readonly round: number; readonly replica: number }, value: SlotValue): Uint8Array {
  return framePieces([FIXARRAY_2, encoder.encode([ballot.round, ballot.replica]), valueBytes(value)])
}

/** frame(record) — byte for byte, with the record's value spliced in from its shared bytes. */
export function frameRecord(record: ChosenRecord): Uint8Array {
  const pieces: Uint8Array[] = [new Uint8Array(0)]
  let n = 0
  for (const key of Object.keys(record)) {
    const v = (record as unknown as Record<string, unknown>)[key]
    if (v === undefined) continue
    n++
    pieces.push(encoder.encode(key), key === 'value' ? valueBytes(v as SlotValue) : encoder.encode(v))
  }
  pieces[0] = mapHeader(n)
  return framePieces(pieces)
}

export interface Where {
  readonly what: string
  readonly slot?: number | null
  readonly position?: number | null
}

/** Checks the frame's checksum and decodes it; CorruptionError on any damage. */
export function unframe(value: Uint8Array, where: Where): unknown {
  const payload = checkedPayload(value, where)
  try {
    return decoder.decode(payload)
  } catch (err) {
    throw corrupt(where, 'undecodable value', err)
  }
}

/**
 * Checks the frame's checksum and returns its msgpack payload, undecoded, as a plain
 * Uint8Array view (so that bytes taken from it are Uint8Arrays, not Buffers).
 */
export function checkedPayload(value: Uint8Array, where: Where): Uint8Array {
  const v = new Uint8Array(value.buffer, value.byteOffset, value.byteLength)
  if (v.length < 4) throw corrupt(where, 'value shorter than its checksum')
  const stored = ((v[0]! << 24) | (v[1]! << 16) | (v[2]! << 8) | v[3]!) >>> 0
  const payload = v.subarray(4)
  if (crc32c(payload) !== stored) throw corrupt(where, 'checksum mismatch')
  return payload
}

function corrupt(where: Where, why: string, cause?: unknown): CorruptionError {
  return new CorruptionError(`${where.what}: ${why}`, { slot: where.slot ?? null, position: where.position ?? null, cause })
}

// Small shape checks on decoded values: a value that passed its checksum but has the
// wrong shape was written by a bug or another format; treat it as corrupt.

export function asInt(v: unknown, where: Where): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) {
    throw new CorruptionError(`${where.what}: expected an integer`, { slot: where.slot ?? null, position: where.position ?? null })
  }
  return v
}

export function asArray(v: unknown, where: Where): unknown[] {
  if (!Array.isArray(v)) {
    throw new CorruptionError(`${where.what}: expected an array`, { slot: where.slot ?? null, position: where.position ?? null })
  }
  return v as unknown[]
}

export function asObject(v: unknown, where: Where): Record<string, unknown> {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) {
    throw new CorruptionError(`${where.what}: expected a map`, { slot: where.slot ?? null, position: where.position ?? null })
  }
  return v as Record<string, unknown>
}
