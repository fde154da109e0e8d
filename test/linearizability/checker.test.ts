import fc from 'fast-check'
import { performance } from 'node:perf_hooks'
import { describe, expect, it } from 'vitest'
import { canonical, canonicalEquals } from './canonical.ts'
import { UNKNOWN, assertLinearizable, checkLinearizable } from './checker.ts'
import type { CheckResult, Model, Observed, Operation } from './checker.ts'
import { HistoryRecorder } from './history.ts'
import { counterModel, deterministicModel, mapModel, queueModel, registerModel } from './models.ts'
import type {
  CounterInput,
  CounterOutput,
  MapInput,
  MapOutput,
  MapState,
  QueueInput,
  QueueOutput,
  QueueState,
  RegisterInput,
  RegisterOutput,
  RegisterState,
} from './models.ts'

type RegOp = Operation<RegisterInput<number>, RegisterOutput<number>>
type CounterOp = Operation<CounterInput, CounterOutput>
type MapOp = Operation<MapInput<string, number>, MapOutput<number>>
type QueueOp = Operation<QueueInput<number>, QueueOutput<number>>

// Terse constructors: [call, ret]; ret omitted = never returned.
const op = <I, O>(clientId: number, input: I, output: O, call: number, ret?: number): Operation<I, O> =>
  ret === undefined ? { clientId, input, call } : { clientId, input, output, call, ret }

const reg = {
  get: (c: number, value: number, call: number, ret?: number): RegOp => op(c, { kind: 'get' }, value, call, ret),
  set: (c: number, value: number, call: number, ret?: number): RegOp => op(c, { kind: 'set', value }, undefined, call, ret),
  cas: (c: number, expected: number, value: number, swapped: boolean, call: number, ret?: number): RegOp =>
    op(c, { kind: 'compareAndSet', expected, value }, swapped, call, ret),
}
const q = {
  enq: (c: number, value: number, call: number, ret?: number): QueueOp => op(c, { kind: 'enqueue', value }, undefined, call, ret),
  deq: (c: number, value: number | undefined, call: number, ret?: number): QueueOp => op(c, { kind: 'dequeue' }, value, call, ret),
  peek: (c: number, value: number | undefined, call: number, ret?: number): QueueOp => op(c, { kind: 'peek' }, value, call, ret),
  size: (c: number, n: number, call: number, ret?: number): QueueOp => op(c, { kind: 'size' }, n, call, ret),
}
const m = {
  get: (c: number, key: string, value: number | undefined, call: number, ret?: number): MapOp =>
    op(c, { kind: 'get', key }, value, call, ret),
  set: (c: number, key: string, value: number, call: number, ret?: number): MapOp =>
    op(c, { kind: 'set', key, value }, undefined, call, ret),
  del: (c: number, key: string, existed: boolean | undefined, call: number, ret?: number): MapOp =>
    op(c, { kind: 'delete', key }, existed, call, ret),
}

const register = registerModel(0)
const counter = counterModel()
const map = mapModel<string, number>()
const queue = queueModel<number>()

function expectFail<I, O>(result: CheckResult<I, O>): Extract<CheckResult<I, O>, { ok: false }> {
  if (result.ok !== false) throw new Error(`expected a violation, got ${JSON.stringify(result)}`)
  return result
}

/** The evidence must itself be a linearization: legal for the model, in real-time order. */
function replays<S, I, O>(model: Model<S, I, O>, ops: readonly Operation<I, O>[]): boolean {
  for (const [i, later] of ops.entries()) {
    if (ops.slice(0, i).some((earlier) => later.ret !== undefined && later.ret < earlier.call)) return false
  }
  let state = model.init()
  for (const o of ops) {
    const output: Observed<O> = o.ret === undefined || o.ret === Infinity ? UNKNOWN : (o.output as O)
    const r = model.step(state, o.input, output)
    if (!r.ok) return false
    state = r.state
  }
  return true
}

