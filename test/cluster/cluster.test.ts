// Multi-process tests of the log service: three real replica processes on 127.0.0.1
// with LevelDB in temp dirs, killed and restarted by PID.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { decode, encode } from '@msgpack/msgpack'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { HttpLogClient } from '../../object-runtime/http-log-client.ts'
import { isLogError } from '../../object-runtime/log-client.ts'
import { ProcessCluster, sleep } from './harness.ts'

const text = (b: Uint8Array): string => new TextDecoder().decode(b)
const bytes = (s: string): Uint8Array => new TextEncoder().encode(s)

async function http(url: string, init: RequestInit & { json?: unknown } = {}): Promise<{ status: number; body: Record<string, unknown> }> {
  const headers: Record<string, string> = { accept: 'application/json' }
  if (init.json !== undefined) headers['content-type'] = 'application/json'
  const r = await fetch(url, { ...init, headers: { ...headers, ...(init.headers as Record<string, string> | undefined) }, body: init.json !== undefined ? JSON.stringify(init.json) : init.body })
  return { status: r.status, body: (await r.json()) as Record<string, unknown> }
}

/** Every entry of a replica's log, read straight from that replica. */
async function fullLog(url: string): Promise<{ position: number; data: string }[]> {
  const out: { position: number; data: string }[] = []
  let from = 0
  for (;;) {
    const r = await http(`${url}/v1/log?from=${from}&limit=1000`)
    expect(r.status).toBe(200)
    const entries = r.body.entries as { position: number; data: string }[]
    for (const e of entries) out.push({ position: e.position, data: Buffer.from(e.data, 'base64').toString() })
    const next = r.body.next as number
    if (entries.length === 0 || next <= from) return out
    from = next
  }
}

