// rt.transaction over a MemoryLog with several runtimes (processes): commit, abort,
// retry, serializability (bank invariant, lost update, write skew, a replay check of the
// recorded history), aborted transactions leave no trace, read-only and snapshot reads.
import { afterEach, describe, expect, test } from 'vitest'
import { TransactionAborted, decodeRecord, encodeOp, streamOf } from '../../object-runtime/index.ts'
import type { Runtime } from '../../object-runtime/index.ts'
import { Counter, QMap, Queue, Register } from '../../objects/index.ts'
import type { EntriesListener, MemoryLogClient, SubscriptionErrorListener } from '../../object-runtime/index.ts'
import { cluster } from '../runtime/helpers.ts'
import type { Cluster } from '../runtime/helpers.ts'

let c: Cluster | undefined
afterEach(async () => {
  await c?.close()
  c = undefined
})

const ACCOUNTS = 8
const INITIAL = 100

async function seed(rt: Runtime): Promise<void> {
  const bank = rt.open(QMap<string, number>, 'bank')
  await rt.transaction(async () => {
    for (let i = 0; i < ACCOUNTS; i++) await bank.set(`a${i}`, INITIAL)
  })
}

async function total(rt: Runtime): Promise<number> {
  const bank = rt.open(QMap<string, number>, 'bank')
  return rt.transaction(async () => {
    let sum = 0
    for (let i = 0; i < ACCOUNTS; i++) sum += (await bank.get(`a${i}`)) ?? 0
    return sum
  })
}

/** A runtime whose subscription pushes can be held back (its local state goes stale). */
async function laggingRuntime(cl: Cluster): Promise<{ runtime: Runtime; hold: () => void; release: () => void }> {
  let held = false
  const gate: (() => void)[] = []
  const runtime = await cl.add({
    wrap: (client) =>
      Object.assign(Object.create(client) as MemoryLogClient, {
        subscribe: (streams: readonly string[], from: number, onEntries: EntriesListener, onError?: SubscriptionErrorListener) =>
          client.subscribe(streams, from, (entries, next) => (held ? gate.push(() => onEntries(entries, next)) : onEntries(entries, next)), onError),
      }),
  })
  return {
    runtime,
    hold: () => {
      held = true
    },
    release: () => {
      held = false
      for (const deliver of gate.splice(0)) deliver()
    },
  }
}