describe('register', () => {
  it('a sequential history is linearizable', () => {
    const h = [reg.set(1, 1, 0, 1), reg.get(2, 1, 2, 3), reg.set(2, 2, 4, 5), reg.get(1, 2, 6, 7)]
    expect(checkLinearizable(register, h).ok).toBe(true)
  })

  it('overlapping writes: a later read may see either value, but later reads must agree', () => {
    const writes = [reg.set(1, 1, 0, 10), reg.set(2, 2, 1, 9)]
    expect(checkLinearizable(register, [...writes, reg.get(3, 1, 11, 12)]).ok).toBe(true)
    expect(checkLinearizable(register, [...writes, reg.get(3, 2, 11, 12)]).ok).toBe(true)
    // Once 2 was read after both writes ended, the order is fixed: nobody reads 1 again.
    expect(checkLinearizable(register, [...writes, reg.get(3, 2, 11, 12), reg.get(4, 1, 13, 14)]).ok).toBe(false)
  })

  it('reads concurrent with a write may see the old or the new value', () => {
    const h = [reg.set(1, 1, 0, 100), reg.get(2, 0, 10, 20), reg.get(3, 1, 30, 40), reg.get(2, 1, 50, 60)]
    expect(checkLinearizable(register, h).ok).toBe(true)
  })

  it('rejects a stale read: a read that starts after a write completed returns the older value', () => {
    const stale = reg.get(2, 1, 20, 21)
    const h = [reg.set(1, 1, 0, 1), reg.set(1, 2, 10, 11), stale]
    const result = expectFail(checkLinearizable(register, h))
    expect(result.culprit).toBe(stale)
    expect(result.partial).toHaveLength(2)
    expect(replays(register, result.partial)).toBe(true)
    expect(result.reason).toContain('get() → 1 by client 2 [20, 21]')
  })

  it('rejects non-monotonic reads during a write (new value seen, then the old one)', () => {
    const h = [reg.set(1, 1, 0, 100), reg.get(2, 1, 10, 20), reg.get(3, 0, 30, 40)]
    expect(checkLinearizable(register, h).ok).toBe(false)
  })

  it('rejects a read of a value nobody wrote', () => {
    expect(checkLinearizable(register, [reg.set(1, 1, 0, 10), reg.get(2, 7, 5, 15)]).ok).toBe(false)
  })

  it('compareAndSet: only one of two racing swaps from the same value may win', () => {
    const race = [reg.cas(1, 0, 1, true, 0, 10), reg.cas(2, 0, 2, false, 0, 10)]
    expect(checkLinearizable(register, [...race, reg.get(3, 1, 20, 21)]).ok).toBe(true)
    expect(checkLinearizable(register, [...race, reg.get(3, 2, 20, 21)]).ok).toBe(false)
    const bothWin = [reg.cas(1, 0, 1, true, 0, 10), reg.cas(2, 0, 2, true, 0, 10)]
    expect(checkLinearizable(register, bothWin).ok).toBe(false)
  })

  it('treats equal timestamps as concurrent (the conservative reading)', () => {
    // The read is called at the very instant the write returns: either order is possible.
    expect(checkLinearizable(register, [reg.set(1, 1, 0, 5), reg.get(2, 0, 5, 6)]).ok).toBe(true)
    expect(checkLinearizable(register, [reg.set(1, 1, 0, 5), reg.get(2, 0, 6, 7)]).ok).toBe(false)
  })

  it('history-aware pruning: ties count as concurrent, and it stands down for compareAndSet', () => {
    // set(2) returns at the instant the read of 1 is called: set(1), get → 1, set(2).
    const tie = [reg.set(1, 1, 0, 1), reg.set(2, 2, 0, 5), reg.get(3, 1, 5, 6), reg.get(3, 2, 7, 8)]
    expect(checkLinearizable(register, tie).ok).toBe(true)
    // A swap may write an old value again, so a read of 5 need not follow set(5) last.
    const swapBack = [reg.set(1, 5, 0, 1), reg.set(1, 6, 2, 3), reg.cas(1, 6, 5, true, 4, 5), reg.get(2, 5, 6, 7)]
    expect(checkLinearizable(register, swapBack).ok).toBe(true)
  })

  it('compares values structurally (outputs come back through msgpack)', () => {
    const objects = registerModel<{ a: number[] } | null>(null)
    const h = [
      op(1, { kind: 'set' as const, value: { a: [1, 2] } }, undefined, 0, 1),
      op(2, { kind: 'get' as const }, { a: [1, 2] }, 2, 3),
    ]
    expect(checkLinearizable(objects, h).ok).toBe(true)
  })

  it('uses model.equals when the hash is coarse', () => {
    const coarse: Model<RegisterState<number>, RegisterInput<number>, RegisterOutput<number>> = {
      ...register,
      forHistory: undefined,
      hash: () => 'same',
      equals: (a, b) => a.value === b.value,
    }
    const concurrent = [reg.set(1, 1, 0, 10), reg.set(2, 2, 0, 10), reg.set(3, 3, 0, 10)]
    expect(checkLinearizable(coarse, [...concurrent, reg.get(4, 2, 11, 12)]).ok).toBe(true)
    expect(checkLinearizable(coarse, [...concurrent, reg.get(4, 2, 11, 12), reg.get(4, 3, 13, 14)]).ok).toBe(false)
  })
})

describe('counter', () => {
  it('add (void) and addAndGet (returns the new value)', () => {
    const h: CounterOp[] = [
      op(1, { kind: 'add', delta: 5 }, undefined, 0, 10),
      op(2, { kind: 'addAndGet', delta: 1 }, 1, 0, 10), // ran before the add
      op(3, { kind: 'get' }, 6, 11, 12),
      op(1, { kind: 'addAndGet', delta: 2 }, 8, 13, 14),
    ]
    expect(checkLinearizable(counter, h).ok).toBe(true)
  })

  it('rejects two concurrent increments that return the same value', () => {
    const h: CounterOp[] = [
      op(1, { kind: 'addAndGet', delta: 1 }, 1, 0, 10),
      op(2, { kind: 'addAndGet', delta: 1 }, 1, 0, 10),
    ]
    expect(checkLinearizable(counter, h).ok).toBe(false)
  })

  it('rejects a read that misses an acknowledged add', () => {
    const h: CounterOp[] = [op(1, { kind: 'add', delta: 3 }, undefined, 0, 1), op(2, { kind: 'get' }, 0, 2, 3)]
    expect(checkLinearizable(counter, h).ok).toBe(false)
  })
})

