// The msgpack encoding of a SlotValue, shared by whoever needs it first. A replica handles
// each slot value several times as bytes: the leader sends it to every follower, and every
// replica stores it twice (its accept record, then its chosen record). The value is
// encoded once — or never, on a follower, which keeps the bytes it received — and the
// other uses splice those bytes in: msgpack is compositional, so the result is byte for
// byte what encoding the whole structure would give (test/storage/value-bytes.test.ts).
//
// Keyed weakly by the value object: the bytes live exactly as long as the value does.
// SlotValues are never mutated once built (the core treats them as immutable).

import { Encoder } from '@msgpack/msgpack'
import type { SlotValue } from './paxos/types.ts'

const known = new WeakMap<SlotValue, Uint8Array>()
const encoder = new Encoder({ ignoreUndefined: true })

/** The msgpack bytes of `value` (ignoreUndefined), encoded at most once per value object. */
export function valueBytes(value: SlotValue): Uint8Array {
  let b = known.get(value)
  if (b === undefined) {
    b = encoder.encode(value)
    known.set(value, b)
  }
  return b
}

/** Remembers that `bytes` are the encoding of `value` (e.g. as received and decoded). */
export function rememberValueBytes(value: SlotValue, bytes: Uint8Array): void {
  known.set(value, bytes)
}
