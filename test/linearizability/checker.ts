/**
 * Linearizability checker for recorded histories of concurrent operations.
 *
 * WHAT IT PROVES. Given a history — for every operation its client, input, output and
 * the interval [call, ret] in which the client waited for it — `checkLinearizable`
 * decides whether there is a total order of the operations that (1) respects real
 * time: if a returned before b was called, a comes before b; and (2) is a legal
 * sequential execution of the model: replaying the inputs in that order from
 * `model.init()` produces exactly the recorded outputs (Herlihy & Wing 1990).
 * `ok: true` is a proof that such an order exists; `ok: false` is a proof that none
 * does (the search is exhaustive), with the longest order found for a prefix of the
 * history as evidence. Timestamps must come from one monotonic clock (or a logical
 * counter); equal timestamps are treated as concurrent, the conservative reading.
 *
 * OPERATIONS THAT NEVER RETURNED (a crashed client, a timeout, an ambiguous network
 * error) have `ret` omitted or `+Infinity`. Such an operation may have taken effect at
 * any point after its call, or not at all: the model sees its output as `UNKNOWN` and
 * must accept any output; the search is allowed, but not required, to linearize it.
 * A pending operation the model calls read-only (`isReadOnly`) cannot be observed by
 * anyone, so it is dropped before the search.
 *
 * ALGORITHM. Wing & Gong (1993) with Lowe's (2017) memoization, as in Porcupine
 * (Athalye, github.com/anishathalye/porcupine): call and return events, sorted by time
 * (calls before returns on ties), sit in a doubly linked list. The search walks the
 * list from its head: at a call, it tries to linearize that operation now (model step
 * with the recorded output); on success it lifts the call and its return out of the
 * list, pushes (operation, previous state) on a stack and restarts from the head; at a
 * return, the operation that returns there was not linearized before its return, so
 * the search backtracks: pop, restore the state, splice the events back, and try the
 * next call after the popped one. A (set of linearized operations, model state) pair
 * that was already explored is never explored again: the set is a bitset keyed by an
 * incremental Zobrist hash, the state by `model.hash` (and `model.equals` if given).
 * The history succeeds once the first remaining return belongs to a pending operation
 * (every completed operation is linearized) or the list is empty.
 *
 * Two further cuts, both exact (they skip only configurations with no linearization):
 * - Greedy reads. A read-only operation (`model.isReadOnly`) that can be linearized at
 *   the current point is linearized there without branching: any linearization that
 *   places it later still works with it moved here (it changes no state, and nothing
 *   unlinearized has to precede it). So when the configuration after the read is dead,
 *   so is the one before it, and the search backtracks past both. This is what keeps
 *   many concurrent reads from multiplying the linearized sets to explore.
 * - History-aware models (`model.forHistory`). A model may read the whole history
 *   first and refuse steps that real time already rules out; the register and queue
 *   models do when written values are unique (see models.ts). Refusals move the
 *   search's deepest point, so when such a search fails, the plain model is searched
 *   again (bounded) for evidence that points at the real anomaly.
 *
 * P-COMPOSITIONALITY. A model may split the history with `partition` (e.g. a map by
 * key); a history is linearizable iff every partition is (Herlihy & Wing's locality),
 * and each partition is searched on its own, which is exponentially cheaper.
 *
 * COMPLEXITY. Deciding linearizability is NP-complete (Gibbons & Korach 1997). With
 * memoization the work is bounded by the number of distinct (linearized set, state)
 * pairs reachable: for a history whose concurrency (operations overlapping any instant)
 * is at most c, the linearized sets that respect real time number about n·2^c, so a
 * history of n operations costs roughly O(n · 2^c · |states at a point| · c) model
 * steps, each with a hash of the state and of an n-bit set (O(n/32) words on a memo
 * hit). For 5 clients (c ≤ 5) this is linear in n in practice. Measured on a shared,
 * loaded 2-core machine: 2,000 register ops in ~10–20 ms, 10,000 in ~0.3–0.5 s; 2,000
 * queue ops with unique values in ~30 ms; a register with 10–12 clients at 50% writes
 * takes 0.3–1.3 s per 2,000 ops, 15 clients 4–9 s, 20 clients exceed the default
 * budget. Every pending operation that
 * mutates can double the work (linearized or not is then part of the explored
 * state), so a history with many timed-out writes gets slower: that is what the
 * budget is for. Queue histories with repeated values get no pruning and blow up
 * beyond a few hundred operations under contention: enqueue unique values.
 *
 * BUDGET. `{ timeoutMs, maxSteps, maxMemoBytes }` (defaults: 10 s, unlimited steps,
 * 256 MiB of estimated memo per partition). One step is one visit of a list event.
 * Time and steps are shared by all partitions; when they run out the answer is
 * `{ ok: 'unknown' }` — never a hang, never a guess. A partition that fails is
 * reported at once, even if others were not checked yet. (The model's own code is
 * not interrupted: `step` and `hash` must be cheap.)
 */