describe('map (checked per key)', () => {
  it('independent keys interleave freely', () => {
    const h = [
      m.set(1, 'a', 1, 0, 10),
      m.set(2, 'b', 2, 0, 10),
      m.get(3, 'a', 1, 11, 12),
      m.get(3, 'b', 2, 13, 14),
      m.del(1, 'a', true, 15, 16),
      m.get(2, 'a', undefined, 17, 18),
      m.del(2, 'a', false, 19, 20),
      m.del(2, 'b', undefined, 19, 20),
      m.get(2, 'b', undefined, 21, 22),
    ]
    const result = checkLinearizable(map, h)
    expect(result).toMatchObject({ ok: true, partitions: 2 })
  })

  it('rejects a stale read on one key, and names it', () => {
    const h = [
      m.set(1, 'a', 1, 0, 1),
      m.set(1, 'b', 1, 0, 1),
      m.set(2, 'b', 2, 2, 3),
      m.get(3, 'a', 1, 4, 5),
      m.get(3, 'b', 1, 4, 5), // stale: set(b, 2) completed before this read began
    ]
    const result = expectFail(checkLinearizable(map, h))
    expect(result.culprit).toBe(h[4])
    expect(result.reason).toContain("get('b') → 1")
    expect(result.partial.every((o) => o.input.key === 'b')).toBe(true)
  })

  it('checks a boolean delete result, ignores a void one', () => {
    expect(checkLinearizable(map, [m.del(1, 'a', true, 0, 1)]).ok).toBe(false)
    expect(checkLinearizable(map, [m.del(1, 'a', undefined, 0, 1)]).ok).toBe(true)
    expect(checkLinearizable(map, [m.set(1, 'a', 1, 0, 1), m.del(1, 'a', true, 0, 1), m.del(2, 'a', true, 0, 1)]).ok).toBe(false)
  })

  it('rejects a read of a deleted key that still sees the value', () => {
    const h = [m.set(1, 'k', 1, 0, 1), m.del(1, 'k', undefined, 2, 3), m.get(2, 'k', 1, 4, 5)]
    expect(checkLinearizable(map, h).ok).toBe(false)
  })
})

describe('queue', () => {
  it('FIFO, with concurrent enqueues dequeued in either order', () => {
    const h = [
      q.enq(1, 1, 0, 10),
      q.enq(2, 2, 0, 10),
      q.size(3, 2, 11, 12),
      q.peek(3, 2, 13, 14),
      q.deq(1, 2, 15, 16),
      q.deq(2, 1, 17, 18),
      q.deq(1, undefined, 19, 20),
    ]
    expect(checkLinearizable(queue, h).ok).toBe(true)
  })

  it('rejects an order that violates FIFO', () => {
    const h = [q.enq(1, 1, 0, 1), q.enq(1, 2, 2, 3), q.deq(2, 2, 4, 5)]
    expect(checkLinearizable(queue, h).ok).toBe(false)
  })

  it('rejects two dequeues that return the same item', () => {
    const h = [q.enq(1, 1, 0, 1), q.enq(1, 2, 2, 3), q.deq(2, 1, 4, 10), q.deq(3, 1, 5, 9)]
    const result = expectFail(checkLinearizable(queue, h))
    expect(replays(queue, result.partial)).toBe(true)
  })

  it('rejects a lost item: acknowledged, never dequeued, later dequeues find the queue empty', () => {
    const h = [q.enq(1, 1, 0, 1), q.enq(2, 2, 0, 1), q.deq(3, 2, 2, 3), q.deq(3, undefined, 4, 5), q.deq(1, undefined, 6, 7)]
    const result = expectFail(checkLinearizable(queue, h))
    expect(result.reason).toContain('dequeue() → undefined')
  })

  it('an empty dequeue concurrent with the enqueue is fine', () => {
    expect(checkLinearizable(queue, [q.enq(1, 1, 0, 10), q.deq(2, undefined, 5, 6), q.deq(2, 1, 11, 12)]).ok).toBe(true)
  })
})

