// Transactions against real replica processes: the raw conditional append over HTTP
// (409 with details), and bank transfers from 3 runtimes while the leader is killed —
// the total never changes on any client, every acknowledged transfer is applied once.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { HttpLogClient } from '../../object-runtime/http-log-client.ts'
import { connect, isLogError } from '../../object-runtime/index.ts'
import type { Runtime } from '../../object-runtime/index.ts'
import { QMap } from '../../objects/index.ts'
import { ProcessCluster, sleep } from './harness.ts'

let c: ProcessCluster
beforeAll(async () => {
  c = await ProcessCluster.start(3)
  await c.waitLeader()
}, 30_000)
afterAll(async () => {
  await c?.close()
})

const ACCOUNTS = 6
const INITIAL = 1000

describe('transactions on a 3-replica cluster', () => {
  it('conditional append over HTTP: commits, then 409 conflict with details; nothing logged', async () => {
    const cl = new HttpLogClient({ servers: c.urls })
    try {
      const d = new Uint8Array([1])
      const [p0] = await cl.append([{ streams: ['ca'], data: d, keys: ['k'] }])
      const [p1] = await cl.append([{ streams: ['ca'], data: d, keys: ['k'] }], { reads: [{ stream: 'ca', key: 'k', version: p0! }] })
      const tail = (await cl.tail()).tail
      let caught: unknown
      try {
        await cl.append([{ streams: ['ca'], data: d }], { reads: [{ stream: 'ca', key: 'k', version: p0! }] })
      } catch (err) {
        caught = err
      }
      expect(isLogError(caught, 'conflict'), String(caught)).toBe(true)
      expect((caught as { conflict: unknown }).conflict).toMatchObject({ stream: 'ca', key: 'k', version: p0!, position: p1! })
      expect((await cl.tail()).tail).toBe(tail)
    } finally {
      await cl.close()
    }
  }, 20_000)

  it('bank transfers from 3 runtimes, leader killed mid-run: total constant, acknowledged transfers applied once', async () => {
    const rts: Runtime[] = []
    for (let i = 0; i < 3; i++) rts.push(await connect({ servers: c.urls }))
    try {
      const bank0 = rts[0]!.open(QMap<string, number>, 'bank')
      await rts[0]!.transaction(async () => {
        for (let i = 0; i < ACCOUNTS; i++) await bank0.set(`a${i}`, INITIAL)
      })
      const acked: number[] = []
      let id = 0
      const deadline = Date.now() + 15_000
      let recoveredAt = 0
      let ackedBeforeKill = 0
      const worker = async (rt: Runtime, w: number): Promise<void> => {
        const bank = rt.open(QMap<string, number>, 'bank')
        const done = rt.open(QMap<string, number>, 'done')
        // Until 1 s after the new leader is up (bounded by count and time).
        for (let i = 0; i < 400 && Date.now() < deadline && (recoveredAt === 0 || Date.now() < recoveredAt + 1000); i++) {
          const my = id++
          const from = `a${(my * 7 + w) % ACCOUNTS}`
          const to = `a${(my * 3 + w + 1) % ACCOUNTS}`
          if (from === to) continue
          try {
            await rt.transaction(
              async () => {
                const a = (await bank.get(from))!
                const b = (await bank.get(to))!
                await bank.set(from, a - 1)
                await bank.set(to, b + 1)
                await done.set(`t${my}`, (await done.get(`t${my}`) ?? 0) + 1)
              },
              { retries: 50 },
            )
            acked.push(my)
          } catch {
            // unacknowledged (aborted or unavailable): may or may not have committed
          }
        }
      }
      const killer = (async () => {
        await sleep(800)
        const leader = await c.waitLeader()
        ackedBeforeKill = acked.length
        await c.kill(leader, 'SIGKILL')
        await c.waitLeader(15_000, leader)
        recoveredAt = Date.now()
      })()
      await Promise.all([...rts.map((rt, w) => worker(rt, w)), killer])
      expect(ackedBeforeKill).toBeGreaterThan(5)
      expect(acked.length).toBeGreaterThan(ackedBeforeKill)
      for (const rt of rts) {
        await rt.sync()
        const bank = rt.open(QMap<string, number>, 'bank')
        const done = rt.open(QMap<string, number>, 'done')
        const sum = await rt.transaction(async () => {
          let s = 0
          for (let i = 0; i < ACCOUNTS; i++) s += (await bank.get(`a${i}`))!
          return s
        })
        expect(sum).toBe(ACCOUNTS * INITIAL)
        for (const t of acked) expect(await done.get(`t${t}`)).toBe(1)
      }
      const hashes = new Set(rts.map((rt) => rt.open(QMap<string, number>, 'bank').stateHash()))
      expect(hashes.size).toBe(1)
    } finally {
      for (const rt of rts) await rt.close()
    }
  }, 45_000)
})
