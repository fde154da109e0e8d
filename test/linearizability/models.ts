// Sequential specifications of the built-in objects, for `checkLinearizable`.
//
// Values are compared structurally (see canonical.ts), because outputs recorded
// against a real cluster went through msgpack. Every model accepts `UNKNOWN` as the
// output of an operation that never returned: the operation then has its effect, and
// its output is not checked.

import { inspect } from 'node:util'
import { canonical, canonicalEquals } from './canonical.ts'
import { UNKNOWN, isPending, partitionBy } from './checker.ts'
import type { Model, Operation, StepResult } from './checker.ts'

/** Human-readable values for failure reports; `?` is the output of a pending operation. */
const show = (value: unknown): string =>
  value === UNKNOWN ? '?' : inspect(value, { depth: 4, breakLength: Infinity, maxArrayLength: 20 })

const accept = <S>(state: S): StepResult<S> => ({ ok: true, state })
const reject = <S>(state: S): StepResult<S> => ({ ok: false, state })
const when = <S>(ok: boolean, state: S): StepResult<S> => ({ ok, state })

// ——— deterministic models from a reference implementation ———

export interface ReferenceSpec<S, I, O> {
  init(): S
  /** The reference sequential implementation: pure, returns the next state and the output. */
  apply(state: S, input: I): { readonly state: S; readonly output: O }
  hash(state: S): string
  describe?(input: I): string
  isReadOnly?(input: I): boolean
  partition?(history: readonly Operation<I, O>[]): readonly (readonly Operation<I, O>[])[]
}

/**
 * A model for any deterministic object given its reference implementation: an
 * operation is legal iff the reference returns a structurally equal output. Handy for
 * user-defined objects (`defineObject`); outputs are always checked, so a mutator that
 * returns nothing must be recorded with output `undefined`.
 */
export function deterministicModel<S, I, O>(spec: ReferenceSpec<S, I, O>): Model<S, I, O> {
  return {
    init: () => spec.init(),
    step(state, input, output) {
      const next = spec.apply(state, input)
      return when(output === UNKNOWN || canonicalEquals(next.output, output), next.state)
    },
    hash: (state) => spec.hash(state),
    describe: (input, output) => `${spec.describe ? spec.describe(input) : show(input)} → ${show(output)}`,
    ...(spec.isReadOnly ? { isReadOnly: spec.isReadOnly.bind(spec) } : {}),
    ...(spec.partition ? { partition: spec.partition.bind(spec) } : {}),
  }
}

// ——— register ———

export type RegisterInput<V> =
  | { readonly kind: 'get' }
  | { readonly kind: 'set'; readonly value: V }
  | { readonly kind: 'compareAndSet'; readonly expected: V; readonly value: V }

/** get → the value; set → nothing (undefined, unchecked); compareAndSet → whether it swapped. */
export type RegisterOutput<V> = V | boolean | undefined

export interface RegisterState<V> {
  readonly value: V
  /**
   * Bookkeeping of the history-aware pruning (see `forHistory` below): every write of
   * rank < `frontier` (writes ranked by return time) is linearized, and so are the
   * ranks in `ahead` (sorted). Unused (0 and []) by the plain model.
   */
  readonly frontier: number
  readonly ahead: readonly number[]
}

/**
 * A single read/write register holding `initial` at first.
 *
 * Why `forHistory`: with many concurrent writers the search may order writes in many
 * ways that all fail much later. When every set writes a distinct value (and there is
 * no compareAndSet), the history pins part of the order: if write y returned before
 * some read of x's value was called, y precedes that read and x is the last write
 * before it, so y precedes x. The writes that returned before the first read of x was
 * called form a prefix of the writes sorted by return time, so the specialised model
 * only has to track how far that prefix is linearized, and refuses to write x
 * earlier. Refused steps have no linearization behind them: the verdict is unchanged.
 */