describe('operations that never returned', () => {
  it('a pending write may take effect late, and is visible to reads after that', () => {
    const h = [reg.set(1, 1, 0), reg.get(2, 0, 10, 11), reg.get(2, 1, 100, 101), reg.get(3, 1, 200, 201)]
    expect(checkLinearizable(register, h).ok).toBe(true)
  })

  it('a pending write may never take effect', () => {
    expect(checkLinearizable(register, [reg.set(1, 1, 0), reg.get(2, 0, 10, 11), reg.get(2, 0, 100, 101)]).ok).toBe(true)
  })

  it('but once seen, it cannot be undone', () => {
    expect(checkLinearizable(register, [reg.set(1, 1, 0), reg.get(2, 1, 10, 11), reg.get(2, 0, 100, 101)]).ok).toBe(false)
  })

  it('a pending write cannot take effect before its call', () => {
    expect(checkLinearizable(register, [reg.get(2, 1, 0, 1), reg.set(1, 1, 5)]).ok).toBe(false)
  })

  it('pending reads are ignored, whatever their recorded output', () => {
    const h: RegOp[] = [{ clientId: 1, input: { kind: 'get' }, output: 42, call: 0, ret: Infinity }, reg.get(2, 0, 1, 2)]
    expect(checkLinearizable(register, h).ok).toBe(true)
  })

  it('a pending dequeue explains an item missing from later dequeues', () => {
    const h = [q.enq(1, 1, 0, 1), q.deq(2, undefined, 2), q.deq(3, undefined, 10, 11)]
    expect(checkLinearizable(queue, h).ok).toBe(true)
    // ...but only one item.
    const two = [q.enq(1, 1, 0, 1), q.enq(1, 2, 2, 3), q.deq(2, undefined, 4), q.deq(3, undefined, 10, 11)]
    expect(checkLinearizable(queue, two).ok).toBe(false)
  })

  it('a pending compareAndSet may have swapped', () => {
    const h = [reg.cas(1, 0, 5, false, 0), reg.get(2, 5, 10, 11)]
    expect(checkLinearizable(register, h).ok).toBe(true)
    expect(checkLinearizable(register, [reg.set(3, 9, 0, 1), ...h]).ok).toBe(false)
  })

  it('a pending operation is optional: it need not be linearizable anywhere', () => {
    // An account whose withdraw is illegal (not merely failing) beyond the balance, so
    // even an unknown outcome cannot be placed while the balance is short.
    type AccountInput = { kind: 'deposit'; amount: number } | { kind: 'withdraw'; amount: number } | { kind: 'balance' }
    const account: Model<number, AccountInput, number | undefined> = {
      init: () => 0,
      step(state, input, output) {
        if (input.kind === 'deposit') return { ok: true, state: state + input.amount }
        if (input.kind === 'withdraw') return { ok: state >= input.amount, state: state - input.amount }
        return { ok: output === UNKNOWN || output === state, state }
      },
      hash: String,
      describe: (input) => input.kind,
    }
    const h: Operation<AccountInput, number | undefined>[] = [
      op(1, { kind: 'withdraw', amount: 10 }, undefined, 0), // never returned, never possible
      op(2, { kind: 'deposit', amount: 5 }, undefined, 1, 2),
      op(2, { kind: 'balance' }, 5, 3, 4),
    ]
    expect(checkLinearizable(account, h).ok).toBe(true)
    const completed = [{ ...h[0], ret: 10 } as Operation<AccountInput, number | undefined>, ...h.slice(1)]
    expect(checkLinearizable(account, completed).ok).toBe(false)
  })

  it('HistoryRecorder records answers, drops definite failures and keeps unknown outcomes pending', async () => {
    let tick = 0
    const recorder = new HistoryRecorder<RegisterInput<number>, RegisterOutput<number>>({ clock: () => tick++ })
    await recorder.run(1, { kind: 'set', value: 1 }, async () => undefined)
    await expect(
      recorder.run(1, { kind: 'set', value: 2 }, () => Promise.reject(new Error('bad_request')), () => true),
    ).rejects.toThrow('bad_request')
    await expect(recorder.run(2, { kind: 'set', value: 3 }, () => Promise.reject(new Error('timeout')))).rejects.toThrow()
    const inFlight = recorder.begin(3, { kind: 'get' })
    await recorder.run(2, { kind: 'get' }, async () => 3)
    const h = recorder.history()
    expect(h.map((o) => [o.clientId, o.call, o.ret])).toEqual([
      [1, 0, 1],
      [2, 3, undefined],
      [3, 4, undefined],
      [2, 5, 6],
    ])
    expect(checkLinearizable(register, h).ok).toBe(true)
    inFlight.ok(0) // stale: set(1) had returned before this get was called
    expect(() => inFlight.ok(0)).toThrow('resolved twice')
    expect(checkLinearizable(register, recorder.history()).ok).toBe(false)
  })

  it('the default recorder clock is monotonic', async () => {
    const recorder = new HistoryRecorder<CounterInput, CounterOutput>()
    const a = await recorder.run(1, { kind: 'addAndGet', delta: 1 }, async () => 1)
    expect(a).toBe(1)
    const [only] = recorder.history()
    expect(only?.ret).toBeGreaterThanOrEqual(only?.call ?? Infinity)
  })
})

describe('budget and input validation', () => {
  // n writes all concurrent, then a read of a value nobody wrote: the search must rule
  // out every subset of writes, about 2^n states.
  const hard = (n: number): RegOp[] => [
    ...Array.from({ length: n }, (_, i) => reg.set(i, i + 1, 0, 100)),
    ...Array.from({ length: n }, (_, i) => reg.get(n + i, i + 1, 10 + i, 101)),
    reg.get(99, -1, 200, 201),
  ]

  it('returns unknown when the step budget runs out', () => {
    const result = checkLinearizable(register, hard(20), { maxSteps: 10_000 })
    expect(result).toMatchObject({ ok: 'unknown', steps: 10_000 })
  })

  it('returns unknown when the time budget runs out, promptly', () => {
    const t0 = performance.now()
    const result = checkLinearizable(register, hard(22), { timeoutMs: 50 })
    expect(result.ok).toBe('unknown')
    expect(performance.now() - t0).toBeLessThan(1_000)
  })

  it('returns unknown when the memo budget runs out', () => {
    const result = checkLinearizable(register, hard(22), { maxMemoBytes: 1_000_000 })
    expect(result.ok).toBe('unknown')
    if (result.ok === 'unknown') expect(result.reason).toContain('memo')
  })

  it('a definite failure in one partition wins over an unknown one', () => {
    const h: MapOp[] = [
      ...Array.from({ length: 20 }, (_, i) => m.set(i, 'hard', i + 1, 0, 100)),
      ...Array.from({ length: 20 }, (_, i) => m.get(20 + i, 'hard', i + 1, 10 + i, 101)),
      m.get(99, 'hard', -1, 200, 201),
      m.set(1, 'easy', 1, 0, 1),
      m.get(1, 'easy', undefined, 2, 3),
    ]
    expect(checkLinearizable(map, h, { maxMemoBytes: 200_000 })).toMatchObject({ ok: false, partition: 1 })
  })

  it('rejects malformed histories loudly', () => {
    expect(() => checkLinearizable(register, [reg.get(1, 0, 5, 4)])).toThrow('ret must be')
    expect(() => checkLinearizable(register, [reg.get(1, 0, NaN, 4)])).toThrow('call must be')
    expect(checkLinearizable(register, []).ok).toBe(true)
  })

  it('assertLinearizable throws with the reason and the tail of the evidence', () => {
    expect(() => assertLinearizable(register, [reg.set(1, 1, 0, 1), reg.get(2, 0, 2, 3)])).toThrow(
      /not linearizable.*\n.*1 operations of the longest linearizable prefix:\n {2}set\(1\) by client 1 \[0, 1\]/,
    )
    expect(() => assertLinearizable(register, hard(20), { maxSteps: 100 })).toThrow('unknown')
    expect(assertLinearizable(register, [reg.set(1, 1, 0, 1)]).steps).toBeGreaterThan(0)
  })
})

