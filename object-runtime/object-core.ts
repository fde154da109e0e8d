// One hosted object's state machine: its current snapshot, its version, and the function
// that applies a batch of sequenced ops in one pass. No I/O; the runtime feeds it entries
// in log order. Two ways to hold state, chosen once from the shape of `initial()`:
//
//   draft mode       the root is a plain object/array/Map/Set: one immer `produce` per
//                    batch, every op of the batch mutates the same draft.
//   persistent root  the root is an immutable.js collection or a BTree: no immer; the
//                    batch works on a transient/cloned copy (O(1) to make) mutated in
//                    place, sealed into the next snapshot at the end (O(1)).
//
// Either way the previous snapshot is never touched, so readers may keep it across awaits.
//
// Poisoning: an op that cannot be applied (undecodable, unknown kind, other type, other
// format version, unknown mutator, a mutator that throws or is caught being
// non-deterministic) stops the object at that op. The state is left as it was after the
// previous op (the batch is replayed up to it), and the object applies nothing more.

import { current, enableMapSet, isDraft, isDraftable, produce } from 'immer'
import type { Draft } from 'immer'
import { enterMutator, exitMutator } from './determinism-guard.ts'
import { ObjectError, ObjectPoisonedError, errorText } from './errors.ts'
import type { AccessorFn, MutatorFn, ObjectDefinition } from './define.ts'
import type { DecodedRecord } from './op-codec.ts'
import { beginBatch, endBatch, isPersistentRoot } from './persistent.ts'
import { stateHash } from './state-hash.ts'

enableMapSet()

/** What a mutator can know about the entry it is applying: the same on every client. */
export interface EntryContext {
  /** Log position of the entry. Unique and increasing: usable as an id or a fencing token. */
  readonly position: number
  /** Log time of the entry, ms (the timestamp of its Paxos slot; non-decreasing along the log). */
  readonly ts: number
  /** The streams the entry belongs to. */
  readonly streams: readonly string[]
  /** The name of the object being changed. */
  readonly objectName: string
}

// The op being applied, set around each mutator call (the context object is built only
// when a mutator asks for it).
let currentOp: SequencedOp | null = null
let currentObjectName = ''

/**
 * The entry being applied; callable only inside a mutator. This is how a mutator reads
 * log time (e.g. lock expiry) or gets a unique, ordered id (the position) without
 * breaking determinism.
 */
export function currentEntry(): EntryContext {
  const op = currentOp
  if (op === null) throw new ObjectError('bad_argument', 'currentEntry() can only be called inside a mutator')
  if (op.ts === undefined) {
    throw new ObjectError('bad_argument', `entry ${op.position} carries no log time (ts): the log client did not provide it`)
  }
  return Object.freeze({ position: op.position, ts: op.ts, streams: op.streams, objectName: currentObjectName })
}

/** One sequenced op for one object. */
export interface SequencedOp {
  readonly position: number
  readonly ts: number | undefined
  readonly streams: readonly string[]
  readonly record: DecodedRecord
}

export type StateMode = 'draft' | 'persistent-root'

type AnyDefinition = ObjectDefinition<unknown, Record<string, MutatorFn<unknown>>, Record<string, AccessorFn<unknown>>>

/** Thrown inside a batch to stop it at the op that poisons. */
class PoisonSignal {
  constructor(
    readonly index: number,
    readonly error: ObjectPoisonedError,
  ) {}
}

export class ObjectCore {
  readonly def: AnyDefinition
  readonly name: string
  readonly stream: string
  readonly mode: StateMode
  private readonly guard: boolean
  /** The current snapshot: frozen (draft mode) or persistent. Never mutated in place. */
  state: unknown
  /** Position of the last applied entry, -1 before any. */
  version = -1
  poison: ObjectPoisonedError | undefined

  constructor(def: AnyDefinition, name: string, stream: string, guard: boolean) {
    this.def = def
    this.name = name
    this.stream = stream
    this.guard = guard
    const initial = def.initial()
    if (isPersistentRoot(initial)) {
      this.mode = 'persistent-root'
      this.state = initial
    } else if (isDraftable(initial)) {
      this.mode = 'draft'
      // Freeze the initial snapshot the way later ones are (produce with no change freezes deeply).
      this.state = produce(initial, () => undefined)
    } else {
      throw new ObjectError(
        'bad_definition',
        `${def.name}: initial() must return a plain object, array, Map or Set (drafted by immer) or an immutable.js collection / BTree; got ${typeof initial}`,
      )
    }
  }

  /** The poison, read through a call so that TypeScript does not narrow it across awaits. */
  poisonError(): ObjectPoisonedError | undefined {
    return this.poison
  }

  stateHash(): string {
    return stateHash(this.state)
  }

