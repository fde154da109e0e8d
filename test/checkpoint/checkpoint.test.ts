// Checkpoints: crash of the checkpointing client at every stage, a corrupt END, the
// clear error for a trimmed history without a checkpoint, concurrent writers during
// checkpoints, and the automatic policy with its election.

import { encode } from '@msgpack/msgpack'
import { describe, expect, test } from 'vitest'
import { ObjectError, RECORD_CHECKPOINT, checkpointDataStream, checkpointIndexStream, isLogError, streamOf } from '../../object-runtime/index.ts'
import type { CheckpointStage } from '../../object-runtime/index.ts'
import { QMap } from '../../objects/index.ts'
import { cluster, rejection, tick } from '../runtime/helpers.ts'

const TAKEOVER_MS = 1_000
const value = (i: number): string => `v${i}-${'x'.repeat(100)}`

/** A log with a clock the test moves, and runtimes with small chunks and a 1 s takeover. */
async function setup(n = 1, extra: { everyEntries?: number } = {}) {
  const clock = { now: 1_000_000 }
  const c = await cluster(n, { log: { clock: () => clock.now }, config: { checkpoint: { chunkBytesMax: 1024, takeoverMs: TAKEOVER_MS, ...extra } } })
  return { c, clock }
}

describe('crash of the checkpointing client', () => {
  const stages: CheckpointStage[] = ['start', 'some-chunks', 'chunks', 'end', 'trim-object']
  for (const stage of stages) {
    test(`after "${stage}": opening still equals replay, and the next checkpointer takes over`, async () => {
      const { c, clock } = await setup(1)
      const rt = c.runtimes[0]!
      const m = rt.open(QMap<string, string>, 'm')
      for (let i = 0; i < 40; i++) await m.set(`k${i}`, value(i))
      const first = await rt.checkpoint(m)
      expect(first.outcome).toBe('written')
      expect(first.outcome === 'written' && first.chunks).toBeGreaterThan(2)
      for (let i = 0; i < 10; i++) await m.set(`k${i}`, value(100 + i))
      // The "crashed" checkpoint: stops after `stage`, as if the process died there.
      expect(await rt.checkpoint(m, { haltAfter: stage })).toEqual({ outcome: 'halted', stage })
      for (let i = 0; i < 5; i++) await m.delete(`k${20 + i}`)
      await m.sync()

      const fresh = await c.add()
      const f = fresh.open(QMap<string, string>, 'm')
      await f.sync()
      expect(f.version).toBe(m.version)
      expect(f.stateHash()).toBe(m.stateHash())
      // Before the END is chosen the crashed checkpoint is incomplete: the first one is loaded.
      const complete = stage === 'end' || stage === 'trim-object'
      expect(fresh.stats.entriesApplied).toBe(complete ? 5 : 15)

      // Another client: an unfinished START blocks it until it is stale in log time.
      const other = await c.add()
      const o = other.open(QMap<string, string>, 'm')
      await o.sync()
      if (!complete) {
        const busy = await other.checkpoint(o)
        expect(busy.outcome).toBe('busy')
        clock.now += TAKEOVER_MS
      }
      expect((await other.checkpoint(o)).outcome).toBe('written')
      const late = await c.add()
      const l = late.open(QMap<string, string>, 'm')
      await l.sync()
      expect(l.stateHash()).toBe(m.stateHash())
      expect(late.stats.entriesApplied).toBe(0)
      await c.close()
    })
  }
})

