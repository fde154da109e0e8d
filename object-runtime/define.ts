// defineObject: the one way to describe a replicated object. Built-in objects (objects/)
// use nothing else. A definition is plain data plus functions; the runtime (runtime.ts)
// turns it into a handle whose methods append ops (mutators) or read state (accessors).
//
//   const Leaderboard = defineObject({
//     name: 'Leaderboard',
//     initial: () => ({ scores: {} as Record<string, number> }),
//     mutators: {
//       add(state, player: string, pts: number) {
//         state.scores[player] = (state.scores[player] ?? 0) + pts
//         return state.scores[player]
//       },
//     },
//     accessors: {
//       score(state, player: string) { return state.scores[player] ?? 0 },
//     },
//     conflictKeys: { add: (player) => [player], score: (player) => [player] },
//   })
//   const board = rt.open(Leaderboard, 'board')
//   await board.add('ann', 3)                              // Promise<number>
//   await board.score('ann')                               // linearizable
//   await board.score('ann', { consistency: 'cached' })    // local state, no round trip
//
// Types flow from the definition alone: argument types are the annotated parameters after
// `state`, results are the return types. Generic objects are factories:
// `function QMap<K, V>() { return defineObject({ ... }) }`, opened as
// `rt.open(QMap<string, User>, 'users')` or `rt.open(QMap<string, User>(), 'users')`.

import { ObjectError } from './errors.ts'
import type { ObjectPoisonedError } from './errors.ts'

/** A key that an op reads or writes, for conflict detection in future transactions. */
export type ConflictKey = string | number

/** The conflict key that stands for the whole object (a register's value, a clear()). */
export const WHOLE_OBJECT: ConflictKey = '*'

export type Consistency = 'linearizable' | 'cached'

/** The optional trailing argument of every accessor call. */
export interface ReadOptions {
  /**
   * 'linearizable' (the default): sync to the log's tail first, so the answer reflects
   * every write that completed before the call. 'cached': answer from the local state as
   * it is now, without contacting the log (may lag; never goes backwards).
   */
  readonly consistency?: Consistency
}

/**
 * A mutator: receives the state (an immer draft, or the working copy of a persistent
 * root) and the op's arguments; changes the state; may return a value, which becomes the
 * result of the call (computed at the op's log position). Must be deterministic.
 */
export type MutatorFn<S> = (state: S, ...args: never[]) => unknown

/** An accessor: receives the frozen state snapshot and arguments, returns a value. Must not change state. */
export type AccessorFn<S> = (state: S, ...args: never[]) => unknown

/** Argument list of a mutator or accessor, without the state. */
export type OpArgs<F> = F extends (state: never, ...args: infer P) => unknown ? P : never

/** For each mutator or accessor, the keys it touches, computed from its arguments. */
export type ConflictKeysOf<M, A> = {
  readonly [N in keyof M]?: (...args: OpArgs<M[N]>) => readonly ConflictKey[]
} & {
  readonly [N in keyof A]?: (...args: OpArgs<A[N]>) => readonly ConflictKey[]
}

/** Names a handle uses for itself; mutators and accessors may not take them. */
export const RESERVED_NAMES = Object.freeze(['name', 'typeName', 'version', 'stateHash', 'sync', 'poisoned', 'then', 'constructor'] as const)
export type ReservedName = (typeof RESERVED_NAMES)[number]

export interface ObjectSpec<S, M, A> {
  /** Type name written in every op (with `version`): `[1, name, version, mutator, args]`. */
  readonly name: string
  /** Op format version (default 1). An op with another version poisons the object on this client. */
  readonly version?: number
  /**
   * The initial state, a fresh value on each call. If it returns an immutable.js
   * collection or a sorted-btree BTree, the object uses the persistent-root fast path
   * (no immer; see README.md); otherwise it must be an object or array that immer drafts.
   */
  readonly initial: () => S
  readonly mutators: M
  readonly accessors?: A
  readonly conflictKeys?: ConflictKeysOf<M, A>
  /** One line for humans. */
  readonly description?: string
}

const DEFINITION = Symbol.for('quipu.object-definition')

/** The result of defineObject: opaque to users, read by the runtime. */
export interface ObjectDefinition<S, M, A> {
  readonly [DEFINITION]: true
  readonly name: string
  readonly version: number
  readonly initial: () => S
  readonly mutators: M
  readonly accessors: A
  readonly conflictKeys: ConflictKeysOf<M, A>
  readonly description: string
}

// eslint-disable-next-line @typescript-eslint/no-empty-object-type -- "no accessors" is the empty object type
type NoAccessors = {}