describe('deterministicModel (for user-defined objects)', () => {
  type SetInput = { kind: 'add'; item: string } | { kind: 'has'; item: string }
  const growSet = deterministicModel<ReadonlySet<string>, SetInput, boolean>({
    init: () => new Set(),
    apply(state, input) {
      if (input.kind === 'has') return { state, output: state.has(input.item) }
      if (state.has(input.item)) return { state, output: false }
      return { state: new Set([...state, input.item]), output: true }
    },
    hash: (state) => canonical(state),
    isReadOnly: (input) => input.kind === 'has',
  })

  it('accepts legal histories and rejects two winners of the same add', () => {
    const add = (c: number, item: string, added: boolean, call: number, ret: number): Operation<SetInput, boolean> =>
      op(c, { kind: 'add', item }, added, call, ret)
    expect(checkLinearizable(growSet, [add(1, 'x', true, 0, 10), add(2, 'x', false, 0, 10)]).ok).toBe(true)
    expect(checkLinearizable(growSet, [add(1, 'x', true, 0, 10), add(2, 'x', true, 0, 10)]).ok).toBe(false)
  })
})

describe('canonical', () => {
  it('is structural and order-insensitive where the type is', () => {
    expect(canonical({ b: 1, a: [1, 'x'] })).toBe(canonical({ a: [1, 'x'], b: 1 }))
    expect(canonical(new Map([[1, 'a'], [2, 'b']]))).toBe(canonical(new Map([[2, 'b'], [1, 'a']])))
    expect(canonical(1)).not.toBe(canonical('1'))
    expect(canonical([1, 2])).not.toBe(canonical(['1,2']))
    expect(canonical(new Uint8Array([1, 2]))).toBe(canonical(Buffer.from([1, 2])))
    expect(canonicalEquals(NaN, NaN)).toBe(true)
    expect(canonicalEquals(0, -0)).toBe(true)
    expect(canonicalEquals(undefined, null)).toBe(false)
    expect(() => canonical(() => 1)).toThrow()
  })
})

// ——— property tests: histories from real sequential executions ———

/**
 * A scenario: a model, its inputs, an independent plain reference implementation, and
 * a way to corrupt a read into returning something that no execution could produce.
 */
interface Scenario<S, I, O> {
  readonly name: string
  readonly model: Model<S, I, O>
  readonly input: fc.Arbitrary<I>
  /** A fresh reference object: a function applying one input and returning its output. */
  reference(): (input: I) => O
  /** A corrupted output for a read, or null if `input` is not a read. */
  corrupt(input: I): O | null
}

const NEVER = 1_000_000_000
const smallValue = fc.integer({ min: 1, max: 5 })

interface PlannedOp<I> {
  readonly input: I
  readonly gap: number
  readonly before: number
  readonly after: number
  readonly pending: boolean
}

const plans = <I>(input: fc.Arbitrary<I>, opsMax = 40, slackMax = 30, gapMax = 10): fc.Arbitrary<PlannedOp<I>[]> =>
  fc.array(
    fc.record({
      input,
      gap: fc.integer({ min: 1, max: gapMax }),
      before: fc.integer({ min: 0, max: slackMax }),
      after: fc.integer({ min: 0, max: slackMax }),
      pending: fc.integer({ min: 0, max: 9 }).map((x) => x === 0),
    }),
    { minLength: 1, maxLength: opsMax },
  )

/**
 * Run the plan sequentially against the reference; operation i takes effect at time
 * t_i (increasing) and its interval [t_i - before, t_i + after] contains t_i, so the
 * history is linearizable by construction (the t_i order is a witness). About 10% of
 * the operations never return.
 */
function historyOf<S, I, O>(s: Scenario<S, I, O>, plan: readonly PlannedOp<I>[]): Operation<I, O>[] {
  const apply = s.reference()
  let t = 100
  return plan.map((p, i) => {
    t += p.gap
    const output = apply(p.input)
    const call = t - p.before
    return p.pending ? { clientId: i, input: p.input, call } : { clientId: i, input: p.input, output, call, ret: t + p.after }
  })
}

/**
 * The oracle: try every order that respects real time, no pruning, no greedy reads;
 * pending operations are optional. Only for tiny histories. Dead ends are remembered by
 * (operations placed, state) — the only memo, and an exact one: the same set placed in
 * the same state has the same futures. Without it a non-linearizable history of a dozen
 * concurrent operations (a coarse clock makes most of them concurrent) is an exhaustive
 * search of up to 12! orders, which once ran for over ten minutes in CI.
 */
