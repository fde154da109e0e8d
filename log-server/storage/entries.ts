// How a ChosenRecord turns into stored entries. Shared by every LogStore so that
// position arithmetic lives in one place.
//
// Iterate record.value.ops; only ops with kind 'append' whose outcome
// (record.outcomes[i]) is {kind:'new'} store entries. They take consecutive positions
// from record.firstPosition, in op order then entry order. 'dup'/'rejected' appends
// and 'trim' ops take no positions.

import type { ChosenRecord, Entry } from '../paxos/types.ts'

/** The stored entries of a record in position order (entry i is at firstPosition + i). */
export function storedEntries(record: ChosenRecord): Entry[] {
  const out: Entry[] = []
  const ops = record.value.ops
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i]!
    if (op.kind !== 'append' || record.outcomes[i]?.kind !== 'new') continue
    for (const e of op.entries) out.push(e)
  }
  return out
}

/** Number of entries a record stores. */
export function storedCount(record: ChosenRecord): number {
  let n = 0
  const ops = record.value.ops
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i]!
    if (op.kind === 'append' && record.outcomes[i]?.kind === 'new') n += op.entries.length
  }
  return n
}

/** Position one past the record's last stored entry. */
export function recordEnd(record: ChosenRecord): number {
  return record.firstPosition + storedCount(record)
}

/**
 * For every stream with entries in the record, the offsets (from firstPosition) of its
 * entries, ascending. An entry that names a stream twice appears once in that stream.
 * Map order: first appearance.
 */
export function streamOffsets(record: ChosenRecord): Map<string, number[]> {
  const out = new Map<string, number[]>()
  const entries = storedEntries(record)
  for (let off = 0; off < entries.length; off++) {
    for (const s of entries[off]!.streams) {
      let list = out.get(s)
      if (list === undefined) {
        list = []
        out.set(s, list)
      }
      if (list[list.length - 1] !== off) list.push(off)
    }
  }
  return out
}

/** Bytes an entry counts for against read bounds: its data plus its stream names. */
export function entryBytes(e: { readonly streams: readonly string[]; readonly data: Uint8Array }): number {
  let n = e.data.byteLength
  for (const s of e.streams) n += s.length
  return n
}