/** Defines a replicated object (see the header of this file). */
export function defineObject<S, M extends Record<string, MutatorFn<S>>>(
  spec: ObjectSpec<S, M, NoAccessors> & { readonly accessors?: undefined },
): ObjectDefinition<S, M, NoAccessors>
export function defineObject<S, M extends Record<string, MutatorFn<S>>, A extends Record<string, AccessorFn<S>>>(
  spec: ObjectSpec<S, M, A> & { readonly accessors: A },
): ObjectDefinition<S, M, A>
export function defineObject<S, M extends Record<string, MutatorFn<S>>, A extends Record<string, AccessorFn<S>>>(
  spec: ObjectSpec<S, M, A>,
): ObjectDefinition<S, M, A> {
  const where = `defineObject(${JSON.stringify(spec.name)})`
  if (typeof spec.name !== 'string' || !/^[A-Za-z][A-Za-z0-9_.-]{0,63}$/.test(spec.name)) {
    throw new ObjectError('bad_definition', `${where}: name must be 1-64 characters of [A-Za-z0-9_.-], starting with a letter`)
  }
  const version = spec.version ?? 1
  if (!Number.isSafeInteger(version) || version < 1) throw new ObjectError('bad_definition', `${where}: version must be a positive integer`)
  if (typeof spec.initial !== 'function') throw new ObjectError('bad_definition', `${where}: initial must be a function returning a fresh state`)
  const accessors = (spec.accessors ?? {}) as A
  const check = (kind: string, table: object): void => {
    for (const [name, fn] of Object.entries(table)) {
      if ((RESERVED_NAMES as readonly string[]).includes(name)) {
        throw new ObjectError('bad_definition', `${where}: ${kind} "${name}" uses a name reserved by object handles (${RESERVED_NAMES.join(', ')})`)
      }
      if (typeof fn !== 'function') throw new ObjectError('bad_definition', `${where}: ${kind} "${name}" is not a function`)
    }
  }
  check('mutator', spec.mutators)
  check('accessor', accessors)
  for (const name of Object.keys(accessors)) {
    if (Object.hasOwn(spec.mutators, name)) throw new ObjectError('bad_definition', `${where}: "${name}" is both a mutator and an accessor`)
  }
  for (const name of Object.keys(spec.conflictKeys ?? {})) {
    if (!Object.hasOwn(spec.mutators, name) && !Object.hasOwn(accessors, name)) {
      throw new ObjectError('bad_definition', `${where}: conflictKeys names "${name}", which is neither a mutator nor an accessor`)
    }
  }
  return Object.freeze({
    [DEFINITION]: true as const,
    name: spec.name,
    version,
    initial: spec.initial,
    mutators: Object.freeze({ ...spec.mutators }),
    accessors: Object.freeze({ ...accessors }),
    conflictKeys: Object.freeze({ ...(spec.conflictKeys ?? {}) }) as ConflictKeysOf<M, A>,
    description: spec.description ?? '',
  })
}

export function isObjectDefinition(value: unknown): value is ObjectDefinition<unknown, Record<string, MutatorFn<unknown>>, Record<string, AccessorFn<unknown>>> {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[DEFINITION] === true
}

/** The conflict keys a call declares (for transactions; exposed for tests and tooling). */
export function conflictKeysOf(def: ObjectDefinition<unknown, object, object>, op: string, args: readonly unknown[]): readonly ConflictKey[] | undefined {
  const fn = (def.conflictKeys as Record<string, ((...a: unknown[]) => readonly ConflictKey[]) | undefined>)[op]
  return fn?.(...args)
}

// ---------------------------------------------------------------------------------------
// Handle types: what rt.open(def, name) returns.

/** A definition, or a zero-argument factory returning one (`QMap<string, User>`). */
export type DefinitionSource<D> = D | (() => D)

export type MutatorMethod<F> = F extends (state: never, ...args: infer P) => infer R ? (...args: P) => Promise<R> : never
export type AccessorMethod<F> = F extends (state: never, ...args: infer P) => infer R ? (...args: [...P, options?: ReadOptions]) => Promise<R> : never

/** What every handle has besides its mutators and accessors. */
export interface ObjectMeta {
  /** The object's name, as passed to open(). */
  readonly name: string
  /** The definition's type name. */
  readonly typeName: string
  /** Log position of the last entry applied to this object, -1 before any. */
  readonly version: number
  /** Deterministic hash of the current local state (compare two clients at equal versions). */
  stateHash(): string
  /** Brings the object up to the log's tail (a linearizable sync). */
  sync(): Promise<void>
  /** Set once the object is poisoned; every call then rejects with it. */
  readonly poisoned: ObjectPoisonedError | undefined
}

export type ObjectHandle<D> =
  D extends ObjectDefinition<infer _S, infer M, infer A>
    ? { readonly [N in keyof M]: MutatorMethod<M[N]> } & { readonly [N in keyof A]: AccessorMethod<A[N]> } & ObjectMeta
    : never

/** The state type of a definition. */
export type StateOf<D> = D extends ObjectDefinition<infer S, infer _M, infer _A> ? S : never
