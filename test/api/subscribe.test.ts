// GET /v1/subscribe over a real listening server (127.0.0.1, port 0): a WebSocket client
// receiving pushed msgpack/JSON frames and resuming from `next`, error frames and close
// codes, the streamed newline-delimited JSON fallback, limits, keep-alive and shutdown.

import http from 'node:http'
import { decode } from '@msgpack/msgpack'
import WebSocket from 'ws'
import { afterEach, describe, expect, it, vi } from 'vitest'
import type { FastifyInstance } from 'fastify'
import { buildServer } from '../../log-server/api/server.ts'
import type { HttpLimits } from '../../log-server/api/limits.ts'
import { QuipuError } from '../../log-server/errors.ts'
import { FakeReplica } from './fake-replica.ts'
import { b64 } from './helpers.ts'

interface Frame {
  entries?: { position: number; streams: string[]; data: Uint8Array | string; ts: number }[]
  next?: number
  error?: { code: string; message: string; [k: string]: unknown }
}

/** Polls until `check` passes; generous, because the 2 cores are shared with other suites. */
function eventually(check: () => void): Promise<void> {
  return vi.waitFor(check, { timeout: 10_000, interval: 10 })
}

const servers: FastifyInstance[] = []
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close()
})

async function start(limits?: Partial<HttpLimits>): Promise<{ app: FastifyInstance; replica: FakeReplica; base: string }> {
  const replica = new FakeReplica()
  const app = buildServer({ replica, limits })
  servers.push(app)
  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  return { app, replica, base }
}

async function append(app: FastifyInstance, streams: string[], text: string): Promise<number> {
  const res = await app.inject({ method: 'POST', url: '/v1/append', payload: { entries: [{ streams, data: b64(text) }] } })
  expect(res.statusCode, res.body).toBe(200)
  return (res.json() as { positions: number[] }).positions[0]!
}

class WsClient {
  readonly frames: Frame[] = []
  readonly binary: boolean[] = []
  pings = 0
  closed: { code: number; reason: string } | undefined

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      this.binary.push(isBinary)
      this.frames.push((isBinary ? decode(data) : JSON.parse(data.toString())) as Frame)
    })
    ws.on('ping', () => this.pings++)
    ws.on('close', (code: number, reason: Buffer) => {
      this.closed = { code, reason: reason.toString() }
    })
  }

  static open(url: string): Promise<WsClient> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url)
      const client = new WsClient(ws)
      ws.once('open', () => resolve(client))
      ws.once('unexpected-response', (_req, res) => reject(new Error(`unexpected response ${res.statusCode}`)))
      ws.once('error', reject)
    })
  }

  /** Positions received so far, in order. */
  positions(): number[] {
    return this.frames.flatMap((f) => (f.entries ?? []).map((e) => e.position))
  }

  lastNext(): number {
    const withNext = this.frames.filter((f) => f.next !== undefined)
    return withNext[withNext.length - 1]!.next!
  }

  async close(): Promise<void> {
    if (this.closed !== undefined) return
    const done = new Promise<void>((r) => this.ws.once('close', () => r()))
    this.ws.close()
    await done
  }
}

const wsUrl = (base: string, query: string): string => `${base.replace(/^http/, 'ws')}/v1/subscribe?${query}`