function bruteForce<S, I, O>(model: Model<S, I, O>, history: readonly Operation<I, O>[]): boolean {
  const isPendingOp = history.map((o) => o.ret === undefined || o.ret === Infinity)
  const completed = isPendingOp.filter((p) => !p).length
  const done = history.map(() => false)
  const deadEnds = new Map<string, S[]>()
  const seen = (state: S): S[] | null => {
    const key = `${done.map((d) => (d ? 1 : 0)).join('')}|${model.hash(state)}`
    let states = deadEnds.get(key)
    if (states === undefined) deadEnds.set(key, (states = []))
    const equals = model.equals
    if (states.some((x) => (equals === undefined ? true : equals(x, state)))) return null
    return states
  }
  const search = (state: S, placed: number): boolean => {
    if (placed === completed) return true
    const states = seen(state)
    if (states === null) return false
    for (const [i, o] of history.entries()) {
      if (done[i]) continue
      const blocked = history.some((p, j) => !done[j] && j !== i && p.ret !== undefined && p.ret < o.call)
      if (blocked) continue
      const r = model.step(state, o.input, isPendingOp[i] ? UNKNOWN : (o.output as O))
      if (!r.ok) continue
      done[i] = true
      if (search(r.state, placed + (isPendingOp[i] ? 0 : 1))) return true
      done[i] = false
    }
    states.push(state)
    return false
  }
  return search(model.init(), 0)
}

const kindOf = (input: unknown): unknown =>
  typeof input === 'object' && input !== null && 'kind' in input ? input.kind : undefined

function propertyTests<S, I, O>(s: Scenario<S, I, O>): void {
  it(`${s.name}: agrees with a brute-force search on small perturbed histories`, () => {
    const plain: Model<S, I, O> = { ...s.model, forHistory: undefined }
    const verdicts = { ok: 0, fail: 0 }
    fc.assert(
      fc.property(
        // A coarse clock too, for many equal timestamps.
        fc.oneof(plans(s.input, 7, 12), plans(s.input, 7, 3, 2)),
        fc.array(fc.tuple(fc.nat(), fc.nat(), fc.boolean()), { minLength: 1, maxLength: 3 }),
        fc.option(fc.tuple(fc.nat(), fc.integer({ min: -40, max: 40 }))),
        (plan, perturbations, shift) => {
          const history = historyOf(s, plan)
          // Swap (or copy) the outputs of two completed operations of the same kind.
          for (const [a, b, swap] of perturbations) {
            const i = a % history.length
            const j = b % history.length
            const oi = history[i] as Operation<I, O>
            const oj = history[j] as Operation<I, O>
            if (oi.ret === undefined || oj.ret === undefined || kindOf(oi.input) !== kindOf(oj.input)) continue
            history[i] = { ...oi, output: oj.output }
            if (swap) history[j] = { ...oj, output: oi.output }
          }
          // Move one operation in time.
          if (shift !== null) {
            const i = shift[0] % history.length
            const o = history[i] as Operation<I, O>
            history[i] = { ...o, call: o.call + shift[1], ...(o.ret === undefined ? {} : { ret: o.ret + shift[1] }) }
          }
          const expected = bruteForce(plain, history)
          const got = checkLinearizable(s.model, history).ok
          if (expected) verdicts.ok++
          else verdicts.fail++
          expect(got).toBe(expected)
        },
      ),
      { numRuns: 500 },
    )
    console.log(`linearizability: ${s.name} vs brute force: ${verdicts.ok} linearizable, ${verdicts.fail} not`)
    // Both verdicts must occur often (≥ 2% of runs; ~6% is the rarest mean seen) for the
    // comparison to mean anything.
    expect(verdicts.ok).toBeGreaterThanOrEqual(10)
    expect(verdicts.fail).toBeGreaterThanOrEqual(10)
  })

  it(`${s.name}: always linearizable`, () => {
    fc.assert(
      fc.property(plans(s.input), (plan) => {
        expect(checkLinearizable(s.model, historyOf(s, plan)).ok).toBe(true)
      }),
      { numRuns: 150 },
    )
  })

  it(`${s.name}: one read corrupted to a value never written is rejected`, () => {
    fc.assert(
      fc.property(plans(s.input), fc.nat(), (plan, pick) => {
        const history = historyOf(s, plan)
        const reads = history.flatMap((o, i) => (o.ret !== undefined && s.corrupt(o.input) !== null ? [i] : []))
        fc.pre(reads.length > 0)
        const index = reads[pick % reads.length] as number
        const victim = history[index] as Operation<I, O>
        const bad = s.corrupt(victim.input)
        if (bad === null) throw new Error('unreachable: victims are reads')
        history[index] = { ...victim, output: bad }
        const result = checkLinearizable(s.model, history)
        expect(result.ok).toBe(false)
        if (result.ok === false) expect(replays(s.model, result.partial)).toBe(true)
      }),
      { numRuns: 150 },
    )
  })
}

