// The conformance suite every LogClient implementation runs (STYLE.md #7). A new
// implementation is one line in a test file:
//
//   logClientConformance('http', async () => { const cluster = await start(); return { newClient: ..., close: ... } })
//
// The factory makes one fresh, empty log per test; `newClient()` may be called several
// times to get clients of different "processes" on that same log.

import { describe, expect, test } from 'vitest'
import { isLogError } from '../../object-runtime/index.ts'
import type { LogClient, LogEntry, LogErrorCode } from '../../object-runtime/index.ts'

export interface LogClientFixture {
  newClient(): Promise<LogClient>
  /** Closes the clients it made and releases the log. */
  close(): Promise<void>
}

export type LogClientFactory = () => Promise<LogClientFixture>

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s)
const text = (b: Uint8Array): string => new TextDecoder().decode(b)

async function expectCode(promise: Promise<unknown>, code: LogErrorCode): Promise<void> {
  let caught: unknown = undefined
  try {
    await promise
  } catch (err) {
    caught = err
  }
  expect(isLogError(caught, code), `expected a LogError with code ${code}, got ${String(caught)}`).toBe(true)
}

/**
 * Puts conditional appends in use on a fresh log (a commit on a stream of its own). A
 * replica's leader counts keyed writes for conflicts only from the first conditional
 * append on; writes before it conflict by the watermark, not by their exact positions
 * (docs/http-api.md, "Conditional append").
 */
async function startConditions(c: LogClient): Promise<void> {
  await c.append([{ streams: ['arm'], data: bytes('arm'), keys: ['arm'] }], { reads: [{ stream: 'arm', key: 'arm', version: -1 }] })
}

async function until(cond: () => boolean, what: string, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 2))
  }
}