describe('WebSocket subscription', () => {
  it('pushes stored then new entries as msgpack, and resumes from next with no gaps or repeats', async () => {
    const { app, replica, base } = await start()
    await append(app, ['a'], 'a0')
    await append(app, ['b'], 'b1')
    await append(app, ['a', 'b'], 'ab2')

    const c1 = await WsClient.open(wsUrl(base, 'streams=a&from=0'))
    await eventually(() => expect(c1.positions()).toEqual([0, 2]))
    expect(c1.frames[0]).toEqual({ entries: [], next: 0 })
    expect(c1.binary.every((b) => b)).toBe(true)
    const first = c1.frames.find((f) => (f.entries ?? []).length > 0)!.entries![0]!
    expect(Buffer.from(first.data as Uint8Array).toString()).toBe('a0')
    expect(first.streams).toEqual(['a'])
    expect(typeof first.ts).toBe('number')

    await append(app, ['a'], 'a3')
    await eventually(() => expect(c1.positions()).toEqual([0, 2, 3]))
    await eventually(() => expect(c1.lastNext()).toBe(4))
    await c1.close()
    await eventually(() => expect(replica.openSubscriptions).toBe(0))

    // Written while nobody listens.
    await append(app, ['a'], 'a4')
    await append(app, ['b'], 'b5')
    const c2 = await WsClient.open(wsUrl(base, `streams=a&from=${c1.lastNext()}`))
    await eventually(() => expect(c2.positions()).toEqual([4]))
    await eventually(() => expect(c2.lastNext()).toBe(6))
    expect([...c1.positions(), ...c2.positions()]).toEqual([0, 2, 3, 4])
    await c2.close()
  })

  it('without streams: every entry; ?format=json: text frames with base64 data', async () => {
    const { app, base } = await start()
    await append(app, ['x'], 'hello')
    await append(app, ['y'], 'world')
    const c = await WsClient.open(wsUrl(base, 'from=0&format=json'))
    await eventually(() => expect(c.positions()).toEqual([0, 1]))
    expect(c.binary.every((b) => !b)).toBe(true)
    const e = c.frames.flatMap((f) => f.entries ?? [])[1]!
    expect(e.data).toBe(b64('world'))
    await c.close()
  })

  it('splits a large batch into frames of frameEntriesMax, each next resumable', async () => {
    const { app, base } = await start({ frameEntriesMax: 2 })
    for (let i = 0; i < 5; i++) await append(app, ['s'], `e${i}`)
    const c = await WsClient.open(wsUrl(base, 'streams=s&from=0'))
    await eventually(() => expect(c.positions()).toEqual([0, 1, 2, 3, 4]))
    const data = c.frames.filter((f) => (f.entries ?? []).length > 0)
    expect(data.map((f) => f.entries!.length)).toEqual([2, 2, 1])
    expect(data.map((f) => f.next)).toEqual([2, 4, 5])
    await c.close()
  })

  it('a trimmed start: error frame { error: trimmed }, then close code 4410', async () => {
    const { app, base } = await start()
    await append(app, ['a'], '0')
    await append(app, ['a'], '1')
    await app.inject({ method: 'POST', url: '/v1/streams/a/trim', payload: { before: 2 } })
    const c = await WsClient.open(wsUrl(base, 'streams=a&from=0'))
    await eventually(() => expect(c.closed).toBeDefined())
    const last = c.frames[c.frames.length - 1]!
    expect(last.error?.code).toBe('trimmed')
    expect(typeof last.error?.message).toBe('string')
    expect(c.closed).toEqual({ code: 4410, reason: 'trimmed' })
  })

  it('a failure under a live subscriber: error frame after the entries, close 4000 + status', async () => {
    const { app, replica, base } = await start()
    await append(app, ['a'], '0')
    const c = await WsClient.open(wsUrl(base, 'streams=a&from=0'))
    await eventually(() => expect(c.lastNext()).toBe(1))
    replica.failSubscriptions(new QuipuError('trimmed', 'stream a trimmed before 5'))
    await eventually(() => expect(c.closed).toBeDefined())
    expect(c.frames[c.frames.length - 1]!.error).toEqual({ code: 'trimmed', message: 'stream a trimmed before 5' })
    expect(c.closed).toEqual({ code: 4410, reason: 'trimmed' })
    expect(c.positions()).toEqual([0])
  })

  it('an unexpected replica failure: internal, with a generic message', async () => {
    const { replica, base } = await start()
    const c = await WsClient.open(wsUrl(base, 'from=0'))
    await eventually(() => expect(replica.openSubscriptions).toBe(1))
    replica.failSubscriptions(new TypeError('secret detail'))
    await eventually(() => expect(c.closed).toBeDefined())
    expect(c.frames[c.frames.length - 1]!.error).toEqual({ code: 'internal', message: 'internal error' })
    expect(c.closed!.code).toBe(4500)
  })

  it('a synchronous failure of replica.subscribe: error frame, close 4000 + status', async () => {
    const { replica, base } = await start()
    replica.failNext('subscribe', new QuipuError('not_leader', 'ask the leader', { leader: 'http://127.0.0.1:9' }))
    const c = await WsClient.open(wsUrl(base, 'from=0'))
    await eventually(() => expect(c.closed).toBeDefined())
    expect(c.frames[c.frames.length - 1]!.error).toMatchObject({ code: 'not_leader', leader: 'http://127.0.0.1:9' })
    expect(c.closed!.code).toBe(4421)
  })

  it('a bad query is refused before the upgrade (HTTP 400)', async () => {
    const { base } = await start()
    await expect(WsClient.open(wsUrl(base, 'from=-1'))).rejects.toThrow(/400/)
    await expect(WsClient.open(wsUrl(base, 'from=0&streams=a%20b'))).rejects.toThrow(/400/)
    await expect(WsClient.open(wsUrl(base, 'streams=a'))).rejects.toThrow(/400/)
    // Still serving.
    const c = await WsClient.open(wsUrl(base, 'from=0'))
    await c.close()
  })

  it('subscriptionsMax: one more is refused with 429 before the upgrade', async () => {
    const { base, replica } = await start({ subscriptionsMax: 1 })
    const c = await WsClient.open(wsUrl(base, 'from=0'))
    await expect(WsClient.open(wsUrl(base, 'from=0'))).rejects.toThrow(/429/)
    await c.close()
    await eventually(() => expect(replica.openSubscriptions).toBe(0))
    const again = await WsClient.open(wsUrl(base, 'from=0'))
    await again.close()
  })

  it('keep-alive pings go out every subscriptionKeepAliveMs', async () => {
    const { base } = await start({ subscriptionKeepAliveMs: 100 })
    const c = await WsClient.open(wsUrl(base, 'from=0'))
    await eventually(() => expect(c.pings).toBeGreaterThanOrEqual(2))
    expect(c.closed).toBeUndefined()
    await c.close()
  })

  it('shutdown: every subscriber gets { error: unavailable, next } and close 4503; close() resolves', async () => {
    const { app, base } = await start()
    await append(app, ['a'], '0')
    const c = await WsClient.open(wsUrl(base, 'streams=a&from=0'))
    await eventually(() => expect(c.lastNext()).toBe(1))
    await app.close()
    await eventually(() => expect(c.closed).toBeDefined())
    expect(c.frames[c.frames.length - 1]!.error).toMatchObject({ code: 'unavailable', next: 1 })
    expect(c.closed!.code).toBe(4503)
  })
})