import { performance } from 'node:perf_hooks'

/** The output an operation that never returned is stepped with. */
export const UNKNOWN: unique symbol = Symbol('linearizability.unknown-output')
export type UnknownOutput = typeof UNKNOWN
/** A recorded output, or `UNKNOWN` for an operation that never returned. */
export type Observed<O> = O | UnknownOutput

export type ClientId = string | number

/** One operation of a recorded history. */
export interface Operation<I, O> {
  readonly clientId: ClientId
  readonly input: I
  /** What the operation returned; ignored when the operation is pending. */
  readonly output?: O
  /** When the client invoked the operation (monotonic clock or logical counter). */
  readonly call: number
  /** When the client got the answer; omitted or `Infinity` if it never did (pending). */
  readonly ret?: number
}

export interface StepResult<S> {
  /** Whether `input` may produce `output` from the given state. */
  readonly ok: boolean
  /** The state after the operation (ignored when `ok` is false). */
  readonly state: S
}

/**
 * A sequential specification. Every method must be pure and deterministic; states are
 * never mutated by the checker and must not be mutated by `step` either (the checker
 * keeps old states to backtrack to).
 */
export interface Model<S, I, O> {
  init(): S
  /** With `output === UNKNOWN` the step must accept any output (a pending operation). */
  step(state: S, input: I, output: Observed<O>): StepResult<S>
  /**
   * A string key for the state. Without `equals`, two states with the same hash are
   * taken to be equal, so the hash must be injective (e.g. a canonical encoding).
   * With `equals`, the hash need only agree with it (equal states, equal hashes).
   */
  hash(state: S): string
  equals?(a: S, b: S): boolean
  describe(input: I, output: Observed<O>): string
  describeState?(state: S): string
  /** An operation that cannot change the state (a read); lets pending reads be dropped. */
  isReadOnly?(input: I): boolean
  /**
   * Split the history into independent sub-histories (P-compositionality), e.g. a map
   * by key. Every operation must land in exactly one part, and the model must be a
   * product of independent models, one per part.
   */
  partition?(history: readonly Operation<I, O>[]): readonly (readonly Operation<I, O>[])[]
  /**
   * A version of this model for one history (one partition), called before its search.
   * It may use facts of the whole history to refuse steps early (the queue learns the
   * order of dequeues), but must refuse only steps that cannot be part of any
   * linearization of that history: the verdict must not change, only the search time.
   * Any extra state it keeps must be a function of the set of linearized operations
   * (or be hashed).
   */
  forHistory?(history: readonly Operation<I, O>[]): Model<S, I, O>
}

export interface Budget {
  /** Wall-clock limit for the whole check. Default 10,000 ms. */
  readonly timeoutMs?: number
  /** Limit on search steps (list events visited), all partitions together. Default ∞. */
  readonly maxSteps?: number
  /** Limit on the estimated size of the memo table. Default 256 MiB. */
  readonly maxMemoBytes?: number
}

export interface CheckStats {
  readonly steps: number
  readonly elapsedMs: number
  readonly partitions: number
}