export function logClientConformance(name: string, factory: LogClientFactory): void {
  describe(`LogClient conformance: ${name}`, () => {
    const withLog = (title: string, body: (fx: LogClientFixture) => Promise<void>): void => {
      test(title, async () => {
        const fx = await factory()
        try {
          await body(fx)
        } finally {
          await fx.close()
        }
      })
    }

    withLog('appends get dense positions from 0, the entries of one call contiguous', async (fx) => {
      const c = await fx.newClient()
      expect(await c.append([{ streams: ['a'], data: bytes('x') }])).toEqual([0])
      expect(await c.append([
        { streams: ['a'], data: bytes('y') },
        { streams: ['b'], data: bytes('z') },
        { streams: ['a', 'b'], data: bytes('w') },
      ])).toEqual([1, 2, 3])
      expect(await c.append([])).toEqual([])
    })

    withLog('concurrent appends all land, at distinct positions', async (fx) => {
      const c = await fx.newClient()
      const results = await Promise.all(Array.from({ length: 50 }, (_, i) => c.append([{ streams: [`s${i % 3}`], data: bytes(String(i)) }])))
      const positions = results.flat().sort((x, y) => x - y)
      expect(positions).toEqual(Array.from({ length: 50 }, (_, i) => i))
      const all = await c.read({ from: 0 })
      expect(all.entries.map((e) => text(e.data)).sort()).toEqual(Array.from({ length: 50 }, (_, i) => String(i)).sort())
      for (const [i, ps] of results.entries()) expect(text(all.entries[ps[0]!]!.data)).toBe(String(i))
    })

    withLog('read returns [from, to) with positions, streams, data and non-decreasing ts; next says where to go on', async (fx) => {
      const c = await fx.newClient()
      for (let i = 0; i < 10; i++) await c.append([{ streams: [i % 2 === 0 ? 'even' : 'odd'], data: bytes(`e${i}`) }])
      const page = await c.read({ from: 2, to: 6 })
      expect(page.entries.map((e) => e.position)).toEqual([2, 3, 4, 5])
      expect(page.entries.map((e) => text(e.data))).toEqual(['e2', 'e3', 'e4', 'e5'])
      expect(page.entries[1]!.streams).toEqual(['odd'])
      expect(page.next).toBe(6)
      const limited = await c.read({ from: 0, limit: 3 })
      expect(limited.entries.map((e) => e.position)).toEqual([0, 1, 2])
      expect(limited.next).toBe(3)
      const rest = await c.read({ from: 7 })
      expect(rest.entries.map((e) => e.position)).toEqual([7, 8, 9])
      expect(rest.next).toBe(10)
      const beyond = await c.read({ from: 10 })
      expect(beyond.entries).toEqual([])
      expect(beyond.next).toBe(10)
      const all = await c.read({ from: 0 })
      let last = -Infinity
      for (const e of all.entries) {
        expect(typeof e.ts).toBe('number')
        expect(e.ts!).toBeGreaterThanOrEqual(last)
        last = e.ts!
      }
    })

    withLog('readStream returns only that stream; a multi-stream entry appears in each of its streams', async (fx) => {
      const c = await fx.newClient()
      await c.append([{ streams: ['a'], data: bytes('1') }])
      await c.append([{ streams: ['b'], data: bytes('2') }])
      await c.append([{ streams: ['a', 'b'], data: bytes('3') }])
      await c.append([{ streams: ['a'], data: bytes('4') }])
      const a = await c.readStream('a', { from: 0 })
      expect(a.entries.map((e) => e.position)).toEqual([0, 2, 3])
      expect(a.next).toBe(4)
      const b = await c.readStream('b', { from: 0 })
      expect(b.entries.map((e) => e.position)).toEqual([1, 2])
      expect(b.entries[1]!.streams).toEqual(['a', 'b'])
      const bounded = await c.readStream('a', { from: 1, to: 3 })
      expect(bounded.entries.map((e) => e.position)).toEqual([2])
      expect(bounded.next).toBe(3)
      const paged = await c.readStream('a', { from: 0, limit: 2 })
      expect(paged.entries.map((e) => e.position)).toEqual([0, 2])
      expect(paged.next).toBe(3)
      const none = await c.readStream('nothing-here', { from: 0 })
      expect(none.entries).toEqual([])
      expect(none.next).toBe(4)
    })

    withLog('tail is the next position; streams give their last position or -1', async (fx) => {
      const c = await fx.newClient()
      expect(await c.tail()).toEqual({ tail: 0, streams: {} })
      await c.append([{ streams: ['a'], data: bytes('1') }, { streams: ['b'], data: bytes('2') }, { streams: ['a'], data: bytes('3') }])
      const t = await c.tail(['a', 'b', 'c'])
      expect(t.tail).toBe(3)
      expect(t.streams).toEqual({ a: 2, b: 1, c: -1 })
    })

    withLog('tail is linearizable: it covers an append acknowledged to another client before the call', async (fx) => {
      const writer = await fx.newClient()
      const reader = await fx.newClient()
      for (let i = 0; i < 5; i++) {
        const [p] = await writer.append([{ streams: ['x'], data: bytes(String(i)) }])
        const t = await reader.tail(['x'])
        expect(t.tail).toBeGreaterThan(p!)
        expect(t.streams['x']).toBeGreaterThanOrEqual(p!)
      }
    })

    withLog('bad input answers bad_request or too_large', async (fx) => {
      const c = await fx.newClient()
      await expectCode(c.append([{ streams: [], data: bytes('x') }]), 'bad_request')
      await expectCode(c.append([{ streams: ['bad name'], data: bytes('x') }]), 'bad_request')
      await expectCode(c.append([{ streams: ['x'.repeat(201)], data: bytes('x') }]), 'bad_request')
      await expectCode(c.append([{ streams: ['ok'], data: new Uint8Array(8 << 20) }]), 'too_large')
      await expectCode(c.readStream('bad name', { from: 0 }), 'bad_request')
      await expectCode(c.read({ from: -1 }), 'bad_request')
      await expectCode(c.read({ from: 5, to: 2 }), 'bad_request')
      // Nothing above was stored.
      expect((await c.tail()).tail).toBe(0)
    })

    withLog('trim: reads below the trim point answer trimmed, never partial data; the point never goes down', async (fx) => {
      const c = await fx.newClient()
      for (let i = 0; i < 6; i++) await c.append([{ streams: ['t'], data: bytes(String(i)) }])
      await c.append([{ streams: ['t', 'keep'], data: bytes('shared') }]) // position 6
      expect((await c.trim('t', 4)).trimmedBefore).toBe(4)
      expect((await c.trim('t', 2)).trimmedBefore).toBe(4)
      await c.trim('keep', 0)
      expect((await c.tail(['t'])).streams).toEqual({ t: 6 })
      await expectCode(c.readStream('t', { from: 0 }), 'trimmed')
      await expectCode(c.readStream('t', { from: 3 }), 'trimmed')
      expect((await c.readStream('t', { from: 4 })).entries.map((e) => e.position)).toEqual([4, 5, 6])
      await expectCode(c.read({ from: 0 }), 'trimmed')
      expect((await c.read({ from: 4 })).entries.map((e) => e.position)).toEqual([4, 5, 6])
      // An entry stays while one of its streams still holds it; a fully trimmed stream keeps its last position.
      await c.trim('t', 7)
      expect((await c.tail(['t'])).streams).toEqual({ t: 6 })
      expect((await c.readStream('t', { from: 7 })).entries).toEqual([])
      expect((await c.read({ from: 6 })).entries.map((e) => text(e.data))).toEqual(['shared'])
      expect((await c.readStream('keep', { from: 0 })).entries.map((e) => e.position)).toEqual([6])
    })

    withLog('subscribe: catch-up from a position, then live entries of other clients, in order, without gaps or repeats', async (fx) => {
      const writer = await fx.newClient()
      const follower = await fx.newClient()
      for (let i = 0; i < 5; i++) await writer.append([{ streams: [i % 2 === 0 ? 'a' : 'other'], data: bytes(String(i)) }])
      const seen: LogEntry[] = []
      let lastNext = -1
      const sub = follower.subscribe(['a', 'b'], 1, (entries, next) => {
        expect(next).toBeGreaterThanOrEqual(lastNext)
        lastNext = next
        for (const e of entries) {
          expect(e.position).toBeLessThan(next)
          seen.push(e)
        }
      })
      await until(() => lastNext >= 5, 'catch-up')
      expect(seen.map((e) => e.position)).toEqual([2, 4])
      await writer.append([{ streams: ['b'], data: bytes('5') }])
      await writer.append([{ streams: ['other'], data: bytes('6') }])
      await writer.append([{ streams: ['a', 'b'], data: bytes('7') }])
      await until(() => lastNext >= 8, 'live entries')
      expect(seen.map((e) => e.position)).toEqual([2, 4, 5, 7])
      expect(seen.map((e) => text(e.data))).toEqual(['2', '4', '5', '7'])
      sub.close()
      await writer.append([{ streams: ['a'], data: bytes('8') }])
      await new Promise((resolve) => setTimeout(resolve, 20))
      expect(seen.map((e) => e.position)).toEqual([2, 4, 5, 7])
    })

    withLog('subscribe below the trim point fails with trimmed', async (fx) => {
      const c = await fx.newClient()
      for (let i = 0; i < 3; i++) await c.append([{ streams: ['t'], data: bytes(String(i)) }])
      await c.trim('t', 2)
      let failure: unknown = undefined
      c.subscribe(['t'], 0, () => undefined, (err) => {
        failure = err
      })
      await until(() => failure !== undefined, 'subscription error')
      expect(isLogError(failure, 'trimmed')).toBe(true)
    })

    withLog('after close, calls fail with closed', async (fx) => {
      const c = await fx.newClient()
      await c.append([{ streams: ['a'], data: bytes('1') }])
      await c.close()
      await c.close()
      await expectCode(c.append([{ streams: ['a'], data: bytes('2') }]), 'closed')
      await expectCode(c.read({ from: 0 }), 'closed')
      await expectCode(c.readStream('a', { from: 0 }), 'closed')
      await expectCode(c.tail(), 'closed')
    })

    withLog('conditional append: commits when no read key was written after its version', async (fx) => {
      const c = await fx.newClient()
      const [p0] = await c.append([{ streams: ['acct'], data: bytes('init'), keys: ['alice', 'bob'] }])
      const [p1] = await c.append([{ streams: ['acct', 'other'], data: bytes('tx1'), keys: ['alice'] }], {
        reads: [{ stream: 'acct', key: 'alice', version: p0! }, { stream: 'acct', key: 'bob', version: p0! }, { stream: 'other', key: 'zed', version: p0! }],
      })
      expect(p1).toBe(p0! + 1)
      const page = await c.read({ from: 0 })
      expect(page.entries.map((e) => text(e.data))).toEqual(['init', 'tx1'])
      expect(page.entries[1]!.streams).toEqual(['acct', 'other'])
    })

    withLog('conditional append: a read key written later refuses it with conflict details; nothing enters the log', async (fx) => {
      const a = await fx.newClient()
      const b = await fx.newClient()
      await startConditions(a)
      const [p0] = await a.append([{ streams: ['acct'], data: bytes('init'), keys: ['alice'] }])
      const [p1] = await b.append([{ streams: ['acct'], data: bytes('b-writes'), keys: ['alice'] }])
      let caught: unknown
      try {
        await a.append([{ streams: ['acct'], data: bytes('lost'), keys: ['alice'] }], { reads: [{ stream: 'acct', key: 'alice', version: p0! }] })
      } catch (err) {
        caught = err
      }
      expect(isLogError(caught, 'conflict'), String(caught)).toBe(true)
      expect((caught as { conflict?: unknown }).conflict).toMatchObject({ stream: 'acct', key: 'alice', version: p0!, position: p1! })
      const tail = await a.tail(['acct'])
      expect(tail.tail).toBe(p1! + 1)
      // A read at the new version commits, and the client goes on (next seq) as usual.
      await a.append([{ streams: ['acct'], data: bytes('won'), keys: ['alice'] }], { reads: [{ stream: 'acct', key: 'alice', version: p1! }] })
      await a.append([{ streams: ['acct'], data: bytes('plain') }])
      const page = await a.readStream('acct', { from: 0 })
      expect(page.entries.map((e) => text(e.data))).toEqual(['init', 'b-writes', 'won', 'plain'])
    })

    withLog('conditional append: its own request; a conflict does not touch concurrent plain appends', async (fx) => {
      const c = await fx.newClient()
      const [p0] = await c.append([{ streams: ['k'], data: bytes('w0'), keys: ['x'] }])
      await c.append([{ streams: ['k'], data: bytes('w1'), keys: ['x'] }])
      const results = await Promise.allSettled([
        c.append([{ streams: ['k'], data: bytes('p1') }]),
        c.append([{ streams: ['k'], data: bytes('cond') }], { reads: [{ stream: 'k', key: 'x', version: p0! }] }),
        c.append([{ streams: ['k'], data: bytes('p2') }]),
      ])
      expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled'])
      const page = await c.readStream('k', { from: 0 })
      expect(page.entries.map((e) => text(e.data)).sort()).toEqual(['p1', 'p2', 'w0', 'w1'])
    })

    withLog('concurrent conditional appends: each is answered on its own (committed or conflict), exactly once', async (fx) => {
      const c = await fx.newClient()
      await startConditions(c)
      const [p0] = await c.append([{ streams: ['m'], data: bytes('init'), keys: ['hot'] }])
      const [p1] = await c.append([{ streams: ['m'], data: bytes('hot-again'), keys: ['hot'] }])
      // 300 at once (more than one batch of a batching client): odd ones read `hot` at
      // the stale version p0 and must lose; even ones read their own fresh key and commit.
      const n = 300
      const results = await Promise.allSettled(
        Array.from({ length: n }, (_, i) =>
          c.append([{ streams: ['m'], data: bytes(`c${i}`), keys: [`k${i}`] }], {
            reads: i % 2 === 1 ? [{ stream: 'm', key: 'hot', version: p0! }] : [{ stream: 'm', key: `k${i}`, version: p1! }],
          }),
        ),
      )
      for (const [i, r] of results.entries()) {
        if (i % 2 === 0) {
          expect(r.status, `call ${i}: ${r.status === 'rejected' ? String(r.reason) : ''}`).toBe('fulfilled')
        } else {
          expect(r.status).toBe('rejected')
          const reason = (r as PromiseRejectedResult).reason as { conflict?: unknown }
          expect(isLogError(reason, 'conflict'), String(reason)).toBe(true)
          expect(reason.conflict).toMatchObject({ stream: 'm', key: 'hot', version: p0!, position: p1! })
        }
      }
      const page = await c.readStream('m', { from: 0, limit: 1000 })
      const logged = page.entries.map((e) => text(e.data))
      expect(logged.length).toBe(2 + n / 2)
      expect(new Set(logged).size).toBe(logged.length)
      // Each committed call answered the position its entry holds.
      for (const [i, r] of results.entries()) {
        if (r.status === 'fulfilled') expect(text(page.entries.find((e) => e.position === r.value[0])!.data)).toBe(`c${i}`)
      }
    })

    withLog('conditional append: bad reads are bad_request', async (fx) => {
      const c = await fx.newClient()
      await expectCode(c.append([{ streams: ['a'], data: bytes('1') }], { reads: [{ stream: 'a', key: '', version: 0 }] }), 'bad_request')
      await expectCode(c.append([{ streams: ['a'], data: bytes('1') }], { reads: [{ stream: 'a', key: 'k', version: -2 }] }), 'bad_request')
      await expectCode(c.append([{ streams: ['a'], data: bytes('1'), keys: [''] }]), 'bad_request')
    })
  })
}