describe('a 3-replica cluster over HTTP', () => {
  let c: ProcessCluster
  let leaderUrl: string
  beforeAll(async () => {
    c = await ProcessCluster.start(3)
    leaderUrl = c.urls[await c.waitLeader()]!
  })
  afterAll(async () => {
    await c?.close()
  })

  it('appends, reads the log and one stream, answers tails and trims, in JSON', async () => {
    const a = await http(`${leaderUrl}/v1/append`, { method: 'POST', json: { entries: [{ streams: ['j1'], data: Buffer.from('one').toString('base64') }, { streams: ['j1', 'j2'], data: Buffer.from('two').toString('base64') }] } })
    expect(a.status).toBe(200)
    const [p1, p2] = a.body.positions as number[]
    expect(p2).toBe(p1! + 1)
    const s = await http(`${leaderUrl}/v1/streams/j2?from=0`)
    expect((s.body.entries as { position: number; data: string }[]).map((e) => [e.position, Buffer.from(e.data, 'base64').toString()])).toEqual([[p2, 'two']])
    const t = await http(`${leaderUrl}/v1/tail?streams=j1,j2,nothing`)
    expect(t.body).toEqual({ tail: p2! + 1, streams: { j1: p2, j2: p2, nothing: -1 } })
    const tr = await http(`${leaderUrl}/v1/streams/j1/trim`, { method: 'POST', json: { before: p2 } })
    expect(tr.body).toEqual({ trimmedBefore: p2 })
    const below = await http(`${leaderUrl}/v1/streams/j1?from=${p1}`)
    expect(below.status).toBe(410)
    expect((below.body.error as { code: string }).code).toBe('trimmed')
    const fromTrim = await http(`${leaderUrl}/v1/streams/j1?from=${p2}`)
    expect((fromTrim.body.entries as unknown[]).length).toBe(1)
  })

  it('speaks msgpack with binary data', async () => {
    const r = await fetch(`${leaderUrl}/v1/append`, {
      method: 'POST',
      headers: { 'content-type': 'application/msgpack', accept: 'application/msgpack' },
      body: encode({ entries: [{ streams: ['bin'], data: new Uint8Array([0, 255, 7]) }] }),
    })
    expect(r.status).toBe(200)
    const { positions } = decode(new Uint8Array(await r.arrayBuffer())) as { positions: number[] }
    const rr = await fetch(`${leaderUrl}/v1/streams/bin?from=0`, { headers: { accept: 'application/msgpack' } })
    const body = decode(new Uint8Array(await rr.arrayBuffer())) as { entries: { position: number; data: Uint8Array; ts: number }[] }
    expect(body.entries.map((e) => [e.position, [...e.data]])).toEqual([[positions[0], [0, 255, 7]]])
    expect(body.entries[0]!.ts).toBeGreaterThan(1_600_000_000_000) // log time is the leader's wall clock
  })

  it('followers serve reads, forward writes and tails to the leader, or answer 421 with the leader URL when asked not to forward', async () => {
    const f = c.urls.find((u) => u !== leaderUrl)!
    const w = await http(`${f}/v1/append`, { method: 'POST', json: { entries: [{ streams: ['x'], data: 'AA==' }] }, headers: { 'x-quipu-forward': 'false' } })
    expect(w.status).toBe(421)
    expect(w.body.error).toMatchObject({ code: 'not_leader', leader: leaderUrl })
    const fw = await http(`${f}/v1/append`, { method: 'POST', json: { entries: [{ streams: ['x'], data: 'AA==' }] } })
    expect(fw.status).toBe(200)
    const [pos] = fw.body.positions as number[]
    const t = await http(`${f}/v1/tail?streams=x`)
    expect(t.body).toMatchObject({ streams: { x: pos } })
    const tr = await http(`${f}/v1/streams/never-written/trim`, { method: 'POST', json: { before: 0 } })
    expect(tr.status).toBe(200)
    const r = await http(`${f}/v1/log?from=0&limit=1`)
    expect(r.status).toBe(200)
  })

  it('rejects bad input with the documented code and keeps serving', async () => {
    const cases: [RequestInit & { json?: unknown }, string, number, string][] = [
      [{ method: 'POST', body: '{nope', headers: { 'content-type': 'application/json' } }, '/v1/append', 400, 'bad_request'],
      [{ method: 'POST', body: new Uint8Array([0xc1, 0xc1]), headers: { 'content-type': 'application/msgpack' } }, '/v1/append', 400, 'bad_request'],
      [{ method: 'POST', json: { entries: [{ streams: ['bad name'], data: 'AA==' }] } }, '/v1/append', 400, 'bad_request'],
      [{ method: 'POST', json: { entries: [{ streams: ['ok'], data: 42 }] } }, '/v1/append', 400, 'bad_request'],
      [{ method: 'POST', json: { entries: [] } }, '/v1/append', 400, 'bad_request'],
      [{ method: 'POST', json: { entries: [{ streams: ['ok'], data: Buffer.alloc(1_100_000).toString('base64') }] } }, '/v1/append', 413, 'too_large'],
      [{}, '/v1/log?from=-1', 400, 'bad_request'],
      [{}, '/v1/log?from=1.5', 400, 'bad_request'],
      [{}, '/v1/streams/ok?from=abc', 400, 'bad_request'],
      [{ method: 'POST', json: { before: -3 } }, '/v1/streams/ok/trim', 400, 'bad_request'],
      [{}, '/v1/nothing-here', 404, 'not_found'],
    ]
    for (const [init, path, status, code] of cases) {
      const r = await http(`${leaderUrl}${path}`, init)
      expect([path, r.status, (r.body.error as { code: string } | undefined)?.code]).toEqual([path, status, code])
      const ok = await http(`${leaderUrl}/v1/status`)
      expect(ok.status).toBe(200)
    }
  })

  it('pushes newly committed entries to subscribers, resumable from `next`', async () => {
    const client = new HttpLogClient({ servers: c.urls })
    try {
      const got: string[] = []
      let next = 0
      const base = (await client.tail()).tail
      const sub = client.subscribe(['sub'], base, (entries, n) => {
        for (const e of entries) got.push(text(e.data))
        next = n
      })
      await client.append([{ streams: ['sub'], data: bytes('s1') }, { streams: ['other'], data: bytes('o1') }, { streams: ['sub'], data: bytes('s2') }])
      for (let i = 0; i < 200 && got.length < 2; i++) await sleep(10)
      expect(got).toEqual(['s1', 's2'])
      sub.close()
      await client.append([{ streams: ['sub'], data: bytes('s3') }])
      const again: string[] = []
      const sub2 = client.subscribe(['sub'], next, (entries) => {
        for (const e of entries) again.push(text(e.data))
      })
      for (let i = 0; i < 200 && again.length < 1; i++) await sleep(10)
      sub2.close()
      expect(again).toEqual(['s3'])
    } finally {
      await client.close()
    }
  })

  it('per-entry conditions: one append commits some entries and refuses others, and a retry answers the same', async () => {
    // Conditional appends in use (the leader counts keyed writes from the first one on).
    const tail = await http(`${leaderUrl}/v1/tail`)
    const arm = await http(`${leaderUrl}/v1/append`, {
      method: 'POST',
      json: { entries: [{ streams: ['pe-arm'], data: '', keys: ['k'] }], reads: [{ stream: 'pe-arm', key: 'k', version: (tail.body.tail as number) - 1 }] },
    })
    expect(arm.status, JSON.stringify(arm.body)).toBe(200)
    const w = await http(`${leaderUrl}/v1/append`, { method: 'POST', json: { entries: [{ streams: ['pe'], data: Buffer.from('w').toString('base64'), keys: ['a'] }] } })
    expect(w.status, JSON.stringify(w.body)).toBe(200)
    const pa = (w.body.positions as number[])[0]!
    const body = {
      clientId: 'pe-client',
      seq: 1,
      entries: [
        { streams: ['pe'], data: Buffer.from('stale').toString('base64'), keys: ['b'], reads: [{ stream: 'pe', key: 'a', version: pa - 1 }] },
        { streams: ['pe'], data: Buffer.from('fresh').toString('base64'), keys: ['a'], reads: [{ stream: 'pe', key: 'a', version: pa }] },
        { streams: ['pe'], data: Buffer.from('after').toString('base64'), keys: ['c'], reads: [{ stream: 'pe', key: 'a', version: pa }] },
      ],
    }
    const r = await http(`${leaderUrl}/v1/append`, { method: 'POST', json: body })
    expect(r.status, JSON.stringify(r.body)).toBe(200)
    const positions = r.body.positions as number[]
    expect(positions[0]).toBe(-1)
    expect(positions[1]).toBeGreaterThan(pa)
    expect(positions[2]).toBe(-1) // it read a, which entry 1 (sequenced before it) writes
    expect(r.body.refused).toEqual([
      { index: 0, conflict: { stream: 'pe', key: 'a', version: pa - 1, position: pa } },
      { index: 2, conflict: { stream: 'pe', key: 'a', version: pa, position: -1 } },
    ])
    // Exactly-once: the same (clientId, seq) again, through a follower, gets the same answer.
    const follower = c.urls.find((u) => u !== leaderUrl)!
    const again = await http(`${follower}/v1/append`, { method: 'POST', json: body })
    expect(again.status).toBe(200)
    expect(again.body).toEqual(r.body)
    const stream = await http(`${leaderUrl}/v1/streams/pe?from=0`)
    expect((stream.body.entries as { data: string }[]).map((e) => Buffer.from(e.data, 'base64').toString())).toEqual(['w', 'fresh'])
  })
})