export type CheckResult<I, O> =
  | ({ readonly ok: true } & CheckStats)
  | ({
      readonly ok: false
      readonly reason: string
      /** The longest linearizable prefix the search found, in linearization order. */
      readonly partial: readonly Operation<I, O>[]
      /** The operation whose return the search could not get past at its deepest point. */
      readonly culprit: Operation<I, O>
      /** Index of the failing partition in `model.partition(history)` (0 if none). */
      readonly partition: number
    } & CheckStats)
  | ({ readonly ok: 'unknown'; readonly reason: string } & CheckStats)

export const DEFAULT_TIMEOUT_MS = 10_000
export const DEFAULT_MAX_MEMO_BYTES = 256 * 1024 * 1024

export function isPending(op: Operation<unknown, unknown>): boolean {
  return op.ret === undefined || op.ret === Infinity
}

/** Group operations by a key (helper for `Model.partition`); order within a part is kept. */
export function partitionBy<I, O>(
  history: readonly Operation<I, O>[],
  keyOf: (op: Operation<I, O>) => string,
): Operation<I, O>[][] {
  const parts = new Map<string, Operation<I, O>[]>()
  for (const op of history) {
    const key = keyOf(op)
    let part = parts.get(key)
    if (part === undefined) {
      part = []
      parts.set(key, part)
    }
    part.push(op)
  }
  return [...parts.values()]
}

/** Decide whether `history` is linearizable with respect to `model`. See the file header. */
export function checkLinearizable<S, I, O>(
  model: Model<S, I, O>,
  history: readonly Operation<I, O>[],
  budget: Budget = {},
): CheckResult<I, O> {
  history.forEach(validateOperation)
  const started = performance.now()
  const shared: SearchBudget = {
    deadline: started + (budget.timeoutMs ?? DEFAULT_TIMEOUT_MS),
    stepsLeft: budget.maxSteps ?? Infinity,
    memoBytesMax: budget.maxMemoBytes ?? DEFAULT_MAX_MEMO_BYTES,
    steps: 0,
  }
  const parts = model.partition ? model.partition(history) : [history]
  const partitions = parts.length
  if (model.partition) {
    const total = parts.reduce((sum, part) => sum + part.length, 0)
    if (total !== history.length) {
      throw new Error(`model.partition returned ${total} operations for a history of ${history.length}`)
    }
  }
  const stats = (): CheckStats => ({ steps: shared.steps, elapsedMs: performance.now() - started, partitions })

  let unknownReason: string | null = null
  for (const [index, part] of parts.entries()) {
    const result = checkPartition(model, part, shared)
    if (result.kind === 'ok') continue
    if (result.kind === 'unknown') {
      // Keep going only to look for a definite failure elsewhere; the budget is shared,
      // so a later partition runs out at once unless the limit was the memo size.
      unknownReason = `partition ${index} of ${partitions}: ${result.reason}`
      continue
    }
    const where = partitions > 1 ? `partition ${index} of ${partitions}: ` : ''
    return {
      ok: false,
      reason: where + result.reason,
      partial: result.partial,
      culprit: result.culprit,
      partition: index,
      ...stats(),
    }
  }
  if (unknownReason !== null) return { ok: 'unknown', reason: unknownReason, ...stats() }
  return { ok: true, ...stats() }
}

/** Like `checkLinearizable`, but throws a readable error unless the history is linearizable. */
export function assertLinearizable<S, I, O>(
  model: Model<S, I, O>,
  history: readonly Operation<I, O>[],
  budget?: Budget,
): CheckStats {
  const result = checkLinearizable(model, history, budget)
  if (result.ok === true) return result
  if (result.ok === 'unknown') {
    throw new Error(`linearizability unknown (budget exhausted after ${result.steps} steps): ${result.reason}`)
  }
  const tail = result.partial.slice(-10).map((op) => `  ${describeOperation(model, op)}`)
  throw new Error(
    `history is not linearizable: ${result.reason}\n` +
      `last ${tail.length} of ${result.partial.length} operations of the longest linearizable prefix:\n${tail.join('\n')}`,
  )
}

export function describeOperation<S, I, O>(model: Model<S, I, O>, op: Operation<I, O>): string {
  const pending = isPending(op)
  const output: Observed<O> = pending ? UNKNOWN : (op.output as O)
  const ret = pending ? '∞' : String(op.ret)
  return `${model.describe(op.input, output)} by client ${String(op.clientId)} [${String(op.call)}, ${ret}]`
}