  /**
   * Applies ops (increasing positions, all above `version`) in one pass. Returns the
   * result of each applied op, in order; stops at a poisoning op (see `poison`).
   */
  applyBatch(ops: readonly SequencedOp[]): unknown[] {
    if (this.poison !== undefined || ops.length === 0) return []
    const base = this.state
    let results: unknown[] = []
    let stop: PoisonSignal | null = null
    try {
      results = this.run(base, ops, ops.length)
    } catch (err) {
      if (!(err instanceof PoisonSignal)) throw err
      stop = err
    }
    if (stop !== null) {
      // Replay the ops before the poisoning one from the same base: mutators are
      // deterministic, so this yields the state every other client has at that point.
      this.state = base
      results = stop.index > 0 ? this.run(base, ops, stop.index) : []
      this.version = stop.index > 0 ? ops[stop.index - 1]!.position : this.version
      this.poison = stop.error
      return results
    }
    this.version = ops[ops.length - 1]!.position
    return results
  }

  /** Applies ops[0, count) to `base`, sets `this.state`, returns the results. Throws PoisonSignal. */
  private run(base: unknown, ops: readonly SequencedOp[], count: number): unknown[] {
    const results: unknown[] = new Array<unknown>(count)
    if (this.mode === 'draft') {
      this.state = produce(base, (draft: Draft<unknown>) => {
        for (let i = 0; i < count; i++) results[i] = undraft(this.applyOne(draft, ops[i]!, i))
      })
    } else {
      let work = beginBatch(base)
      let sealed = base
      for (let i = 0; i < count; i++) {
        const r = this.applyOne(work, ops[i]!, i)
        if (r === work) {
          // The mutator handed out the working copy itself: seal it so later ops of this
          // batch cannot change what the caller got, and go on with a fresh working copy.
          sealed = endBatch(work, sealed)
          results[i] = sealed
          work = beginBatch(sealed)
        } else {
          results[i] = r
        }
      }
      this.state = endBatch(work, sealed)
    }
    return results
  }

  private applyOne(state: unknown, op: SequencedOp, index: number): unknown {
    const rec = op.record
    if (rec.kind !== 'op') throw this.poisonAt(index, op, {}, rec.reason)
    const { type, version, mutator, args } = rec.op
    const described = { type, version, mutator }
    if (type !== this.def.name) throw this.poisonAt(index, op, described, `op for type ${type} on an object of type ${this.def.name}`)
    if (version !== this.def.version) {
      throw this.poisonAt(index, op, described, `op format version ${version}, but this client's ${this.def.name} definition is version ${this.def.version}`)
    }
    const fn = Object.hasOwn(this.def.mutators, mutator) ? this.def.mutators[mutator] : undefined
    if (fn === undefined) throw this.poisonAt(index, op, described, `unknown mutator "${mutator}" (not in this client's ${this.def.name} definition)`)
    currentOp = op
    currentObjectName = this.name
    let result: unknown
    try {
      if (this.guard) enterMutator(this.name, `${type}.${mutator}`)
      result = (fn as (state: unknown, ...a: readonly unknown[]) => unknown)(state, ...args)
    } catch (err) {
      const violation = this.guard ? exitMutator() : null
      throw this.poisonAt(index, op, described, `mutator threw ${errorText(violation ?? err)}`, violation ?? err)
    } finally {
      currentOp = null
    }
    const violation = this.guard ? exitMutator() : null
    if (violation !== null) throw this.poisonAt(index, op, described, `mutator threw ${errorText(violation)}`, violation)
    if (typeof (result as { then?: unknown } | null | undefined)?.then === 'function') {
      throw this.poisonAt(index, op, described, 'mutator returned a promise: mutators must be synchronous')
    }
    return result
  }

  private poisonAt(index: number, op: SequencedOp, described: { type?: string; version?: number; mutator?: string }, reason: string, cause?: unknown): PoisonSignal {
    return new PoisonSignal(index, new ObjectPoisonedError(this.name, op.position, described, reason, cause))
  }
}

/** Mutator results may point into the draft; turn drafts (at any depth of plain data) into plain copies. */
function undraft(value: unknown): unknown {
  if (typeof value !== 'object' || value === null) return value
  if (isDraft(value)) return current(value)
  if (Array.isArray(value)) {
    let copy: unknown[] | undefined
    for (let i = 0; i < value.length; i++) {
      const v: unknown = value[i]
      const u = undraft(v)
      if (u !== v) (copy ??= value.slice())[i] = u
    }
    return copy ?? value
  }
  const proto: unknown = Object.getPrototypeOf(value)
  if (proto !== Object.prototype && proto !== null) return value
  let copy: Record<string, unknown> | undefined
  for (const [k, v] of Object.entries(value)) {
    const u = undraft(v)
    if (u !== v) (copy ??= { ...value })[k] = u
  }
  return copy ?? value
}