describe('property: sequential executions with overlapping intervals', () => {
  propertyTests<RegisterState<number>, RegisterInput<number>, RegisterOutput<number>>({
    name: 'register',
    model: register,
    input: fc.oneof(
      fc.constant({ kind: 'get' as const }),
      smallValue.map((value) => ({ kind: 'set' as const, value })),
      fc.tuple(fc.integer({ min: 0, max: 5 }), smallValue).map(([expected, value]) => ({ kind: 'compareAndSet' as const, expected, value })),
    ),
    reference() {
      let value = 0
      return (input) => {
        if (input.kind === 'get') return value
        if (input.kind === 'set') {
          value = input.value
          return undefined
        }
        if (value !== input.expected) return false
        value = input.value
        return true
      }
    },
    corrupt: (input) => (input.kind === 'get' ? NEVER : null),
  })

  // Distinct written values switch on the register's history-aware pruning.
  propertyTests<RegisterState<number>, RegisterInput<number>, RegisterOutput<number>>({
    name: 'register with unique values',
    model: register,
    input: fc.oneof(
      { arbitrary: fc.constant({ kind: 'get' as const }), weight: 1 },
      { arbitrary: fc.integer({ min: 1, max: 100_000_000 }).map((value) => ({ kind: 'set' as const, value })), weight: 1 },
    ),
    reference() {
      let value = 0
      return (input) => {
        if (input.kind === 'get') return value
        if (input.kind === 'set') value = input.value
        return undefined
      }
    },
    corrupt: (input) => (input.kind === 'get' ? NEVER : null),
  })

  propertyTests<number, CounterInput, CounterOutput>({
    name: 'counter',
    model: counter,
    input: fc.oneof(
      fc.constant({ kind: 'get' as const }),
      smallValue.map((delta) => ({ kind: 'add' as const, delta })),
      smallValue.map((delta) => ({ kind: 'addAndGet' as const, delta })),
    ),
    reference() {
      let value = 0
      return (input) => {
        if (input.kind === 'get') return value
        value += input.delta
        return input.kind === 'addAndGet' ? value : undefined
      }
    },
    corrupt: (input) => (input.kind === 'get' ? NEVER : null),
  })

  propertyTests<MapState<number>, MapInput<string, number>, MapOutput<number>>({
    name: 'map',
    model: map,
    input: fc.constantFrom('a', 'b').chain((key) =>
      fc.oneof(
        fc.constant({ kind: 'get' as const, key }),
        fc.constant({ kind: 'has' as const, key }),
        smallValue.map((value) => ({ kind: 'set' as const, key, value })),
        fc.constant({ kind: 'delete' as const, key }),
      ),
    ),
    reference() {
      const state = new Map<string, number>()
      return (input) => {
        switch (input.kind) {
          case 'get':
            return state.get(input.key)
          case 'has':
            return state.has(input.key)
          case 'set':
            state.set(input.key, input.value)
            return undefined
          case 'delete':
            return state.delete(input.key)
        }
      }
    },
    corrupt: (input) => (input.kind === 'get' ? NEVER : null),
  })

  propertyTests<QueueState<number>, QueueInput<number>, QueueOutput<number>>({
    name: 'queue',
    model: queue,
    input: fc.oneof(
      { arbitrary: smallValue.map((value) => ({ kind: 'enqueue' as const, value })), weight: 3 },
      { arbitrary: fc.constant({ kind: 'dequeue' as const }), weight: 2 },
      { arbitrary: fc.constant({ kind: 'peek' as const }), weight: 1 },
      { arbitrary: fc.constant({ kind: 'size' as const }), weight: 1 },
    ),
    reference() {
      const items: number[] = []
      return (input) => {
        switch (input.kind) {
          case 'enqueue':
            items.push(input.value)
            return undefined
          case 'dequeue':
            return items.shift()
          case 'peek':
            return items[0]
          case 'size':
            return items.length
        }
      }
    },
    corrupt: (input) => (input.kind === 'dequeue' || input.kind === 'peek' ? NEVER : null),
  })

  // Unique values switch on the queue's history-aware pruning (small values above
  // repeat, which switches it off).
  propertyTests<QueueState<number>, QueueInput<number>, QueueOutput<number>>({
    name: 'queue with unique values',
    model: queue,
    input: fc.oneof(
      { arbitrary: fc.integer({ min: 1, max: 100_000_000 }).map((value) => ({ kind: 'enqueue' as const, value })), weight: 3 },
      { arbitrary: fc.constant({ kind: 'dequeue' as const }), weight: 3 },
      { arbitrary: fc.constant({ kind: 'peek' as const }), weight: 1 },
    ),
    reference() {
      const items: number[] = []
      return (input) => {
        if (input.kind === 'enqueue') {
          items.push(input.value)
          return undefined
        }
        if (input.kind === 'dequeue') return items.shift()
        return input.kind === 'peek' ? items[0] : items.length
      }
    },
    corrupt: (input) => (input.kind === 'dequeue' ? NEVER : null),
  })

  it('queue: the history-aware pruning never changes a verdict (against the plain search)', () => {
    const plain: Model<QueueState<number>, QueueInput<number>, QueueOutput<number>> = { ...queue, forHistory: undefined }
    const uniqueQueueOps = fc.array(fc.boolean(), { minLength: 1, maxLength: 14 }).map((kinds) => {
      let value = 0
      return kinds.map((enq): QueueInput<number> => (enq ? { kind: 'enqueue', value: ++value } : { kind: 'dequeue' }))
    })
    let verdicts = { ok: 0, fail: 0 }
    fc.assert(
      fc.property(
        uniqueQueueOps.chain((inputs) =>
          fc.tuple(
            fc.constant(inputs),
            fc.array(fc.record({ gap: fc.integer({ min: 1, max: 10 }), before: fc.nat(25), after: fc.nat(25), pending: fc.nat(7) }), {
              minLength: inputs.length,
              maxLength: inputs.length,
            }),
            // Perturbations: swap the outputs of two dequeues, or replace one by another value.
            fc.array(fc.tuple(fc.nat(), fc.nat(), fc.boolean()), { maxLength: 2 }),
          ),
        ),
        ([inputs, timing, perturbations]) => {
          const items: number[] = []
          let t = 0
          const history: QueueOp[] = inputs.map((input, i) => {
            const p = timing[i] as { gap: number; before: number; after: number; pending: number }
            t += p.gap
            const output = input.kind === 'enqueue' ? (items.push(input.value), undefined) : items.shift()
            return p.pending === 0 ? { clientId: i, input, call: t - p.before } : { clientId: i, input, output, call: t - p.before, ret: t + p.after }
          })
          const deqs = history.flatMap((o, i) => (o.input.kind === 'dequeue' && o.ret !== undefined ? [i] : []))
          for (const [a, b, swap] of perturbations) {
            if (deqs.length === 0) break
            const i = deqs[a % deqs.length] as number
            const j = deqs[b % deqs.length] as number
            const oi = history[i] as QueueOp
            const oj = history[j] as QueueOp
            if (swap) {
              history[i] = { ...oi, output: oj.output }
              history[j] = { ...oj, output: oi.output }
            } else {
              history[i] = { ...oi, output: b % 3 === 0 ? undefined : (b % inputs.length) + 1 }
            }
          }
          const pruned = checkLinearizable(queue, history).ok
          const exhaustive = checkLinearizable(plain, history).ok
          verdicts = pruned === true ? { ...verdicts, ok: verdicts.ok + 1 } : { ...verdicts, fail: verdicts.fail + 1 }
          expect(pruned).toBe(exhaustive)
        },
      ),
      { numRuns: 600 },
    )
    // Both verdicts must actually occur for the comparison to mean anything.
    expect(verdicts.ok).toBeGreaterThan(100)
    expect(verdicts.fail).toBeGreaterThan(100)
  })
})