// ——— internals ———

interface SearchBudget {
  readonly deadline: number
  stepsLeft: number
  readonly memoBytesMax: number
  steps: number
}

type PartitionResult<I, O> =
  | { readonly kind: 'ok' }
  | { readonly kind: 'unknown'; readonly reason: string }
  | {
      readonly kind: 'fail'
      readonly reason: string
      readonly partial: readonly Operation<I, O>[]
      readonly culprit: Operation<I, O>
    }

interface MemoEntry<S> {
  readonly bits: Uint32Array
  readonly state: S
}

const CLOCK_CHECK_INTERVAL_STEPS = 1024
const CANDIDATES_REPORTED_MAX = 6
// The evidence search after a failure found with `forHistory` (~1 s at most).
const EVIDENCE_STEPS_MAX = 1_000_000
// Rough per-entry overhead of a memo entry (objects, array slot, map slot), in bytes.
const MEMO_ENTRY_OVERHEAD_BYTES = 160

function validateOperation(op: Operation<unknown, unknown>, index: number): void {
  if (typeof op.call !== 'number' || !Number.isFinite(op.call)) {
    throw new Error(`history[${index}]: call must be a finite number, got ${String(op.call)}`)
  }
  if (op.ret !== undefined && (typeof op.ret !== 'number' || Number.isNaN(op.ret) || op.ret < op.call)) {
    throw new Error(`history[${index}]: ret must be a number ≥ call (${op.call}), got ${String(op.ret)}`)
  }
}

function checkPartition<S, I, O>(
  model: Model<S, I, O>,
  allOps: readonly Operation<I, O>[],
  budget: SearchBudget,
): PartitionResult<I, O> {
  // A pending read cannot be observed: drop it (it could always be linearized last).
  const ops = allOps.filter((op) => !(isPending(op) && model.isReadOnly?.(op.input) === true))
  if (ops.length === 0) return { kind: 'ok' }
  if (model.forHistory === undefined) return search(model, ops, budget)
  const verdict = search(model.forHistory(ops), ops, budget)
  if (verdict.kind !== 'fail') return verdict
  // The specialised model refuses steps early, so its deepest point can sit far from
  // the real anomaly (e.g. before the write that a stale read contradicts). The verdict
  // stands; for evidence, search again with the plain model on a bounded budget.
  const evidenceBudget: SearchBudget = {
    deadline: budget.deadline,
    stepsLeft: Math.min(budget.stepsLeft, EVIDENCE_STEPS_MAX),
    memoBytesMax: budget.memoBytesMax,
    steps: 0,
  }
  const evidence = search(model, ops, evidenceBudget)
  budget.steps += evidenceBudget.steps
  budget.stepsLeft -= evidenceBudget.steps
  if (evidence.kind === 'ok') {
    throw new Error('model.forHistory refused a step that a linearization needs: its pruning is unsound')
  }
  return evidence.kind === 'fail' ? evidence : verdict
}