// --- streamed HTTP (no upgrade) ---------------------------------------------------------

interface NdjsonStream {
  readonly status: number
  readonly contentType: string
  readonly lines: Frame[]
  ended: boolean
  close(): void
}

function ndjson(url: string): Promise<NdjsonStream> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, (res) => {
      let buffered = ''
      const out: NdjsonStream = {
        status: res.statusCode ?? 0,
        contentType: String(res.headers['content-type']),
        lines: [],
        ended: false,
        close: () => req.destroy(),
      }
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => {
        buffered += chunk
        let nl: number
        while ((nl = buffered.indexOf('\n')) >= 0) {
          const line = buffered.slice(0, nl)
          buffered = buffered.slice(nl + 1)
          if (line !== '') out.lines.push(JSON.parse(line) as Frame)
        }
      })
      res.on('end', () => {
        out.ended = true
        if (buffered !== '') out.lines.push(JSON.parse(buffered) as Frame)
      })
      res.on('error', () => {})
      resolve(out)
    })
    req.on('error', reject)
  })
}

describe('streamed HTTP subscription (newline-delimited JSON)', () => {
  it('streams frames as lines, data base64; a replica failure ends it with an error line', async () => {
    const { app, base, replica } = await start()
    await append(app, ['a'], 'a0')
    const s = await ndjson(`${base}/v1/subscribe?streams=a&from=0`)
    expect(s.status).toBe(200)
    expect(s.contentType).toMatch(/^application\/x-ndjson/)
    await eventually(() => expect(s.lines.flatMap((l) => l.entries ?? []).map((e) => e.position)).toEqual([0]))
    expect(s.lines[0]).toEqual({ entries: [], next: 0 })
    expect(s.lines.flatMap((l) => l.entries ?? [])[0]!.data).toBe(b64('a0'))
    await append(app, ['a'], 'a1')
    await eventually(() => expect(s.lines.flatMap((l) => l.entries ?? []).map((e) => e.position)).toEqual([0, 1]))

    replica.failSubscriptions(new QuipuError('trimmed', 'gone'))
    await eventually(() => expect(s.ended).toBe(true))
    expect(s.lines[s.lines.length - 1]).toEqual({ error: { code: 'trimmed', message: 'gone' } })
    expect(replica.openSubscriptions).toBe(0)
  })

  it('a trimmed start: 200, the opening line, then the error line', async () => {
    const { app, base } = await start()
    await append(app, ['a'], '0')
    await app.inject({ method: 'POST', url: '/v1/streams/a/trim', payload: { before: 1 } })
    const s = await ndjson(`${base}/v1/subscribe?streams=a&from=0`)
    await eventually(() => expect(s.ended).toBe(true))
    expect(s.status).toBe(200)
    expect(s.lines[0]).toEqual({ entries: [], next: 0 })
    expect(s.lines[s.lines.length - 1]!.error?.code).toBe('trimmed')
  })

  it('a synchronous subscribe failure is a plain HTTP error', async () => {
    const { base, replica } = await start()
    replica.failNext('subscribe', new QuipuError('unavailable', 'no quorum'))
    const s = await ndjson(`${base}/v1/subscribe?from=0`)
    await eventually(() => expect(s.ended).toBe(true))
    expect(s.status).toBe(503)
    expect(s.lines[0]!.error?.code).toBe('unavailable')
  })

  it('the client going away closes the replica subscription', async () => {
    const { base, replica } = await start()
    const s = await ndjson(`${base}/v1/subscribe?from=0`)
    await eventually(() => expect(replica.openSubscriptions).toBe(1))
    s.close()
    await eventually(() => expect(replica.openSubscriptions).toBe(0))
  })

  it('keep-alive: empty frames at the last next', async () => {
    const { app, base } = await start({ subscriptionKeepAliveMs: 20 })
    await append(app, ['a'], '0')
    const s = await ndjson(`${base}/v1/subscribe?streams=a&from=0`)
    await eventually(() => expect(s.lines.filter((l) => l.entries?.length === 0 && l.next === 1).length).toBeGreaterThanOrEqual(2))
    s.close()
  })

  it('shutdown ends the stream with an unavailable line, and close() resolves', async () => {
    const { app, base } = await start()
    const s = await ndjson(`${base}/v1/subscribe?from=0`)
    await eventually(() => expect(s.lines.length).toBeGreaterThan(0))
    await app.close()
    await eventually(() => expect(s.ended).toBe(true))
    expect(s.lines[s.lines.length - 1]!.error?.code).toBe('unavailable')
  })
})

describe('a server with no replica calls in flight keeps answering plain requests while subscriptions run', () => {
  it('status and reads during a live subscription', async () => {
    const { base } = await start()
    const c = await WsClient.open(wsUrl(base, 'from=0'))
    const res = await fetch(`${base}/v1/status`)
    expect(res.status).toBe(200)
    await c.close()
  })
})
