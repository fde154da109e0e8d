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
// non-deterministic) stops the object at that op: `version` stays at the previous op,
// the object applies nothing more, every call rejects, and the state is considered lost
// (stateHash() then hashes the poison, identically on every client).

import { current, enableMapSet, isDraft, isDraftable, produce } from 'immer'
import type { Draft } from 'immer'
import { enterMutator, exitMutator } from './determinism-guard.ts'
import { ObjectError, ObjectPoisonedError, errorText } from './errors.ts'
import type { AccessorFn, MutatorFn, ObjectDefinition } from './define.ts'
import type { LogEntry } from './log-client.ts'
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
let currentOp: LogEntry | null = null
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

export type StateMode = 'draft' | 'persistent-root'

type AnyDefinition = ObjectDefinition<unknown, Record<string, MutatorFn<unknown>>, Record<string, AccessorFn<unknown>>>

/** Thrown inside a batch to stop it at the op that poisons. */
class PoisonSignal {
  constructor(readonly error: ObjectPoisonedError) {}
}

/** Receives the result of an applied op the runtime asked for. */
export type ResultSink = (position: number, value: unknown) => void

export class ObjectCore {
  readonly def: AnyDefinition
  readonly name: string
  readonly stream: string
  readonly mode: StateMode
  private readonly guard: boolean
  private readonly mutatorTable: Map<string, (state: unknown, ...args: unknown[]) => unknown>
  /**
   * The state. Draft mode: always a frozen snapshot. Persistent-root mode: either a
   * sealed snapshot, or — while `unsealed` — a working copy that only this object holds
   * (nobody has looked since the last batch), which the next batch keeps mutating in
   * place instead of copying. `snapshot()` seals it (O(1)) before anyone gets it.
   */
  private current: unknown
  private unsealed = false
  /** Persistent-root: the snapshot the working copy was made from (answered if nothing changed). */
  private sealedBase: unknown
  /** Position of the last applied entry, -1 before any. */
  version = -1
  poison: ObjectPoisonedError | undefined

  /** `of`: a fork of that object (forkAt), whose state is set by the caller: no initial(), tables shared. */
  constructor(def: AnyDefinition, name: string, stream: string, guard: boolean, of?: ObjectCore) {
    this.def = def
    this.name = name
    this.stream = stream
    this.guard = guard
    if (of !== undefined) {
      this.mutatorTable = of.mutatorTable
      this.mode = of.mode
      return
    }
    this.mutatorTable = new Map(Object.entries(def.mutators) as Array<[string, (state: unknown, ...args: unknown[]) => unknown]>)
    const initial = def.initial()
    if (isPersistentRoot(initial)) {
      this.mode = 'persistent-root'
      this.current = initial
    } else if (isDraftable(initial)) {
      this.mode = 'draft'
      // Freeze the initial snapshot the way later ones are (produce with no change freezes deeply).
      this.current = produce(initial, () => undefined)
    } else {
      throw new ObjectError(
        'bad_definition',
        `${def.name}: initial() must return a plain object, array, Map or Set (drafted by immer) or an immutable.js collection / BTree; got ${typeof initial}`,
      )
    }
    this.sealedBase = this.current
  }

  /** The current state as an immutable snapshot, safe to hold across awaits. */
  snapshot(): unknown {
    if (this.unsealed) {
      this.current = endBatch(this.current, this.sealedBase)
      this.sealedBase = this.current
      this.unsealed = false
    }
    return this.current
  }

  /**
   * Replaces the state with one loaded from a checkpoint (checkpoint.ts) taken at
   * `version`. The previous snapshot is left untouched for whoever holds it.
   */
  restore(state: unknown, version: number): void {
    if (this.mode === 'persistent-root' ? !isPersistentRoot(state) : !isDraftable(state)) {
      throw new ObjectError('type_mismatch', `object "${this.name}": checkpoint state does not have the shape of a ${this.def.name} (${this.mode} mode)`)
    }
    // Draft mode: freeze deeply the way produced snapshots are.
    this.current = this.mode === 'draft' ? produce(state, () => undefined) : state
    this.sealedBase = this.current
    this.unsealed = false
    this.version = version
    this.poison = undefined
  }

  /** The poison, read through a call so that TypeScript does not narrow it across awaits. */
  poisonError(): ObjectPoisonedError | undefined {
    return this.poison
  }

  /**
   * Deterministic hash of the state. A poisoned object's state is gone (it may hold part
   * of the failed op's effects, and different clients batch differently), so its hash is
   * that of the poison: position and reason, the same on every client.
   */
  stateHash(): string {
    const poison = this.poison
    if (poison !== undefined) return stateHash(['poisoned', this.version, poison.position, poison.message])
    return stateHash(this.snapshot())
  }