function search<S, I, O>(model: Model<S, I, O>, ops: readonly Operation<I, O>[], budget: SearchBudget): PartitionResult<I, O> {
  // The clock is read every CLOCK_CHECK_INTERVAL_STEPS steps within a search; read it
  // here too, so that thousands of small partitions cannot overrun the deadline.
  if (performance.now() > budget.deadline) {
    return { kind: 'unknown', reason: `time budget exhausted after ${budget.steps} steps` }
  }
  const n = ops.length

  const inputs = ops.map((op) => op.input)
  const outputs: Observed<O>[] = ops.map((op) => (isPending(op) ? UNKNOWN : (op.output as O)))
  const pending = ops.map(isPending)
  const readOnly = ops.map((op) => model.isReadOnly?.(op.input) === true)
  const retTime = ops.map((op) => op.ret ?? Infinity)

  // Events: e < n is the call of op e, e ≥ n the return of op e - n. Sorted by time,
  // calls before returns on ties (equal timestamps are read as overlapping), then by
  // index so the order is deterministic.
  const events = Array.from({ length: 2 * n }, (_, e) => e)
  const timeOf = (e: number): number => (e < n ? (ops[e] as Operation<I, O>).call : (retTime[e - n] as number))
  events.sort((a, b) => {
    const ta = timeOf(a)
    const tb = timeOf(b)
    if (ta < tb) return -1
    if (ta > tb) return 1
    const ka = a < n ? 0 : 1
    const kb = b < n ? 0 : 1
    return ka !== kb ? ka - kb : a - b
  })

  // The linked list over nodes 1..2n; node 0 is the head sentinel, -1 the end.
  const nodes = 2 * n + 1
  const next = new Int32Array(nodes)
  const prev = new Int32Array(nodes)
  const nodeOp = new Int32Array(nodes)
  const nodeIsCall = new Uint8Array(nodes)
  const callNode = new Int32Array(n)
  const retNode = new Int32Array(n)
  for (let k = 0; k < 2 * n; k++) {
    const e = events[k] as number
    const node = k + 1
    const isCall = e < n
    const op = isCall ? e : e - n
    nodeOp[node] = op
    nodeIsCall[node] = isCall ? 1 : 0
    if (isCall) callNode[op] = node
    else retNode[op] = node
  }
  for (let node = 0; node < nodes; node++) {
    next[node] = node + 1 < nodes ? node + 1 : -1
    prev[node] = node - 1
  }

  // Lift the call of `op` and its return out of the list. A call is never last (its
  // return follows it), so next[c] is a real node; a return may be last.
  const lift = (op: number): void => {
    const c = callNode[op] as number
    const r = retNode[op] as number
    next[prev[c] as number] = next[c] as number
    prev[next[c] as number] = prev[c] as number
    next[prev[r] as number] = next[r] as number
    const after = next[r] as number
    if (after !== -1) prev[after] = prev[r] as number
  }
  // Exact inverse of lift: splice the return back first, then the call.
  const unlift = (op: number): void => {
    const c = callNode[op] as number
    const r = retNode[op] as number
    next[prev[r] as number] = r
    const after = next[r] as number
    if (after !== -1) prev[after] = r
    next[prev[c] as number] = c
    prev[next[c] as number] = c
  }

  // The linearized set: a bitset plus a 64-bit Zobrist hash kept in step with it.
  const words = (n + 31) >>> 5
  const bits = new Uint32Array(words)
  const zobristA = new Int32Array(n)
  const zobristB = new Int32Array(n)
  const rng = mulberry32(0x9e3779b9)
  for (let i = 0; i < n; i++) {
    zobristA[i] = rng()
    zobristB[i] = rng()
  }
  let zA = 0
  let zB = 0
  const toggle = (op: number): void => {
    bits[op >>> 5] = ((bits[op >>> 5] as number) ^ (1 << (op & 31))) >>> 0
    zA ^= zobristA[op] as number
    zB ^= zobristB[op] as number
  }

  const memo = new Map<string, MemoEntry<S>[]>()
  let memoBytes = 0
  const memoBytesPerEntry = MEMO_ENTRY_OVERHEAD_BYTES + 4 * words
  const equals = model.equals?.bind(model)
  // Returns true if (bits, state) is new (and records it), false if already explored.
  const remember = (state: S): boolean => {
    const key = `${zA},${zB}|${model.hash(state)}`
    let bucket = memo.get(key)
    if (bucket !== undefined) {
      for (const entry of bucket) {
        if (sameBits(entry.bits, bits) && (equals === undefined || equals(entry.state, state))) return false
      }
    } else {
      bucket = []
      memo.set(key, bucket)
    }
    bucket.push({ bits: bits.slice(), state })
    memoBytes += memoBytesPerEntry + 2 * key.length
    return true
  }

  // The search stack: linearized operations in order, with the state before each.
  const stackOp: number[] = []
  const stackState: S[] = []
  let state = model.init()

  // Evidence for a failure: the deepest stack seen at a backtrack (copied lazily: only
  // entries at or above the lowest point the stack fell to since the last copy), the
  // return that blocked it, the state there and the calls that were candidates.
  const best: number[] = []
  let lowWater = 0
  let blockedOp = -1
  let blockedState = state
  let blockedCandidates: number[] = []

  // Pop the stack to the last configuration that may still have an untried candidate,
  // and return the node to resume the scan at (-2: the stack ran out, no linearization).
  // A read-only operation placed greedily (see below) proves its parent configuration
  // dead, so popping it pops its parent too.
  const backtrack = (): number => {
    for (;;) {
      const top = stackOp.pop()
      if (top === undefined) return -2
      state = stackState.pop() as S
      if (stackOp.length < lowWater) lowWater = stackOp.length
      toggle(top)
      unlift(top)
      if (readOnly[top] !== true) return next[callNode[top] as number] as number
    }
  }
  const recordFrontier = (returnNode: number, op: number): void => {
    if (stackOp.length <= best.length && blockedOp !== -1) return
    for (let i = lowWater; i < stackOp.length; i++) best[i] = stackOp[i] as number
    lowWater = stackOp.length
    blockedOp = op
    blockedState = state
    blockedCandidates = []
    for (let c = next[0] as number; c !== returnNode && c !== -1; c = next[c] as number) {
      if (blockedCandidates.length === CANDIDATES_REPORTED_MAX) break
      blockedCandidates.push(nodeOp[c] as number)
    }
  }

  let node = next[0] as number
  let clockCountdown = CLOCK_CHECK_INTERVAL_STEPS
  while (node >= 0) {
    if (budget.stepsLeft <= 0) return { kind: 'unknown', reason: `step budget exhausted after ${budget.steps} steps` }
    budget.stepsLeft--
    budget.steps++
    if (--clockCountdown === 0) {
      clockCountdown = CLOCK_CHECK_INTERVAL_STEPS
      if (performance.now() > budget.deadline) {
        return { kind: 'unknown', reason: `time budget exhausted after ${budget.steps} steps` }
      }
      if (memoBytes > budget.memoBytesMax) {
        return { kind: 'unknown', reason: `memo budget exhausted (${memo.size} keys, ~${memoBytes} bytes)` }
      }
    }

    const op = nodeOp[node] as number
    if (nodeIsCall[node] === 1) {
      const result = model.step(state, inputs[op] as I, outputs[op] as Observed<O>)
      if (result.ok) {
        toggle(op)
        if (remember(result.state)) {
          stackOp.push(op)
          stackState.push(state)
          state = result.state
          lift(op)
          node = next[0] as number
          continue
        }
        toggle(op)
        // A read that can be placed now is placed now: any linearization from here
        // that places it later still works with it moved here (it changes no state,
        // and nothing unlinearized must precede it, or that one's return would come
        // before this call in the list). So if placing it leads to an explored (dead)
        // configuration, this configuration is dead too.
        if (readOnly[op] === true) {
          node = backtrack()
          continue
        }
      }
      node = next[node] as number
      continue
    }

    // A return: every call before it was tried. If it is a pending operation's, all
    // completed operations are linearized (pending returns sort last): success.
    if (pending[op] === true) return { kind: 'ok' }
    recordFrontier(node, op)
    node = backtrack()
  }
  if (node === -1) return { kind: 'ok' }

  const opAt = (i: number): Operation<I, O> => ops[i] as Operation<I, O>
  const culprit = opAt(blockedOp)
  const candidates = blockedCandidates.map((i) => describeOperation(model, opAt(i)))
  const stateText = model.describeState ? model.describeState(blockedState) : model.hash(blockedState)
  const reason =
    `no linearization: the longest linearizable prefix has ${best.length} of ${n} operations; ` +
    `after it (state ${stateText}) nothing can be linearized before ` +
    `${describeOperation(model, culprit)} returns` +
    (candidates.length > 0 ? `; candidates were: ${candidates.join('; ')}` : '')
  return { kind: 'fail', reason, partial: best.map(opAt), culprit }
}

function sameBits(a: Uint32Array, b: Uint32Array): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

// A small seeded 32-bit generator for the Zobrist keys (deterministic across runs).
function mulberry32(seed: number): () => number {
  let s = seed | 0
  return () => {
    s = (s + 0x6d2b79f5) | 0
    let t = Math.imul(s ^ (s >>> 15), 1 | s)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return t ^ (t >>> 14)
  }
}