export function registerModel<V>(initial: V): Model<RegisterState<V>, RegisterInput<V>, RegisterOutput<V>> {
  const base: Model<RegisterState<V>, RegisterInput<V>, RegisterOutput<V>> = {
    init: () => ({ value: initial, frontier: 0, ahead: [] }),
    step(state, input, output) {
      switch (input.kind) {
        case 'get':
          return when(output === UNKNOWN || canonicalEquals(output, state.value), state)
        case 'set':
          return accept({ ...state, value: input.value })
        case 'compareAndSet': {
          const swaps = canonicalEquals(state.value, input.expected)
          const next = swaps ? { ...state, value: input.value } : state
          if (output === UNKNOWN) return accept(next)
          if (typeof output !== 'boolean') return reject(state)
          return when(output === swaps, next)
        }
      }
    },
    hash: (state) => `${state.frontier}+${state.ahead.join(',')}|${canonical(state.value)}`,
    describe(input, output) {
      switch (input.kind) {
        case 'get':
          return `get() → ${show(output)}`
        case 'set':
          return `set(${show(input.value)})`
        case 'compareAndSet':
          return `compareAndSet(${show(input.expected)}, ${show(input.value)}) → ${show(output)}`
      }
    },
    describeState: (state) => show(state.value),
    isReadOnly: (input) => input.kind === 'get',
  }
  return { ...base, forHistory: (history) => registerModelFor(base, initial, history) }
}

function registerModelFor<V>(
  base: Model<RegisterState<V>, RegisterInput<V>, RegisterOutput<V>>,
  initial: V,
  history: readonly Operation<RegisterInput<V>, RegisterOutput<V>>[],
): Model<RegisterState<V>, RegisterInput<V>, RegisterOutput<V>> {
  const written = new Set<string>([canonical(initial)])
  const writes: { key: string; ret: number }[] = []
  const firstReadCall = new Map<string, number>()
  for (const op of history) {
    switch (op.input.kind) {
      case 'compareAndSet':
        return base // a failed swap writes nothing: the argument needs every write known
      case 'set': {
        const key = canonical(op.input.value)
        if (written.has(key)) return base // a repeated value: reads no longer name one write
        written.add(key)
        writes.push({ key, ret: op.ret ?? Infinity })
        break
      }
      case 'get': {
        if (isPending(op)) break
        const key = canonical(op.output)
        const seen = firstReadCall.get(key)
        if (seen === undefined || op.call < seen) firstReadCall.set(key, op.call)
      }
    }
  }
  writes.sort((a, b) => a.ret - b.ret)
  const rets = writes.map((w) => w.ret)
  const rankOf = new Map<string, number>()
  const needBefore = new Map<string, number>()
  for (const [rank, w] of writes.entries()) {
    rankOf.set(w.key, rank)
    const readAt = firstReadCall.get(w.key)
    if (readAt !== undefined) needBefore.set(w.key, countBelow(rets, readAt))
  }
  return {
    ...base,
    step(state, input, output) {
      if (input.kind !== 'set') return base.step(state, input, output)
      const key = canonical(input.value)
      const rank = rankOf.get(key) as number
      const order = advance(state.frontier, state.ahead, rank)
      if (order.frontier < (needBefore.get(key) ?? 0)) return reject(state)
      return accept({ value: input.value, ...order })
    },
  }
}

// ——— counter ———

/**
 * `add` returns nothing (its output is not checked); `addAndGet` returns the new value.
 * Deltas should be integers: float addition is not associative, so sums of the same
 * deltas in different orders may differ and a correct history could be rejected.
 */
export type CounterInput =
  | { readonly kind: 'add'; readonly delta: number }
  | { readonly kind: 'addAndGet'; readonly delta: number }
  | { readonly kind: 'get' }

export type CounterOutput = number | undefined

export function counterModel(initial = 0): Model<number, CounterInput, CounterOutput> {
  return {
    init: () => initial,
    step(state, input, output) {
      switch (input.kind) {
        case 'add':
          return accept(state + input.delta)
        case 'addAndGet':
          return when(output === UNKNOWN || output === state + input.delta, state + input.delta)
        case 'get':
          return when(output === UNKNOWN || output === state, state)
      }
    },
    hash: (state) => String(state),
    describe(input, output) {
      switch (input.kind) {
        case 'add':
          return `add(${input.delta})`
        case 'addAndGet':
          return `addAndGet(${input.delta}) → ${show(output)}`
        case 'get':
          return `get() → ${show(output)}`
      }
    },
    describeState: (state) => String(state),
    isReadOnly: (input) => input.kind === 'get',
  }
}

// ——— map ———

export type MapInput<K, V> =
  | { readonly kind: 'get'; readonly key: K }
  | { readonly kind: 'has'; readonly key: K }
  | { readonly kind: 'set'; readonly key: K; readonly value: V }
  | { readonly kind: 'delete'; readonly key: K }

/**
 * get → the value or undefined; has → boolean; set → nothing (unchecked);
 * delete → whether the key existed if the API reports it (a boolean is checked),
 * or undefined for a void delete (unchecked).
 */
