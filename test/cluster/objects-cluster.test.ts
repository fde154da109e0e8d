// Replicated objects over a real 3-replica cluster: runtimes converge to equal state
// hashes, and histories of concurrent operations recorded while the leader is killed
// are linearizable (checked by test/linearizability).
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { connect, type Runtime } from '../../object-runtime/index.ts'
import { Counter, QMap, Queue, Register } from '../../objects/index.ts'
import { assertLinearizable } from '../linearizability/checker.ts'
import { HistoryRecorder } from '../linearizability/history.ts'
import {
  counterModel,
  mapModel,
  queueModel,
  registerModel,
  type CounterInput,
  type CounterOutput,
  type MapInput,
  type MapOutput,
  type QueueInput,
  type QueueOutput,
  type RegisterInput,
  type RegisterOutput,
} from '../linearizability/models.ts'
import { seededRng } from '../../log-server/paxos/rng.ts'
import { ProcessCluster, sleep } from './harness.ts'

async function runtimes(c: ProcessCluster, n: number, deadlineMs = 10_000): Promise<Runtime[]> {
  return Promise.all(Array.from({ length: n }, () => connect({ servers: c.urls, client: { deadlineMs } })))
}

describe('embedded mode', () => {
  it('connect({ embedded: DIR }) runs a log in this process; a second runtime on the same directory later sees the state', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'quipu-embedded-rt-'))
    try {
      const rt = await connect({ embedded: dir })
      const scores = rt.open(QMap<string, number>(), 'scores')
      await scores.set('ann', 3)
      await scores.set('bob', 5)
      expect(await scores.get('bob')).toBe(5)
      const hash = scores.stateHash()
      await rt.close()
      const again = await connect({ embedded: { dataDir: dir } })
      const s2 = again.open(QMap<string, number>(), 'scores')
      expect(await s2.get('ann')).toBe(3)
      expect(s2.stateHash()).toBe(hash)
      await again.close()
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe('objects over a real cluster', () => {
  it('three runtimes doing concurrent random operations converge to equal state hashes', async () => {
    const c = await ProcessCluster.start(3)
    const rts = await runtimes(c, 3)
    try {
      await c.waitLeader()
      await Promise.all(
        rts.map(async (rt, k) => {
          const rng = seededRng(100 + k)
          const counter = rt.open(Counter, 'hits')
          const map = rt.open(QMap<string, number>(), 'scores')
          const queue = rt.open(Queue<string>(), 'jobs')
          const reg = rt.open(Register<string>(), 'leader')
          for (let i = 0; i < 60; i++) {
            switch (rng.int(0, 6)) {
              case 0:
                await counter.add(rng.int(-3, 4))
                break
              case 1:
                await map.set(`k${rng.int(0, 8)}`, rng.int(0, 100))
                break
              case 2:
                await map.delete(`k${rng.int(0, 8)}`)
                break
              case 3:
                await queue.enqueue(`job-${k}-${i}`)
                break
              case 4:
                await queue.dequeue()
                break
              default:
                await reg.compareAndSet(await reg.get(), `r${k}.${i}`)
            }
          }
        }),
      )
      // Each runtime syncs to the tail, then all agree on every object.
      const views = await Promise.all(
        rts.map(async (rt) => {
          const counter = rt.open(Counter, 'hits')
          const map = rt.open(QMap<string, number>(), 'scores')
          const queue = rt.open(Queue<string>(), 'jobs')
          const reg = rt.open(Register<string>(), 'leader')
          await Promise.all([counter.get(), map.size(), queue.size(), reg.get()])
          const objs = [counter, map, queue, reg]
          return objs.map((o) => o.stateHash())
        }),
      )
      expect(views[1]).toEqual(views[0])
      expect(views[2]).toEqual(views[0])
    } finally {
      await Promise.all(rts.map((rt) => rt.close()))
      await c.close()
    }
  })

  it('register, counter, map and queue histories recorded while the leader is killed are linearizable', async () => {
    const c = await ProcessCluster.start(3)
    const clients = 4
    const rts = await runtimes(c, clients, 8_000)
    const regH = new HistoryRecorder<RegisterInput<string | undefined>, RegisterOutput<string | undefined>>()
    const ctrH = new HistoryRecorder<CounterInput, CounterOutput>()
    const mapH = new HistoryRecorder<MapInput<string, number>, MapOutput<number>>()
    const qH = new HistoryRecorder<QueueInput<string>, QueueOutput<string>>()
    let failures = 0
    try {
      const leader = await c.waitLeader()
      const stopAt = Date.now() + 4_000
      const work = rts.map(async (rt, k) => {
        const rng = seededRng(7 + k)
        const reg = rt.open(Register<string>(), 'lin-reg')
        const ctr = rt.open(Counter, 'lin-ctr')
        const map = rt.open(QMap<string, number>(), 'lin-map')
        const q = rt.open(Queue<string>(), 'lin-q')
        for (let i = 0; i < 400 && Date.now() < stopAt; i++) {
          const tag = `${k}.${i}`
          try {
            switch (rng.int(0, 8)) {
              case 0:
                await regH.run(k, { kind: 'set', value: `v${tag}` }, async () => {
                  await reg.set(`v${tag}`)
                  return undefined
                })
                break
              case 1:
                await regH.run(k, { kind: 'get' }, () => reg.get())
                break
              case 2:
                await ctrH.run(k, { kind: 'addAndGet', delta: 1 }, () => ctr.add(1))
                break
              case 3:
                await ctrH.run(k, { kind: 'get' }, () => ctr.get())
                break
              case 4: {
                const key = `k${rng.int(0, 3)}`
                const value = k * 1000 + i
                await mapH.run(k, { kind: 'set', key, value }, async () => {
                  await map.set(key, value)
                  return undefined
                })
                break
              }
              case 5: {
                const key = `k${rng.int(0, 3)}`
                await mapH.run(k, { kind: 'get', key }, () => map.get(key))
                break
              }
              case 6:
                await qH.run(k, { kind: 'enqueue', value: `j${tag}` }, async () => {
                  await q.enqueue(`j${tag}`)
                  return undefined
                })
                break
              default:
                await qH.run(k, { kind: 'dequeue' }, () => q.dequeue())
            }
          } catch {
            // Recorded as pending (it may or may not have taken effect); keep going.
            failures++
            await sleep(20)
          }
        }
      })
      await sleep(1_200)
      await c.kill(leader, 'SIGKILL')
      await Promise.all(work)
      const budget = { timeoutMs: 20_000 }
      assertLinearizable(registerModel<string | undefined>(undefined), regH.history(), budget)
      assertLinearizable(counterModel(0), ctrH.history(), budget)
      assertLinearizable(mapModel<string, number>(), mapH.history(), budget)
      assertLinearizable(queueModel<string>(), qH.history(), budget)
      const total = regH.history().length + ctrH.history().length + mapH.history().length + qH.history().length
      expect(total).toBeGreaterThan(100)
      expect(failures).toBeLessThan(total / 2)
    } finally {
      await Promise.all(rts.map((rt) => rt.close()))
      await c.close()
    }
  })
})