// ——— performance ———

/**
 * `clients` clients, each running `perClient` register operations back to back, each
 * taking 1–100 time units with 0–20 units of think time, so up to `clients` operations
 * overlap. Every operation takes effect at a random instant inside its interval; the
 * outputs come from applying them in that order. Writes write unique values.
 */
function registerWorkload(clients: number, perClient: number, seed: number): RegOp[] {
  let s = seed >>> 0
  const rand = (n: number): number => {
    s = (Math.imul(s, 1_664_525) + 1_013_904_223) >>> 0
    return s % n
  }
  const planned: { clientId: number; write: boolean; call: number; ret: number; at: number }[] = []
  for (let c = 0; c < clients; c++) {
    let t = rand(50)
    for (let k = 0; k < perClient; k++) {
      const call = t
      const ret = call + 1 + rand(100)
      planned.push({ clientId: c, write: rand(2) === 0, call, ret, at: call + rand(ret - call + 1) })
      t = ret + rand(21)
    }
  }
  const byEffect = [...planned].sort((a, b) => a.at - b.at)
  let value = 0
  let nextValue = 1
  return byEffect.map((p) => {
    if (p.write) {
      value = nextValue++
      return reg.set(p.clientId, value, p.call, p.ret)
    }
    return reg.get(p.clientId, value, p.call, p.ret)
  })
}

describe('performance', () => {
  it('5 clients × 400 register operations check in well under a few seconds', () => {
    const history = registerWorkload(5, 400, 42)
    expect(history).toHaveLength(2000)
    const t0 = performance.now()
    const result = checkLinearizable(register, history)
    const elapsed = performance.now() - t0
    console.log(`linearizability: 2000-op register history, ok=${String(result.ok)}, ${result.steps} steps, ${elapsed.toFixed(1)} ms`)
    expect(result.ok).toBe(true)
    expect(elapsed).toBeLessThan(2_000)
  })

  it('the same history with one planted stale read fails just as fast', () => {
    const history = registerWorkload(5, 400, 7)
    // A read r, a write w' that returned before r was called, and an older write w that
    // returned before w' was called: w → w' → r in every legal order, so r reading w's
    // value is stale.
    const writes = history.filter((o) => o.input.kind === 'set')
    let planted = -1
    for (let i = history.length / 2; i < history.length && planted < 0; i++) {
      const r = history[i] as RegOp
      if (r.input.kind !== 'get') continue
      const newer = writes.find((w) => (w.ret as number) < r.call && writes.some((old) => (old.ret as number) < w.call))
      const older = newer && writes.find((old) => (old.ret as number) < newer.call)
      if (older === undefined || older.input.kind !== 'set') continue
      history[i] = { ...r, output: older.input.value }
      planted = i
    }
    expect(planted).toBeGreaterThan(0)
    const t0 = performance.now()
    const result = checkLinearizable(register, history)
    const elapsed = performance.now() - t0
    console.log(`linearizability: 2000-op register history with a stale read, ok=${String(result.ok)}, ${result.steps} steps, ${elapsed.toFixed(1)} ms`)
    expect(result.ok).toBe(false)
    if (result.ok === false) expect(result.culprit).toBe(history[planted])
    expect(elapsed).toBeLessThan(2_000)
  })

  it('a 2000-op map history over 20 keys, with pending writes', () => {
    const raw = registerWorkload(10, 200, 3)
    const history: MapOp[] = raw.map((o, i) => {
      const key = `k${i % 20}`
      const pending = i % 97 === 0 && o.input.kind === 'set'
      if (o.input.kind === 'set') return pending ? m.set(Number(o.clientId), key, o.input.value, o.call) : m.set(Number(o.clientId), key, o.input.value, o.call, o.ret)
      return m.get(Number(o.clientId), key, undefined, o.call, o.ret)
    })
    // Outputs: recompute per key in effect order (raw is already in effect order).
    const values = new Map<string, number>()
    const consistent = history.map((o) => {
      if (o.input.kind === 'set') {
        values.set(o.input.key, o.input.value)
        return o
      }
      return { ...o, output: values.get(o.input.key) }
    })
    const t0 = performance.now()
    const result = checkLinearizable(map, consistent)
    const elapsed = performance.now() - t0
    console.log(`linearizability: 2000-op map history (20 keys), ok=${String(result.ok)}, ${result.steps} steps, ${elapsed.toFixed(1)} ms`)
    expect(result).toMatchObject({ ok: true, partitions: 20 })
    expect(elapsed).toBeLessThan(2_000)
  })
})