describe('failures of real processes', () => {
  it('kill -9 of the leader while clients append: a new leader serves within 2 s, and every acknowledged append is present exactly once, in the same order on all replicas', async () => {
    const c = await ProcessCluster.start(3)
    try {
      const leader = await c.waitLeader()
      const acked = new Map<string, number>()
      let killedAt = 0
      let firstAckAfterKill = 0
      const stopAt = Date.now() + 4_000
      const clients = Array.from({ length: 4 }, () => new HttpLogClient({ servers: c.urls, deadlineMs: 8_000 }))
      const work = clients.map(async (cl, k) => {
        for (let i = 0; i < 5_000 && Date.now() < stopAt; i++) {
          const payload = `c${k}-${i}`
          const [pos] = await cl.append([{ streams: [`k${k}`], data: bytes(payload) }])
          acked.set(payload, pos!)
          if (killedAt > 0 && firstAckAfterKill === 0) firstAckAfterKill = Date.now()
        }
      })
      await sleep(800)
      killedAt = Date.now()
      await c.kill(leader, 'SIGKILL')
      await Promise.all(work)
      await Promise.all(clients.map((cl) => cl.close()))
      expect(firstAckAfterKill).toBeGreaterThan(0)
      expect(firstAckAfterKill - killedAt).toBeLessThan(2_000)
      // The killed replica comes back and catches up.
      c.spawn(leader)
      await c.waitServing(leader)
      const max = Math.max(...acked.values())
      await c.waitCommit(max + 1, 15_000)
      const logs = await Promise.all(c.urls.map((u) => fullLog(u)))
      for (const log of logs.slice(1)) expect(log).toEqual(logs[0])
      const seen = new Map<string, number>()
      for (const e of logs[0]!) {
        expect(seen.has(e.data), `entry ${e.data} stored twice`).toBe(false)
        seen.set(e.data, e.position)
      }
      for (const [payload, pos] of acked) expect(seen.get(payload), payload).toBe(pos)
      expect(acked.size).toBeGreaterThan(50)
    } finally {
      await c.close()
    }
  })

  it('a stopped follower catches up after restart; a wiped one rejoins as a non-voting learner, refills, and only then votes', async () => {
    const c = await ProcessCluster.start(3)
    const client = new HttpLogClient({ servers: c.urls })
    try {
      const leader = await c.waitLeader()
      const f = (leader + 1) % 3
      await c.kill(f, 'SIGTERM')
      for (let i = 0; i < 20; i++) await client.append(Array.from({ length: 10 }, (_, j) => ({ streams: ['cu'], data: bytes(`a${i}.${j}`) })))
      c.spawn(f)
      await c.waitServing(f)
      await c.waitCommit(200, 10_000, [f])

      const before = (await c.status(f))!
      await c.kill(f, 'SIGKILL')
      for (let i = 0; i < 10; i++) await client.append(Array.from({ length: 10 }, (_, j) => ({ streams: ['cu'], data: bytes(`b${i}.${j}`) })))
      const target = (await client.tail()).tail
      await c.restart(f, { wipe: true })
      // Watch it: while it has not caught up to where the cluster was, it must not vote.
      const seen: { voting: boolean; role: string; commitPosition: number; incarnation: number }[] = []
      const deadline = Date.now() + 15_000
      while (Date.now() < deadline) {
        const s = await c.status(f)
        if (s) seen.push({ voting: s.voting, role: s.role, commitPosition: s.commitPosition, incarnation: s.incarnation })
        if (s && s.voting && s.commitPosition >= target) break
        await sleep(5)
      }
      const last = seen[seen.length - 1]!
      expect(last.voting).toBe(true)
      expect(last.incarnation).toBeGreaterThan(before.incarnation)
      for (const s of seen) if (s.voting) expect(s.commitPosition).toBeGreaterThanOrEqual(target)
      expect(c.output(f)).toMatch(/empty data dir/)
      await c.waitCommit(target, 10_000, [f])
      expect((await fullLog(c.urls[f]!)).length).toBe(target)
    } finally {
      await client.close()
      await c.close()
    }
  })

  it('with two of three replicas down appends fail with unavailable within the deadline, and succeed once one returns', async () => {
    const c = await ProcessCluster.start(3)
    const client = new HttpLogClient({ servers: c.urls, deadlineMs: 3_000 })
    try {
      const leader = await c.waitLeader()
      await client.append([{ streams: ['q'], data: bytes('before') }])
      const down = [(leader + 1) % 3, (leader + 2) % 3]
      for (const d of down) await c.kill(d, 'SIGKILL')
      const t0 = Date.now()
      let err: unknown = null
      try {
        await client.append([{ streams: ['q'], data: bytes('during') }])
      } catch (e) {
        err = e
      }
      expect(isLogError(err, 'unavailable'), String(err)).toBe(true)
      expect(Date.now() - t0).toBeLessThan(3_000 + 2_000)
      // The survivor keeps answering, with 503 unavailable (after the check-quorum step-down).
      await sleep(1_000)
      const direct = await http(`${c.urls[leader]}/v1/append`, { method: 'POST', json: { entries: [{ streams: ['q'], data: 'AA==' }] } })
      expect(direct.status).toBe(503)
      expect((direct.body.error as { code: string }).code).toBe('unavailable')
      c.spawn(down[0]!)
      await c.waitServing(down[0]!)
      const ok = new HttpLogClient({ servers: c.urls, deadlineMs: 10_000 })
      const [p] = await ok.append([{ streams: ['q'], data: bytes('after') }])
      await ok.close()
      expect(p).toBeGreaterThanOrEqual(1)
    } finally {
      await client.close()
      await c.close()
    }
  })

  it('a replica that finds corrupt bytes on its disk refuses to serve them and refetches them from a peer', async () => {
    const c = await ProcessCluster.start(3)
    const client = new HttpLogClient({ servers: c.urls })
    try {
      const leader = await c.waitLeader()
      const f = (leader + 1) % 3
      // No repeated runs: snappy would compress them and the marker would not appear as is.
      const marker = `CORRUPTME-${Math.random().toString(36).slice(2)}-${Date.now().toString(36)}-qwertyuiop`
      await client.append([{ streams: ['cr'], data: bytes('first') }])
      await client.append([{ streams: ['cr'], data: bytes(marker) }])
      await client.append([{ streams: ['cr'], data: bytes('last') }])
      await c.waitCommit(3, 10_000, [f])
      // Stop it twice so that LevelDB moves its write-ahead log into a table file.
      await c.kill(f, 'SIGTERM')
      c.spawn(f)
      await c.waitServing(f)
      await c.kill(f, 'SIGTERM')
      let flipped = false
      for (const file of readdirSync(c.dirs[f]!).filter((x) => x.endsWith('.ldb') || x.endsWith('.log'))) {
        const path = join(c.dirs[f]!, file)
        const buf = readFileSync(path)
        const at = buf.indexOf(Buffer.from(marker))
        if (at < 0) continue
        buf[at + 12] = buf[at + 12]! ^ 0xff
        writeFileSync(path, buf)
        flipped = true
      }
      expect(flipped).toBe(true)
      c.spawn(f)
      await c.waitServing(f)
      const r = await http(`${c.urls[f]}/v1/streams/cr?from=0`)
      expect(r.status, `${JSON.stringify(r.body)}\n${c.output(f)}`).toBe(200)
      expect((r.body.entries as { data: string }[]).map((e) => Buffer.from(e.data, 'base64').toString())).toEqual(['first', marker, 'last'])
      expect(c.output(f)).toMatch(/corrupt|missing/)
    } finally {
      await client.close()
      await c.close()
    }
  })
})