export type MapOutput<V> = V | boolean | undefined

/** The state: canonical(key) → value. Small per partition, since the model partitions by key. */
export type MapState<V> = ReadonlyMap<string, V>

/** A key-value map; histories are checked per key (P-compositionality). */
export function mapModel<K, V>(): Model<MapState<V>, MapInput<K, V>, MapOutput<V>> {
  return {
    init: () => new Map<string, V>(),
    step(state, input, output) {
      const key = canonical(input.key)
      switch (input.kind) {
        case 'get':
          return when(output === UNKNOWN || canonicalEquals(output, state.get(key)), state)
        case 'has':
          return when(output === UNKNOWN || output === state.has(key), state)
        case 'set': {
          const next = new Map(state)
          next.set(key, input.value)
          return accept(next)
        }
        case 'delete': {
          const existed = state.has(key)
          const next = existed ? new Map(state) : state
          if (existed) (next as Map<string, V>).delete(key)
          if (output === UNKNOWN || output === undefined) return accept(next)
          return when(output === existed, next)
        }
      }
    },
    hash(state) {
      const keys = [...state.keys()].sort()
      return canonical(keys.map((k) => [k, state.get(k)]))
    },
    describe(input, output) {
      const key = show(input.key)
      switch (input.kind) {
        case 'get':
          return `get(${key}) → ${show(output)}`
        case 'has':
          return `has(${key}) → ${show(output)}`
        case 'set':
          return `set(${key}, ${show(input.value)})`
        case 'delete':
          return `delete(${key})${output === undefined ? '' : ` → ${show(output)}`}`
      }
    },
    describeState(state) {
      const keys = [...state.keys()].sort()
      return `{${keys.map((k) => `${k}: ${show(state.get(k))}`).join(', ')}}` // keys in canonical form
    },
    isReadOnly: (input) => input.kind === 'get' || input.kind === 'has',
    partition: (history) => partitionBy(history, (op) => canonical(op.input.key)),
  }
}

// ——— queue ———

export type QueueInput<T> =
  | { readonly kind: 'enqueue'; readonly value: T }
  | { readonly kind: 'dequeue' }
  | { readonly kind: 'peek' }
  | { readonly kind: 'size' }

/** enqueue → nothing (unchecked); dequeue/peek → the head or undefined if empty; size → number. */
export type QueueOutput<T> = T | number | undefined

export interface QueueItem<T> {
  readonly key: string
  readonly value: T
}

export interface QueueState<T> {
  /** The items, head first, each with its canonical encoding. */
  readonly items: readonly QueueItem<T>[]
  /**
   * Bookkeeping of the history-aware pruning (see `forHistory` below): every dequeued
   * value of rank < `frontier` was enqueued, and so were the ranks in `ahead` (sorted).
   * Unused (0 and []) by the plain model.
   */
  readonly frontier: number
  readonly ahead: readonly number[]
}

// canonical() escapes control characters inside strings, so '\n' never occurs in an
// encoding and joining encodings with it is injective.
const QUEUE_HASH_SEPARATOR = '\n'

/**
 * A FIFO queue.
 *
 * Why `forHistory`: concurrent enqueues leave the order of their items open until the
 * items are dequeued, possibly hundreds of operations later, and a plain Wing–Gong
 * search that guessed wrong backtracks through every other open choice made in
 * between — exponential in the number of concurrent enqueues still in the queue. When
 * enqueued values are unique (the usual test set-up), the history itself tells the
 * order: if the dequeue that returned b returned before the dequeue that returned a
 * was called, b was dequeued first, so (FIFO) b was enqueued first. The specialised
 * model refuses to enqueue a before every such b, and — when no dequeue is pending —
 * refuses to enqueue a value that is never dequeued before all dequeued ones (it would
 * sit ahead of them forever). Both refusals only cut branches with no linearization,
 * so the verdict is unchanged; a history with duplicate values gets the plain model.
 */