  /**
   * Applies ops (increasing positions, all above `version`) in one pass. For every
   * applied op at a position >= `resultsFrom`, hands its result to `sink`. Stops at a
   * poisoning op (see `poison`).
   */
  applyBatch(ops: readonly LogEntry[], records: readonly DecodedRecord[], resultsFrom = Infinity, sink?: ResultSink): void {
    if (this.poison !== undefined || ops.length === 0) return
    let applied = 0
    try {
      if (this.mode === 'draft') {
        this.current = produce(this.current, (draft: Draft<unknown>) => {
          for (let i = 0; i < ops.length; i++) {
            const op = ops[i]!
            const r = this.applyOne(draft, op, records[i]!)
            applied++
            if (op.position >= resultsFrom) sink?.(op.position, undraft(r))
          }
        })
      } else {
        let work = this.workingCopy()
        for (let i = 0; i < ops.length; i++) {
          const op = ops[i]!
          let r = this.applyOne(work, op, records[i]!)
          applied++
          if (r === work) {
            // The mutator handed out the working copy itself: seal it, so that later ops
            // cannot change what the caller got, and go on with a fresh working copy.
            r = this.snapshot()
            work = beginBatch(r)
            this.current = work
            this.unsealed = true
          }
          if (op.position >= resultsFrom) sink?.(op.position, r)
        }
      }
    } catch (err) {
      if (!(err instanceof PoisonSignal)) throw err
      this.poison = err.error
    }
    if (applied > 0) this.version = ops[applied - 1]!.position
  }

  /**
   * Applies one op (above `version`) and returns its result: applyBatch of a one-entry
   * batch, without the batch. Returns undefined if the op poisons the object (see `poison`).
   */
  applySingle(op: LogEntry, record: DecodedRecord): unknown {
    if (this.poison !== undefined) return undefined
    let result: unknown
    try {
      if (this.mode === 'draft') {
        this.current = produce(this.current, (draft: Draft<unknown>) => {
          result = undraft(this.applyOne(draft, op, record))
        })
      } else {
        const work = this.workingCopy()
        result = this.applyOne(work, op, record)
        if (result === work) result = this.snapshot() // the working copy itself: sealed, as in applyBatch
      }
    } catch (err) {
      if (!(err instanceof PoisonSignal)) throw err
      this.poison = err.error
      return undefined
    }
    this.version = op.position
    return result
  }

  /**
   * A private copy of this object at `state` (a snapshot of it) and `version`, for a
   * transaction's view or a snapshot read: applying ops to the copy never touches this one.
   */
  forkAt(state: unknown, version: number): ObjectCore {
    const copy = new ObjectCore(this.def, this.name, this.stream, this.guard, this)
    copy.current = state
    copy.sealedBase = state
    copy.version = version
    copy.poison = this.poison
    return copy
  }

  /** A new copy of this object at its initial state (a snapshot rebuilt from the log). */
  fresh(): ObjectCore {
    return new ObjectCore(this.def, this.name, this.stream, this.guard)
  }

  /** The state as a working copy that ops may edit in place: begun on first use, kept until a read seals it. */
  private workingCopy(): unknown {
    if (!this.unsealed) {
      this.sealedBase = this.current
      this.current = beginBatch(this.current)
      this.unsealed = true
    }
    return this.current
  }

  private applyOne(state: unknown, op: LogEntry, rec: DecodedRecord): unknown {
    if (rec.kind === 'tx') {
      // A committed transaction: its ops for this object, in the order they were made.
      let result: unknown = undefined
      for (const one of rec.ops) {
        if (one.object === this.name) result = this.applyOp(state, op, one)
      }
      return result
    }
    if (rec.kind !== 'op') throw this.poisonAt(op, {}, rec.reason)
    return this.applyOp(state, op, rec)
  }

  private applyOp(state: unknown, op: LogEntry, rec: { readonly type: string; readonly version: number; readonly mutator: string; readonly args: readonly unknown[] }): unknown {
    const { type, version, mutator, args } = rec
    if (type !== this.def.name) throw this.poisonAt(op, rec, `op for type ${type} on an object of type ${this.def.name}`)
    if (version !== this.def.version) {
      throw this.poisonAt(op, rec, `op format version ${version}, but this client's ${this.def.name} definition is version ${this.def.version}`)
    }
    const fn = this.mutatorTable.get(mutator)
    if (fn === undefined) throw this.poisonAt(op, rec, `unknown mutator "${mutator}" (not in this client's ${this.def.name} definition)`)
    currentOp = op
    currentObjectName = this.name
    let result: unknown
    try {
      if (this.guard) enterMutator(this.name, type, mutator)
      // Spread only past three arguments: the common arities stay allocation-free.
      switch (args.length) {
        case 0:
          result = fn(state)
          break
        case 1:
          result = fn(state, args[0])
          break
        case 2:
          result = fn(state, args[0], args[1])
          break
        case 3:
          result = fn(state, args[0], args[1], args[2])
          break
        default:
          result = fn(state, ...args)
      }
    } catch (err) {
      const violation = this.guard ? exitMutator() : null
      throw this.poisonAt(op, rec, `mutator threw ${errorText(violation ?? err)}`, violation ?? err)
    } finally {
      currentOp = null
    }
    const violation = this.guard ? exitMutator() : null
    if (violation !== null) throw this.poisonAt(op, rec, `mutator threw ${errorText(violation)}`, violation)
    if (typeof result === 'object' && result !== null && typeof (result as { then?: unknown }).then === 'function') {
      throw this.poisonAt(op, rec, 'mutator returned a promise: mutators must be synchronous')
    }
    return result
  }

  private poisonAt(op: LogEntry, described: { type?: string; version?: number; mutator?: string }, reason: string, cause?: unknown): PoisonSignal {
    const { type, version, mutator } = described
    return new PoisonSignal(new ObjectPoisonedError(this.name, op.position, { type, version, mutator }, reason, cause))
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