test('a corrupt END is ignored in favour of the previous checkpoint', async () => {
  const { c } = await setup(1)
  const rt = c.runtimes[0]!
  const m = rt.open(QMap<string, string>, 'm')
  for (let i = 0; i < 10; i++) await m.set(`k${i}`, value(i))
  const good = await rt.checkpoint(m)
  if (good.outcome !== 'written') throw new Error('not written')
  await m.set('after', 'x')
  // An END that claims a checkpoint whose chunks do not exist (bad id, wrong CRC).
  const bogus = [RECORD_CHECKPOINT, 'end', 'no-such-id', 1, 'QMap', 1, m.version, m.version + 1, 10, 1, 12345, good.startPosition, good.endPosition]
  await rt.log.append([{ streams: [checkpointIndexStream('m')], data: encode(bogus) }])
  const fresh = await c.add()
  const f = fresh.open(QMap<string, string>, 'm')
  expect(await f.get('after')).toBe('x')
  expect(f.stateHash()).toBe(m.stateHash())
  expect(fresh.stats.entriesApplied).toBe(1)
  await c.close()
})

test('a stream trimmed with no checkpoint covering the trim point: history_trimmed, never an empty object', async () => {
  const { c } = await setup(1)
  const m = c.runtimes[0]!.open(QMap<string, number>, 'm')
  for (let i = 0; i < 5; i++) await m.set(`k${i}`, i)
  await c.clients[0]!.trim(streamOf('m'), 3)
  const fresh = await c.add()
  const err = await rejection(fresh.open(QMap<string, number>, 'm').size())
  expect(err).toBeInstanceOf(ObjectError)
  expect((err as ObjectError).code).toBe('history_trimmed')
  expect(isLogError((err as ObjectError).cause, 'trimmed')).toBe(true)
  await c.close()
})

test('concurrent writers during checkpoints: every write lands, every client converges', async () => {
  const { c } = await setup(3)
  const handles = c.runtimes.map((rt) => rt.open(QMap<string, number>, 'm'))
  let stop = false
  const writers = handles.map(async (h, w) => {
    let n = 0
    while (!stop) {
      await h.set(`w${w}-${n % 50}`, n)
      n++
    }
    return n
  })
  const results = []
  for (let i = 0; i < 4; i++) {
    await tick(5)
    results.push(await c.runtimes[0]!.checkpoint(handles[0]!))
  }
  stop = true
  const counts = await Promise.all(writers)
  expect(results.every((r) => r.outcome === 'written')).toBe(true)
  for (const h of handles) await h.sync()
  const hashes = new Set(handles.map((h) => h.stateHash()))
  expect(hashes.size).toBe(1)
  const size = counts.reduce((sum, n) => sum + Math.min(n, 50), 0)
  expect(await handles[1]!.size()).toBe(size)
  const fresh = await c.add()
  const f = fresh.open(QMap<string, number>, 'm')
  await f.sync()
  expect(f.stateHash()).toBe(handles[0]!.stateHash())
  await c.close()
})

test('automatic policy: checkpoints every N entries, one elected writer at a time, every stream trimmed', async () => {
  const { c } = await setup(3, { everyEntries: 50 })
  const handles = c.runtimes.map((rt) => rt.open(QMap<string, number>, 'm'))
  for (let round = 0; round < 100; round++) await Promise.all(handles.map((h, w) => h.set(`w${w}-${round % 20}`, round)))
  await tick(50)
  for (const h of handles) await h.sync()
  await tick(50)
  const log = c.clients[0]!
  // The history is trimmed (the op stream and the checkpoint streams).
  expect(isLogError(await rejection(log.readStream(streamOf('m'), { from: 0 })), 'trimmed')).toBe(true)
  expect(isLogError(await rejection(log.readStream(checkpointDataStream('m'), { from: 0 })), 'trimmed')).toBe(true)
  // Elected: complete checkpoints never overlap (each START..END holds one checkpoint's data).
  const tail = await log.tail([checkpointIndexStream('m')])
  expect(tail.streams[checkpointIndexStream('m')]).toBeGreaterThan(0)
  const fresh = await c.add()
  const f = fresh.open(QMap<string, number>, 'm')
  await f.sync()
  expect(f.stateHash()).toBe(handles[0]!.stateHash())
  expect(await f.size()).toBe(60)
  // Opened from a recent checkpoint: far fewer than the 300 ops of the history.
  expect(fresh.stats.entriesApplied).toBeLessThan(100)
  await c.close()
})