describe('rt.transaction', () => {
  test('bank transfers from 4 runtimes: the total never changes, every committed transfer applied once', async () => {
    c = await cluster(4)
    await seed(c.runtimes[0]!)
    let seq = 0
    const committed: { from: string; to: string; amount: number; id: number }[] = []
    const worker = async (rt: Runtime, n: number): Promise<void> => {
      const bank = rt.open(QMap<string, number>, 'bank')
      const log = rt.open(QMap<string, number>, 'transfers') // one key per transfer: applied-once check
      for (let i = 0; i < n; i++) {
        const from = `a${(i * 3 + seq) % ACCOUNTS}`
        const to = `a${(i * 5 + seq + 1) % ACCOUNTS}`
        if (from === to) continue
        const id = seq++
        const amount = 1 + (id % 7)
        await rt.transaction(
          async () => {
            const a = (await bank.get(from)) ?? 0
            const b = (await bank.get(to)) ?? 0
            await bank.set(from, a - amount)
            await bank.set(to, b + amount)
            await log.set(`t${id}`, amount)
          },
          { retries: 100 },
        )
        committed.push({ from, to, amount, id })
        expect(await total(rt)).toBe(ACCOUNTS * INITIAL)
      }
    }
    await Promise.all(c.runtimes.map((rt) => worker(rt, 15)))
    for (const rt of c.runtimes) {
      await rt.sync()
      expect(await total(rt)).toBe(ACCOUNTS * INITIAL)
      const transfers = rt.open(QMap<string, number>, 'transfers')
      expect(await transfers.size()).toBe(committed.length)
    }
    // Replaying the committed transfers serially gives every client's balances.
    const model = new Map<string, number>()
    for (let i = 0; i < ACCOUNTS; i++) model.set(`a${i}`, INITIAL)
    const byId = new Map(committed.map((t) => [t.id, t]))
    const bank0 = c.runtimes[0]!.open(QMap<string, number>, 'bank')
    for (const e of c.log.read({ from: 0 }).entries) {
      const rec = decodeRecord(e.data)
      if (rec.kind !== 'tx') continue
      const t = rec.ops.find((op) => op.object === 'transfers')
      if (t === undefined) continue
      const id = Number(String(t.args[0]).slice(1))
      const tr = byId.get(id)!
      model.set(tr.from, model.get(tr.from)! - tr.amount)
      model.set(tr.to, model.get(tr.to)! + tr.amount)
    }
    for (const [k, v] of model) expect(await bank0.get(k)).toBe(v)
    expect(new Set(c.runtimes.map((rt) => rt.open(QMap<string, number>, 'bank').stateHash())).size).toBe(1)
  })

  test('serializability check: every committed transaction read the state at its position in the log', async () => {
    c = await cluster(3)
    const reads: { position: number; seen: Record<string, number> }[] = []
    await Promise.all(
      c.runtimes.map(async (rt, r) => {
        const m = rt.open(QMap<string, number>, 'm')
        for (let i = 0; i < 12; i++) {
          const keys = [`k${(i + r) % 4}`, `k${(i * 3 + r + 1) % 4}`]
          const seen: Record<string, number> = {}
          await rt.transaction(
            async () => {
              for (const k of Object.keys(seen)) delete seen[k]
              for (const k of keys) seen[k] = (await m.get(k)) ?? 0
              await m.set(keys[0]!, seen[keys[0]!]! + seen[keys[1]!]! + 1)
            },
            { retries: 100 },
          )
          const v = m.version
          reads.push({ position: v, seen: { ...seen } })
        }
      }),
    )
    // Replay the log serially; at each transaction's entry the values it read must be the state just before it.
    const state = new Map<string, number>()
    const entries = c.log.read({ from: 0 }).entries
    const txAt = new Map<number, Record<string, number>>()
    for (const e of entries) {
      const rec = decodeRecord(e.data)
      if (rec.kind !== 'tx') continue
      txAt.set(e.position, {})
      for (const op of rec.ops) {
        expect(op.mutator).toBe('set')
        state.set(String(op.args[0]), op.args[1] as number)
      }
    }
    expect(txAt.size).toBe(36)
    // Check by recomputing: apply serially, and each write equals read sum + 1 from state before it.
    const s2 = new Map<string, number>()
    for (const e of entries) {
      const rec = decodeRecord(e.data)
      if (rec.kind !== 'tx') continue
      const op = rec.ops[0]!
      const written = op.args[1] as number
      // The transaction wrote seen[k0] + seen[k1] + 1: find its record by value in reads.
      const match = reads.find((r) => Object.values(r.seen).reduce((a, b) => a + b, 0) + (Object.keys(r.seen).length === 1 ? Object.values(r.seen)[0]! : 0) + 1 === written && Object.entries(r.seen).every(([k, v]) => (s2.get(k) ?? 0) === v))
      expect(match, `a transaction at ${e.position} wrote ${written}, but no recorded read matches the state before it`).toBeDefined()
      s2.set(String(op.args[0]), written)
    }
  })

  test('lost update prevented: concurrent read-modify-write increments all count', async () => {
    c = await cluster(3)
    const n = 10
    await Promise.all(
      c.runtimes.map(async (rt) => {
        const reg = rt.open(Register<number>, 'r')
        for (let i = 0; i < n; i++) {
          await rt.transaction(async () => {
            const v = (await reg.get()) ?? 0
            await reg.set(v + 1)
          }, { retries: 200 })
        }
      }),
    )
    const reg = c.runtimes[1]!.open(Register<number>, 'r')
    expect(await reg.get()).toBe(3 * n)
  })

  test('write skew prevented: two doctors on call, each may leave only if the other stays', async () => {
    c = await cluster(2)
    const [r1, r2] = c.runtimes as [Runtime, Runtime]
    const ward1 = r1.open(QMap<string, boolean>, 'ward')
    await ward1.set('alice', true)
    await ward1.set('bob', true)
    const ward2 = r2.open(QMap<string, boolean>, 'ward')
    await ward2.sync()
    let gate!: () => void
    const bothRead = new Promise<void>((resolve) => (gate = resolve))
    let reads = 0
    const leave = (rt: Runtime, ward: typeof ward1, me: string, other: string) =>
      rt.transaction(
        async () => {
          const a = await ward.get(me)
          const b = await ward.get(other)
          if (++reads === 2) gate()
          await bothRead
          if (a === true && b === true) await ward.set(me, false)
        },
        { retries: 0 },
      )
    const results = await Promise.allSettled([leave(r1, ward1, 'alice', 'bob'), leave(r2, ward2, 'bob', 'alice')])
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1)
    const failed = results.find((r) => r.status === 'rejected') as PromiseRejectedResult
    expect(failed.reason).toBeInstanceOf(TransactionAborted)
    await r1.sync()
    const onCall = [await ward1.get('alice'), await ward1.get('bob')].filter((v) => v === true)
    expect(onCall).toHaveLength(1)
  })

  test('TransactionAborted names object, key and position; an aborted transaction leaves no trace', async () => {
    c = await cluster(2)
    const [r1] = c.runtimes as [Runtime, Runtime]
    const m1 = r1.open(QMap<string, number>, 'm')
    const other1 = r1.open(Counter, 'ctr')
    const writer = c.clients[1]!
    await m1.set('x', 1)
    const before = c.log.length
    const hashes = [m1.stateHash(), other1.stateHash()]
    let attempts = 0
    let caught: unknown
    try {
      await r1.transaction(
        async () => {
          attempts++
          const x = (await m1.get('x')) ?? 0
          await other1.add(5)
          await m1.set('y', x)
          // Another process writes x after we read it (as its runtime would: keys "=x" and "+"): every attempt loses.
          await writer.append([{ streams: [streamOf('m')], data: encodeOp({ type: 'QMap', version: 1, mutator: 'set', args: ['x', 100 + attempts] }), keys: ['=x', '+'] }])
        },
        { retries: 2 },
      )
    } catch (err) {
      caught = err
    }
    expect(caught).toBeInstanceOf(TransactionAborted)
    const ab = caught as TransactionAborted
    expect(ab.code).toBe('transaction_aborted')
    expect(ab.objectName).toBe('m')
    expect(['x', '*']).toContain(ab.key)
    expect(ab.position).toBeGreaterThanOrEqual(before)
    expect(ab.attempts).toBe(3)
    expect(attempts).toBe(3)
    // Only the three plain writes of x entered the log, no commit entry.
    const entries = c.log.read({ from: before }).entries
    expect(entries).toHaveLength(3)
    expect(entries.every((e) => decodeRecord(e.data).kind === 'op')).toBe(true)
    await r1.sync()
    expect(await m1.get('y')).toBeUndefined()
    expect(await other1.get()).toBe(0)
    expect(other1.stateHash()).toBe(hashes[1])
  })

  test('reads see own writes; mutator results computed on the transaction view; a throwing fn commits nothing', async () => {
    c = await cluster(1)
    const rt = c.runtimes[0]!
    const ctr = rt.open(Counter, 'c')
    const m = rt.open(QMap<string, number>, 'm')
    await ctr.add(10)
    const out = await rt.transaction(async () => {
      const r = await ctr.add(5)
      const seen = await ctr.get()
      await m.set('k', seen)
      return { r, seen, k: await m.get('k') }
    })
    expect(out).toEqual({ r: 15, seen: 15, k: 15 })
    expect(await ctr.get()).toBe(15)
    const len = c.log.length
    await expect(rt.transaction(async () => {
      await m.set('k', 0)
      throw new Error('boom')
    })).rejects.toThrow('boom')
    expect(c.log.length).toBe(len)
    expect(await m.get('k')).toBe(15)
  })

  test('read-only transactions read one snapshot and never abort; rt.snapshot(version) time travels', async () => {
    c = await cluster(2)
    const [r1, r2] = c.runtimes as [Runtime, Runtime]
    const m1 = r1.open(QMap<string, number>, 'm')
    const m2 = r2.open(QMap<string, number>, 'm')
    await m1.set('a', 1)
    const v1 = m1.version
    await m1.set('a', 2)
    await m1.set('b', 5)
    // A read-only transaction while another runtime writes concurrently: never aborts.
    const writes = (async () => {
      for (let i = 0; i < 20; i++) await m2.set('a', 10 + i)
    })()
    for (let i = 0; i < 5; i++) {
      const got = await r1.transaction(async () => [await m1.get('a'), await m1.get('b')], { retries: 0 })
      expect(got[1]).toBe(5)
    }
    await writes
    const snap = await r1.snapshot(v1)
    expect(snap.version).toBe(v1)
    expect(await snap.read(async () => [await m1.get('a'), await m1.get('b'), await m1.size()])).toEqual([1, undefined, 1])
    await expect(snap.read(() => m1.set('a', 0))).rejects.toThrow(/read-only/)
    const now = await r1.snapshot()
    expect(await now.read(() => m1.get('a'))).toBe(29)
  })

  test('a runtime whose pushes lag still answers linearizably: read-only rerun after a sync, read-write conflict and retry', async () => {
    // Transactions start on the runtime's local state (no round trip). A runtime whose
    // subscription is held back has a stale state: what it reads must still not be stale.
    c = await cluster(1)
    const { runtime: lagging, hold, release } = await laggingRuntime(c)
    const writer = c.runtimes[0]!
    const w = writer.open(Register<number>, 'r')
    const l = lagging.open(Register<number>, 'r')
    await w.set(1)
    expect(await l.get()).toBe(1)
    hold()
    await w.set(2) // acknowledged: every later read must see it
    expect(l.version).toBeLessThan(w.version) // the lagging runtime has not seen it
    let runs = 0
    const seen = await lagging.transaction(async () => {
      runs++
      return l.get()
    })
    expect(seen).toBe(2)
    expect(runs).toBe(2) // the first run read 1 and was refused by the sync check
    // Read-write on stale state: the commit conflicts and the retry (after a sync) wins.
    await w.set(3)
    runs = 0
    const wrote = await lagging.transaction(async () => {
      runs++
      const v = (await l.get()) ?? 0
      await l.set(v + 10)
      return v
    })
    expect(wrote).toBe(3)
    expect(runs).toBe(2)
    expect(await w.get()).toBe(13)
    release()
    expect(await l.get()).toBe(13)
  })

  test('a dequeue that found the queue empty conflicts with an enqueue it did not see', async () => {
    c = await cluster(1)
    const { runtime: consumer, hold, release } = await laggingRuntime(c)
    const producer = c.runtimes[0]!
    const qp = producer.open(Queue<string>, 'jobs')
    const qc = consumer.open(Queue<string>, 'jobs')
    const seen = consumer.open(QMap<string, string>, 'seen')
    expect(await qc.size()).toBe(0)
    hold()
    await qp.enqueue('job-1') // acknowledged before the transaction starts
    const got = await consumer.transaction(async () => {
      const job = await qc.dequeue()
      await seen.set('last', job ?? 'nothing')
      return job
    })
    expect(got).toBe('job-1')
    release()
    expect(await seen.get('last')).toBe('job-1')
    expect(await qp.size()).toBe(0)
  })

  test('plain ops declare their conflict keys; a bounded table forgets keys conservatively (retried)', async () => {
    c = await cluster(2, { log: { conflictKeysMax: 4 } })
    const [r1] = c.runtimes as [Runtime, Runtime]
    const m = r1.open(QMap<string, number>, 'm')
    for (let i = 0; i < 10; i++) await m.set(`k${i}`, i)
    const e = c.log.read({ from: 0, limit: 1 }).entries[0]!
    expect(e.streams).toEqual([streamOf('m')])
    expect(c.log.conflictWatermark).toBeGreaterThan(0)
    // Reads below the watermark conflict (forgotten keys); the retry reads at the tail and commits.
    await r1.transaction(async () => {
      await m.set('k0', ((await m.get('k0')) ?? 0) + 1)
    })
    expect(await m.get('k0')).toBe(1)
    c.log.simulateLeaderChange()
    await r1.transaction(async () => {
      await m.set('k1', ((await m.get('k1')) ?? 0) + 1)
    })
    expect(await m.get('k1')).toBe(2)
  })
})
