// AppendBatcher with a SendConditionalBatch (what the HTTP client gives it): concurrent
// conditional appends share requests, each on a session lane of its own with seqs in
// order, at most one batch per lane and conditionalBatchMax calls per batch; one call's
// error fails that call only; a failed request fails its calls only.

import { describe, expect, test } from 'vitest'
import { AppendBatcher } from '../../object-runtime/append-batcher.ts'
import type { ConditionalCall } from '../../object-runtime/append-batcher.ts'
import { LogError, isLogError } from '../../object-runtime/log-client.ts'

const entry = (s: string): { streams: string[]; data: Uint8Array } => ({ streams: ['s'], data: new TextEncoder().encode(s) })
const reads = [{ stream: 's', key: 'k', version: 0 }]

interface Sent {
  readonly calls: readonly ConditionalCall[]
  answer(outcomes: (number[] | Error)[] | Error): void
}

/** A log whose conditional batches are answered by hand. */
function scripted(config: ConstructorParameters<typeof AppendBatcher>[1] = {}): { batcher: AppendBatcher; sent: Sent[]; inFlight: () => number } {
  const sent: Sent[] = []
  let open = 0
  const batcher = new AppendBatcher(
    () => Promise.reject(new Error('plain appends are not used here')),
    config,
    'client-1',
    (calls) => {
      open++
      return new Promise((resolve, reject) => {
        sent.push({
          calls,
          answer: (o) => {
            open--
            if (o instanceof Error) reject(o)
            else resolve(o)
          },
        })
      })
    },
  )
  return { batcher, sent, inFlight: () => open }
}

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

describe('AppendBatcher: conditional batches', () => {
  test('concurrent calls share requests: at most conditionalBatchMax per batch, one batch per lane, lanes = inFlightBatchesMax', async () => {
    const { batcher, sent, inFlight } = scripted({ conditionalBatchMax: 3, inFlightBatchesMax: 2 })
    const calls = Array.from({ length: 10 }, (_, i) => batcher.appendConditional([entry(`e${i}`)], reads))
    await turn()
    expect(sent.map((s) => s.calls.length)).toEqual([3, 3])
    expect(inFlight()).toBe(2)
    const lanes = sent.map((s) => s.calls[0]!.id.clientId)
    expect(new Set(lanes).size).toBe(2)
    for (const s of sent) {
      expect(s.calls.every((c) => c.id.clientId === s.calls[0]!.id.clientId)).toBe(true)
      expect(s.calls.map((c) => c.id.seq)).toEqual([1, 2, 3])
      expect(s.calls[0]!.reads).toEqual(reads)
    }
    // Answering the first lane's batch lets that lane take the next 3, with its next seqs.
    sent[0]!.answer([[0], [1], [2]])
    await turn()
    await turn()
    expect(sent).toHaveLength(3)
    expect(sent[2]!.calls[0]!.id.clientId).toBe(lanes[0])
    expect(sent[2]!.calls.map((c) => c.id.seq)).toEqual([4, 5, 6])
    expect(await Promise.all(calls.slice(0, 3))).toEqual([[0], [1], [2]])
    sent[1]!.answer([[3], [4], [5]])
    sent[2]!.answer([[6], [7], [8]])
    await turn()
    await turn()
    expect(sent).toHaveLength(4)
    sent[3]!.answer([[9]])
    expect(await Promise.all(calls)).toEqual(Array.from({ length: 10 }, (_, i) => [i]))
    expect(batcher.stats.batches).toBe(4)
  })

  test("one call's error fails that call only; a failed request fails its calls only", async () => {
    const { batcher, sent } = scripted({ conditionalBatchMax: 2, inFlightBatchesMax: 2 })
    const calls = [0, 1, 2, 3].map((i) => batcher.appendConditional([entry(`e${i}`)], reads).then((p) => p, (e: unknown) => e))
    await turn()
    expect(sent).toHaveLength(2)
    const conflict = new LogError('conflict', 'lost', { conflict: { stream: 's', key: 'k', version: 0, position: 3 } })
    sent[0]!.answer([[5], conflict])
    sent[1]!.answer(new LogError('unavailable', 'no quorum'))
    const [a, b, c, d] = await Promise.all(calls)
    expect(a).toEqual([5])
    expect(isLogError(b, 'conflict')).toBe(true)
    expect(isLogError(c, 'unavailable')).toBe(true)
    expect(isLogError(d, 'unavailable')).toBe(true)
  })

  test('an answer of the wrong shape fails the calls, never resolves them wrongly', async () => {
    const { batcher, sent } = scripted()
    const calls = [0, 1].map((i) => batcher.appendConditional([entry(`e${i}`)], reads).then((p) => p, (e: unknown) => e))
    await turn()
    sent[0]!.answer([[1]]) // one outcome for two calls
    for (const r of await Promise.all(calls)) expect(r).toBeInstanceOf(Error)
  })

  test('close fails queued calls with closed; conditionalBatchMax is validated', async () => {
    const { batcher, sent } = scripted({ conditionalBatchMax: 1, inFlightBatchesMax: 1 })
    const calls = [0, 1, 2].map((i) => batcher.appendConditional([entry(`e${i}`)], reads).then((p) => p, (e: unknown) => e))
    await turn()
    expect(sent).toHaveLength(1)
    batcher.close()
    sent[0]!.answer([[0]])
    const [a, b, c] = await Promise.all(calls)
    expect(a).toEqual([0])
    expect(isLogError(b, 'closed')).toBe(true)
    expect(isLogError(c, 'closed')).toBe(true)
    expect(() => scripted({ conditionalBatchMax: 0 })).toThrow(/conditionalBatchMax/)
  })
})