export function queueModel<T>(): Model<QueueState<T>, QueueInput<T>, QueueOutput<T>> {
  const base: Model<QueueState<T>, QueueInput<T>, QueueOutput<T>> = {
    init: () => ({ items: [], frontier: 0, ahead: [] }),
    step(state, input, output) {
      const { items } = state
      switch (input.kind) {
        case 'enqueue':
          return accept({ ...state, items: [...items, { key: canonical(input.value), value: input.value }] })
        case 'dequeue': {
          const head = items[0]
          const next = head === undefined ? state : { ...state, items: items.slice(1) }
          if (output === UNKNOWN) return accept(next)
          return when(head === undefined ? output === undefined : canonical(output) === head.key, next)
        }
        case 'peek': {
          const head = items[0]
          if (output === UNKNOWN) return accept(state)
          return when(head === undefined ? output === undefined : canonical(output) === head.key, state)
        }
        case 'size':
          return when(output === UNKNOWN || output === items.length, state)
      }
    },
    hash: (state) =>
      `${state.frontier}+${state.ahead.join(',')}|${state.items.map((item) => item.key).join(QUEUE_HASH_SEPARATOR)}`,
    describe(input, output) {
      switch (input.kind) {
        case 'enqueue':
          return `enqueue(${show(input.value)})`
        case 'dequeue':
          return `dequeue() → ${show(output)}`
        case 'peek':
          return `peek() → ${show(output)}`
        case 'size':
          return `size() → ${show(output)}`
      }
    },
    describeState: (state) => show(state.items.map((item) => item.value)),
    isReadOnly: (input) => input.kind === 'peek' || input.kind === 'size',
  }
  return { ...base, forHistory: (history) => queueModelFor(base, history) }
}

function queueModelFor<T>(
  base: Model<QueueState<T>, QueueInput<T>, QueueOutput<T>>,
  history: readonly Operation<QueueInput<T>, QueueOutput<T>>[],
): Model<QueueState<T>, QueueInput<T>, QueueOutput<T>> {
  const enqueued = new Set<string>()
  const dequeues: { key: string; call: number; ret: number }[] = []
  let pendingDequeues = 0
  for (const op of history) {
    if (op.input.kind === 'enqueue') {
      const key = canonical(op.input.value)
      if (enqueued.has(key)) return base // duplicate values: FIFO order no longer follows
      enqueued.add(key)
    } else if (op.input.kind === 'dequeue') {
      if (isPending(op)) pendingDequeues++
      else if (op.output !== undefined) dequeues.push({ key: canonical(op.output), call: op.call, ret: op.ret as number })
    }
  }
  // Rank dequeued values by when their dequeue returned. A value dequeued twice makes
  // the history non-linearizable anyway; leave that to the plain model's evidence.
  dequeues.sort((a, b) => a.ret - b.ret)
  const rankOf = new Map<string, number>()
  for (const [rank, d] of dequeues.entries()) {
    if (rankOf.has(d.key)) return base
    rankOf.set(d.key, rank)
  }
  // needBefore(a) = number of dequeues that returned before a's dequeue was called:
  // ranks 0 .. needBefore(a) - 1 must all be enqueued before a is.
  const rets = dequeues.map((d) => d.ret)
  const needBefore = new Map<string, number>()
  for (const d of dequeues) needBefore.set(d.key, countBelow(rets, d.call))
  const total = dequeues.length

  return {
    ...base,
    step(state, input, output) {
      if (input.kind !== 'enqueue') return base.step(state, input, output)
      const key = canonical(input.value)
      const rank = rankOf.get(key)
      if (rank === undefined) {
        // Never dequeued: with no pending dequeue to remove it, it must queue up
        // behind every value that is dequeued.
        if (pendingDequeues === 0 && state.frontier < total) return reject(state)
        return base.step(state, input, output)
      }
      if (state.frontier < (needBefore.get(key) ?? 0)) return reject(state)
      const result = base.step(state, input, output)
      return accept({ ...result.state, ...advance(state.frontier, state.ahead, rank) })
    },
  }
}

/** Mark `rank` done: extend the frontier through `ahead`, or park it in `ahead`. */
function advance(frontier: number, ahead: readonly number[], rank: number): { frontier: number; ahead: readonly number[] } {
  if (rank !== frontier) {
    const parked = [...ahead, rank].sort((a, b) => a - b)
    return { frontier, ahead: parked }
  }
  let next = frontier + 1
  let i = 0
  while (i < ahead.length && ahead[i] === next) {
    next++
    i++
  }
  return { frontier: next, ahead: i === 0 ? ahead : ahead.slice(i) }
}

/** How many of the ascending `sorted` are < `limit`. */
function countBelow(sorted: readonly number[], limit: number): number {
  let lo = 0
  let hi = sorted.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if ((sorted[mid] as number) < limit) lo = mid + 1
    else hi = mid
  }
  return lo
}
