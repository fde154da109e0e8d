import fc from 'fast-check'
import { describe, expect, test } from 'vitest'
import { Lock } from '../../objects/index.ts'
import type { LockGrant } from '../../objects/index.ts'
import { cluster } from '../runtime/helpers.ts'

describe('Lock', () => {
  test('a holder that stops renewing loses the lock after its TTL in log time; the next grant has a larger token', async () => {
    let now = 1_000_000
    const c = await cluster(2, { log: { clock: () => now } })
    const [a, b] = c.runtimes.map((rt) => rt.open(Lock, 'lock'))
    const first = await a!.acquire('alice', 1000)
    expect(first).toEqual({ acquired: true, token: expect.any(Number) as number, expiresAt: now + 1000 })
    if (!first.acquired) throw new Error('unreachable')

    now += 500
    const refused = await b!.acquire('bob', 1000)
    expect(refused).toEqual({ acquired: false, holder: 'alice', token: first.token, expiresAt: 1_001_000 })
    expect(await b!.check()).toMatchObject({ held: true, holder: 'alice' })

    now += 499 // 1 ms before expiry: still alice's
    expect((await b!.acquire('bob', 1000)).acquired).toBe(false)

    now += 1 // expiresAt reached: the lease is over, whatever alice's own clock says
    expect(await a!.check()).toMatchObject({ held: false, holder: null })
    const second = await b!.acquire('bob', 1000)
    expect(second.acquired).toBe(true)
    if (!second.acquired) throw new Error('unreachable')
    expect(second.token).toBeGreaterThan(first.token)

    // The stale holder can neither renew nor release.
    expect(await a!.renew('alice', first.token, 1000)).toBe(false)
    expect(await a!.release('alice', first.token)).toBe(false)
    expect(await a!.info()).toMatchObject({ holder: 'bob', token: second.token })

    // The live holder renews, then releases; then anyone may take it.
    now += 900
    expect(await b!.renew('bob', second.token, 1000)).toBe(true)
    now += 900
    expect((await a!.acquire('alice', 1000)).acquired).toBe(false)
    expect(await b!.release('bob', second.token)).toBe(true)
    expect((await a!.acquire('alice', 1000)).acquired).toBe(true)
    expect(a!.stateHash()).toBe(b!.stateHash())
    await c.close()
  })

  test('re-acquiring while holding extends the lease and keeps the token', async () => {
    let now = 0
    const c = await cluster(1, { log: { clock: () => now } })
    const lock = c.runtimes[0]!.open(Lock, 'l')
    const g1 = await lock.acquire('me', 100)
    now = 50
    const g2 = await lock.acquire('me', 100)
    expect(g2).toEqual({ acquired: true, token: (g1 as { token: number }).token, expiresAt: 150 })
    // Bad input does not throw (a throw would poison the lock for everyone).
    now = 500
    expect((await lock.acquire('', 100)).acquired).toBe(false)
    expect((await lock.acquire('x', -5)).acquired).toBe(false)
    expect(lock.poisoned).toBeUndefined()
    await c.close()
  })

  test('contenders in three runtimes: at any log time at most one holder, tokens increase', async () => {
    let now = 0
    const c = await cluster(3, { log: { clock: () => now } })
    const locks = c.runtimes.map((rt) => rt.open(Lock, 'l'))
    const grants: Array<LockGrant & { acquired: true }> = []
    for (let round = 0; round < 5; round++) {
      const results = await Promise.all(locks.map((l, i) => l.acquire(`node-${i}`, 100)))
      const won = results.filter((r): r is LockGrant & { acquired: true } => r.acquired)
      expect(won.length).toBe(1)
      grants.push(won[0]!)
      now += 100 // everyone's lease runs out
    }
    for (let i = 1; i < grants.length; i++) expect(grants[i]!.token).toBeGreaterThan(grants[i - 1]!.token)
    await c.close()
  })

  test('agrees with a reference model that knows each entry\'s log time and position', async () => {
    type Op = { kind: 'acquire' | 'renew' | 'release' | 'check'; owner: string; ttl: number; staleToken: boolean; advance: number }
    const op: fc.Arbitrary<Op> = fc.record({
      kind: fc.constantFrom('acquire', 'renew', 'release', 'check'),
      owner: fc.constantFrom('a', 'b', 'c'),
      ttl: fc.integer({ min: 1, max: 50 }),
      staleToken: fc.boolean(),
      advance: fc.integer({ min: 0, max: 30 }),
    })
    await fc.assert(
      fc.asyncProperty(fc.array(op, { maxLength: 30 }), async (ops) => {
        let now = 0
        const c = await cluster(1, { log: { clock: () => now } })
        const lock = c.runtimes[0]!.open(Lock, 'l')
        const m = { holder: null as string | null, token: -1, expiresAt: 0 }
        const live = (ts: number): boolean => m.holder !== null && ts < m.expiresAt
        try {
          for (const [position, o] of ops.entries()) {
            now += o.advance
            const ts = now
            const token = o.staleToken ? m.token - 1 : m.token
            switch (o.kind) {
              case 'acquire': {
                let expected: LockGrant
                if (live(ts) && m.holder !== o.owner) {
                  expected = { acquired: false, holder: m.holder, token: m.token, expiresAt: m.expiresAt }
                } else {
                  if (!live(ts)) {
                    m.holder = o.owner
                    m.token = position
                  }
                  m.expiresAt = ts + o.ttl
                  expected = { acquired: true, token: m.token, expiresAt: m.expiresAt }
                }
                expect(await lock.acquire(o.owner, o.ttl)).toEqual(expected)
                break
              }
              case 'renew': {
                const ok = live(ts) && m.holder === o.owner && m.token === token
                if (ok) m.expiresAt = ts + o.ttl
                expect(await lock.renew(o.owner, token, o.ttl)).toBe(ok)
                break
              }
              case 'release': {
                const ok = live(ts) && m.holder === o.owner && m.token === token
                if (ok) {
                  m.holder = null
                  m.expiresAt = ts
                }
                expect(await lock.release(o.owner, token)).toBe(ok)
                break
              }
              case 'check': {
                const held = live(ts)
                expect(await lock.check()).toEqual({ held, holder: held ? m.holder : null, token: m.token, expiresAt: m.expiresAt, now: ts })
                break
              }
            }
          }
          expect(await lock.info()).toEqual(m)
        } finally {
          await c.close()
        }
      }),
      { numRuns: 25 },
    )
  })
})
