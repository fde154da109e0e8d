import { describe, expect, it } from 'vitest'
import { MiniCluster as BaseCluster, append } from './harness.ts'
import type { CoreConfig } from '../../log-server/paxos/config.ts'


// Every test runs twice (core.test.ts, core-early.test.ts): with the leader's own
// accept counted at once, and with earlyAccepts (counted only once the driver reports
// it persisted), which production replicas run.
export function coreSuite(early: boolean): void {
  class MiniCluster extends BaseCluster {
    constructor(n: number, seed = 1, overrides: Partial<CoreConfig> = {}) {
      super(n, seed, { earlyAccepts: early, ...overrides })
    }
  }

  describe('paxos core on a fault-free network', () => {
    it('elects a leader and chooses proposals in order on every replica (3 and 5 replicas)', () => {
      for (const n of [3, 5]) {
        const c = new MiniCluster(n)
        const l = c.elect()
        const ids = [c.propose(l, append('a', 'x')), c.propose(l, append('b', 'y')), c.propose(l, append('a', 'z'))]
        c.deliverAll()
        c.tick(5)
        const firsts = ids.map((id) => {
          const r = c.results.get(id)
          expect(r?.ok).toBe(true)
          return r?.ok ? r.firstPosition : -1
        })
        expect(firsts).toEqual([0, 1, 2])
        for (let i = 0; i < n; i++) expect(c.cores[i]!.status().nextPosition).toBe(3)
        const logs = c.chosen.map((recs) => recs.map((r) => JSON.stringify([r.slot, r.firstPosition, r.ts, r.outcomes])))
        for (const log of logs) expect(log).toEqual(logs[0])
      }
    })

    it('a retried append (same clientId, seq) yields its original positions and is stored once', () => {
      const c = new MiniCluster(3)
      const l = c.elect()
      const a = c.propose(l, { kind: 'append', clientId: 'c1', seq: 1, entries: [{ streams: ['s'], data: new Uint8Array(1) }, { streams: ['s'], data: new Uint8Array(1) }] })
      c.deliverAll()
      const b = c.propose(l, append('s', 'other'))
      c.deliverAll()
      const again = c.propose(l, { kind: 'append', clientId: 'c1', seq: 1, entries: [{ streams: ['s'], data: new Uint8Array(1) }, { streams: ['s'], data: new Uint8Array(1) }] })
      c.deliverAll()
      c.tick(3)
      const ra = c.results.get(a)!
      const rb = c.results.get(b)!
      const rr = c.results.get(again)!
      expect(ra.ok && ra.firstPosition).toBe(0)
      expect(rb.ok && rb.firstPosition).toBe(2)
      expect(rr.ok && rr.firstPosition).toBe(0)
      for (let i = 0; i < 3; i++) expect(c.cores[i]!.status().nextPosition).toBe(3)
    })

    it('sessions are evicted in an order the chosen log alone decides: a restarted replica evicts the same client', () => {
      const c = new MiniCluster(3, 1, { sessionsMax: 2 })
      const l = c.elect()
      c.tick(2)
      // One slot with appends of clients b then a.
      const out = c.cores[l]!.proposeBatch([
        { requestId: 9001, op: append('s', 'x', 'b', 1) },
        { requestId: 9002, op: append('s', 'y', 'a', 1) },
      ])
      c.handle(l, out)
      c.deliverAll()
      c.tick(3)
      const f = (l + 1) % 3
      c.crash(f)
      c.restart(f) // sessions reloaded from its disk
      c.tick(3)
      c.propose(l, append('s', 'z', 'c', 1)) // a third client: one of a, b is evicted
      c.deliverAll()
      c.tick(5)
      const kept = c.cores.map((core) => [...core!.applied.sessions.keys()].sort().join(','))
      expect(kept[0]).toBe('b,c') // least recently active first; within a slot, by client id
      expect(new Set(kept).size).toBe(1)
    })

    it('read-index answers the tail after a quorum confirms leadership', () => {
      const c = new MiniCluster(3)
      const l = c.elect()
      c.propose(l, append('s', 'a'))
      c.deliverAll()
      const r = c.readIndex(l)
      expect(c.reads.has(r)).toBe(false) // needs a round trip
      c.deliverAll()
      const res = c.reads.get(r)
      expect(res?.ok && res.tail).toBe(1)
      const f = (l + 1) % 3
      const rf = c.readIndex(f)
      expect(c.reads.get(rf)).toMatchObject({ ok: false, code: 'not_leader', leader: l })
    })

    it('fails over when the leader crashes, and recovers its accepted values', () => {
      const c = new MiniCluster(3)
      const l = c.elect()
      for (let i = 0; i < 10; i++) c.propose(l, append('s', `v${i}`))
      c.deliverAll()
      c.crash(l)
      c.tick(60)
      const l2 = c.leader()
      expect(l2).not.toBeNull()
      expect(l2).not.toBe(l)
      const rid = c.propose(l2!, append('s', 'after'))
      c.deliverAll()
      c.tick(2)
      const r = c.results.get(rid)
      expect(r?.ok && r.firstPosition).toBe(10)
      c.restart(l)
      c.tick(30)
      expect(c.cores[l]!.status().nextPosition).toBe(11)
    })

    it('chosen records kept in memory are bounded by bytes as well as by count; a replica that missed older ones catches up from storage', () => {
      const c = new MiniCluster(3, 1, { recentChosenBytesMax: 1_000 })
      const l = c.elect()
      const f = (l + 1) % 3
      c.crash(f)
      const text = 'x'.repeat(99) // 100 payload bytes per slot with the stream name
      for (let i = 0; i < 40; i++) {
        c.propose(l, append('s', text))
        c.deliverAll()
      }
      const kept = c.cores[l]!.recentSize()
      expect(kept.bytes).toBeLessThanOrEqual(1_000)
      expect(kept.slots).toBeGreaterThanOrEqual(9)
      expect(kept.slots).toBeLessThan(40)
      // Slot 0 is gone from memory: the follower's catch-up is served from storage.
      expect(c.cores[l]!.recentRecord(0)).toBeUndefined()
      c.restart(f)
      c.tick(40)
      c.deliverAll()
      expect(c.cores[f]!.status().nextPosition).toBe(40)
      expect(c.chosen[f]!.flatMap((r) => r.value.ops)).toEqual(c.chosen[l]!.filter((r) => r.slot >= c.chosen[f]![0]!.slot).flatMap((r) => r.value.ops))
    })

    it('a wiped replica rejoins as a learner with a new incarnation, then votes', () => {
      const c = new MiniCluster(3)
      const l = c.elect()
      for (let i = 0; i < 5; i++) c.propose(l, append('s', `v${i}`))
      c.deliverAll()
      const f = (l + 1) % 3
      const inc = c.cores[f]!.status().incarnation
      c.restart(f, true)
      expect(c.cores[f]!.status().role).toBe('joining')
      c.tick(40)
      const st = c.cores[f]!.status()
      expect(st.incarnation).toBeGreaterThan(inc)
      expect(st.voting).toBe(true)
      expect(st.nextPosition).toBe(5)
    })

    it('log time never goes backwards', () => {
      const c = new MiniCluster(3)
      const l = c.elect()
      c.propose(l, append('s', 'a'))
      c.deliverAll()
      c.now -= 5_000 // the leader's clock jumps back
      c.propose(l, append('s', 'b'))
      c.deliverAll()
      const ts = c.chosen[l]!.map((r) => r.ts)
      for (let i = 1; i < ts.length; i++) expect(ts[i]!).toBeGreaterThanOrEqual(ts[i - 1]!)
    })
  })

  describe('single-node development log', () => {
    it('elects itself and chooses without peers', () => {
      const c = new MiniCluster(1)
      const l = c.elect()
      expect(l).toBe(0)
      const id = c.propose(0, append('s', 'solo'))
      const r = c.results.get(id)
      expect(r?.ok && r.firstPosition).toBe(0)
      const rd = c.readIndex(0)
      expect(c.reads.get(rd)).toMatchObject({ ok: true, tail: 1 })
    })

    it('chooses one proposal after another without skipping a slot (slots are chosen synchronously)', () => {
      // Regression: choosing inside proposeSlot moved nextSlot, then fillPipeline moved it
      // again; the skipped slot left a gap that no later slot could be applied past.
      const c = new MiniCluster(1)
      c.elect()
      const ids: number[] = []
      for (let i = 0; i < 5; i++) ids.push(c.propose(0, { kind: 'append', clientId: 'c', seq: i + 1, entries: [{ streams: ['s'], data: new Uint8Array([i]) }, { streams: ['t'], data: new Uint8Array([i]) }] }))
      expect(ids.map((id) => { const r = c.results.get(id); return r?.ok ? r.firstPosition : null })).toEqual([0, 2, 4, 6, 8])
      expect(c.cores[0]!.status()).toMatchObject({ commitSlot: 5, nextPosition: 10, inflight: 0 })
    })
  })

  describe('messages that went through the wire', () => {
    it('appends without exactly-once ids stay distinct on every replica when undefined fields arrive as null', () => {
      // Regression: msgpack turns `clientId: undefined` into null; followers once took
      // every such append after the first for a duplicate of "client null" and diverged.
      const c = new MiniCluster(3)
      c.wire = true
      const l = c.elect()
      for (let i = 0; i < 4; i++) c.propose(l, { kind: 'append', clientId: undefined, seq: undefined, entries: [{ streams: ['s'], data: new Uint8Array([i]) }] })
      c.deliverAll()
      c.tick(5)
      for (let i = 0; i < 3; i++) expect(c.cores[i]!.status().nextPosition).toBe(4)
    })
  })
}

export function conditionalSuite(early: boolean): void {
  const mk = (n = 3): BaseCluster => new BaseCluster(n, 1, { earlyAccepts: early })
  const enc = (s: string): Uint8Array => new TextEncoder().encode(s)
  const write = (stream: string, key: string, clientId?: string, seq?: number) => ({
    kind: 'append' as const,
    clientId,
    seq,
    entries: [{ streams: [stream], data: enc(`${stream}/${key}`), keys: [key] }],
  })
  const cond = (reads: { stream: string; key: string; version: number }[], writes: [string, string][], clientId?: string, seq?: number) => ({
    kind: 'append' as const,
    clientId,
    seq,
    reads,
    entries: [{ streams: writes.map((w) => w[0]), data: enc('commit'), keys: writes.map((w) => w[1]) }],
  })
  const result = (c: BaseCluster, id: number) => c.results.get(id)
  /**
   * Puts conditional appends in use (a commit on a key of its own): from then on the
   * leader counts every keyed write in its conflict table. Returns the commit's position.
   */
  const arm = (c: BaseCluster, l: number): number => {
    const id = c.propose(l, cond([{ stream: 'arm', key: 'arm', version: c.cores[l]!.status().nextPosition - 1 }], [['arm', 'arm']]))
    c.deliverAll()
    c.tick(2)
    const r = result(c, id)
    expect(r).toMatchObject({ ok: true })
    return (r as { firstPosition: number }).firstPosition
  }

  describe('conditional appends (the leader as sequencer)', () => {
    it('commits when no read key was written after its version, refuses with the conflicting write otherwise', () => {
      const c = mk()
      const l = c.elect()
      const w1 = c.propose(l, write('acct', 'a'))
      c.deliverAll()
      c.tick(2)
      const p1 = (result(c, w1) as { firstPosition: number }).firstPosition
      // Read a at p1, b never written: fine.
      const ok = c.propose(l, cond([{ stream: 'acct', key: 'a', version: p1 }, { stream: 'acct', key: 'b', version: p1 }], [['acct', 'a'], ['acct', 'b']]))
      c.deliverAll()
      c.tick(2)
      expect(result(c, ok)).toMatchObject({ ok: true })
      // A stale read of a (version p1, but the commit above wrote it later) conflicts.
      const stale = c.propose(l, cond([{ stream: 'acct', key: 'a', version: p1 }], [['acct', 'c']]))
      const r = result(c, stale)
      expect(r).toMatchObject({ ok: false, code: 'conflict', conflict: { stream: 'acct', key: 'a', version: p1, position: p1 + 1 } })
      // Nothing entered the log for it.
      c.deliverAll()
      c.tick(3)
      for (let i = 0; i < 3; i++) expect(c.cores[i]!.status().nextPosition).toBe(p1 + 2)
    })

    it('reads and keys are the sequencer\'s business: the value replicated and stored carries the append without them', () => {
      const c = mk()
      const l = c.elect()
      c.tick(2)
      const ok = c.propose(l, cond([{ stream: 'acct', key: 'q', version: 0 }], [['acct', 'q']], 'c1', 1))
      c.deliverAll()
      c.tick(3)
      expect(result(c, ok)).toMatchObject({ ok: true })
      for (let i = 0; i < 3; i++) {
        const ops = c.chosen[i]!.flatMap((r) => r.value.ops)
        const commit = ops.find((op) => op.kind === 'append' && op.clientId === 'c1')
        expect(commit, `replica ${i}`).toMatchObject({ kind: 'append', clientId: 'c1', seq: 1 })
        expect('reads' in commit!).toBe(false)
        // Nor their conflict keys: only the leader's table reads them.
        expect(commit!.kind === 'append' && commit!.entries.some((e) => 'keys' in e)).toBe(false)
      }
    })

    it('a bounded table evicts by first write; an evicted key conflicts below the watermark, never commits wrongly', () => {
      const c = new BaseCluster(3, 1, { earlyAccepts: early, conflictKeysMax: 3 })
      const l = c.elect()
      c.tick(2)
      arm(c, l) // its key is the first written: the first evicted
      const at = (key: string): number => {
        const id = c.propose(l, write('t', key))
        c.deliverAll()
        c.tick(2)
        return (result(c, id) as { firstPosition: number }).firstPosition
      }
      const pa = at('a')
      at('b')
      at('c')
      const pa2 = at('a') // rewritten in place: still the first written
      // A fourth key evicts 'a' (first written), and the watermark rises to its LAST write.
      const pd = at('d')
      const read = (key: string, version: number) => {
        const id = c.propose(l, cond([{ stream: 't', key, version }], [['t', 'w']]))
        c.deliverAll()
        c.tick(2)
        return result(c, id)
      }
      expect(read('a', pa)).toMatchObject({ ok: false, code: 'conflict', conflict: { key: 'a', position: -1, watermark: pa2 } })
      expect(read('a', pa2)).toMatchObject({ ok: true }) // at the watermark: nothing forgotten is newer
      // 'w' (written by that commit) evicted 'b'; 'c' and 'd' are remembered exactly.
      expect(read('d', pd - 1)).toMatchObject({ ok: false, conflict: { key: 'd', position: pd } })
      expect(read('d', pd)).toMatchObject({ ok: true })
      // Thousands of new keys through a table of 3: every remembered key stays exact.
      for (let i = 0; i < 2000; i++) c.propose(l, write('t', `n${i}`))
      c.deliverAll()
      c.tick(2)
      const last = at('z')
      expect(read('z', last - 1)).toMatchObject({ ok: false, conflict: { key: 'z', position: last } })
      expect(read('z', last)).toMatchObject({ ok: true })
    })

    it('a write queued or in flight conflicts with a read of its key', () => {
      const c = mk()
      const l = c.elect()
      c.tick(2)
      arm(c, l)
      c.propose(l, write('acct', 'x')) // not delivered yet: in flight
      const r = c.propose(l, cond([{ stream: 'acct', key: 'x', version: 100 }], [['acct', 'y']]))
      expect(result(c, r)).toMatchObject({ ok: false, code: 'conflict', conflict: { key: 'x', position: -1 } })
    })

    it('keyed writes are counted only while conditional appends are in use: the first one waits for the writes before it, then reads below them conflict', () => {
      const c = mk()
      const l = c.elect()
      c.tick(2)
      const w = c.propose(l, write('acct', 'x')) // in flight, and not counted
      const held = c.propose(l, cond([{ stream: 'acct', key: 'x', version: -1 }], [['acct', 'y']]))
      expect(result(c, held)).toBeUndefined() // the table cannot answer before x is applied
      c.deliverAll()
      c.tick(2)
      const px = (result(c, w) as { firstPosition: number }).firstPosition
      expect(result(c, held)).toMatchObject({ ok: false, code: 'conflict', conflict: { key: 'x', position: -1, watermark: px } })
      // From now on writes are counted: one in flight conflicts at once, as pending.
      c.propose(l, write('acct', 'z'))
      const pending = c.propose(l, cond([{ stream: 'acct', key: 'z', version: px + 5 }], [['acct', 'y']]))
      expect(result(c, pending)).toMatchObject({ ok: false, conflict: { key: 'z', position: -1 } })
      c.deliverAll()
      c.tick(2)
      const fresh = c.propose(l, cond([{ stream: 'acct', key: 'x', version: px }], [['acct', 'y']]))
      c.deliverAll()
      c.tick(2)
      expect(result(c, fresh)).toMatchObject({ ok: true })
    })

    it('writes still queued when conditional appends start count as before them: the table waits until they are applied', () => {
      const c = new BaseCluster(3, 1, { earlyAccepts: early, inflightSlotsMax: 1 })
      const l = c.elect()
      c.tick(2)
      c.propose(l, write('acct', 'a')) // in flight
      const queued = c.propose(l, write('acct', 'b')) // queued behind it (one slot in flight at most)
      const r = c.propose(l, cond([{ stream: 'acct', key: 'b', version: -1 }], [['acct', 'c']]))
      for (let i = 0; i < 6 && result(c, queued) === undefined; i++) {
        expect(result(c, r)).toBeUndefined()
        c.deliverAll()
        c.tick(1)
      }
      const pb = (result(c, queued) as { firstPosition: number }).firstPosition
      c.deliverAll()
      c.tick(2)
      expect(result(c, r)).toMatchObject({ ok: false, code: 'conflict', conflict: { key: 'b', position: -1 } })
      expect((result(c, r) as { conflict: { watermark: number } }).conflict.watermark).toBeGreaterThanOrEqual(pb)
    })

    it('after conflictIdleMs without a conditional append, keyed writes stop being counted until the next one', () => {
      const c = new BaseCluster(3, 1, { earlyAccepts: early, conflictIdleMs: 200 })
      const l = c.elect()
      c.tick(2)
      arm(c, l)
      c.propose(l, write('acct', 'x')) // counted: a read of x conflicts at once
      expect(result(c, c.propose(l, cond([{ stream: 'acct', key: 'x', version: 1000 }], [['acct', 'y']])))).toMatchObject({ ok: false, conflict: { key: 'x', position: -1 } })
      c.deliverAll()
      c.tick(30) // 300 ms of the leader's clock with no conditional append
      c.propose(l, write('acct', 'x')) // not counted: the next conditional append waits for it
      const again = c.propose(l, cond([{ stream: 'acct', key: 'x', version: 1000 }], [['acct', 'y']]))
      expect(result(c, again)).toBeUndefined()
      c.deliverAll()
      c.tick(2)
      expect(result(c, again)).toMatchObject({ ok: true })
    })

    it('a new leader does not know older writes: reads below its watermark conflict, reads at the tail commit', () => {
      const c = mk()
      const l = c.elect()
      for (let i = 0; i < 3; i++) c.propose(l, write('acct', `k${i}`))
      c.deliverAll()
      c.tick(2)
      c.crash(l)
      c.tick(80)
      const l2 = c.leader()!
      expect(l2).not.toBe(l)
      const tail = c.cores[l2]!.status().nextPosition
      const old = c.propose(l2, cond([{ stream: 'acct', key: 'k0', version: 0 }], [['acct', 'z']]))
      expect(result(c, old)).toMatchObject({ ok: false, code: 'conflict', conflict: { key: 'k0', position: -1, watermark: tail - 1 } })
      const fresh = c.propose(l2, cond([{ stream: 'acct', key: 'k0', version: tail - 1 }], [['acct', 'z']]))
      c.deliverAll()
      c.tick(2)
      expect(result(c, fresh)).toMatchObject({ ok: true, firstPosition: tail })
    })

    it('a retried commit (same clientId, seq) answers its original positions instead of conflicting with itself', () => {
      const c = mk()
      const l = c.elect()
      c.tick(2)
      const first = c.propose(l, cond([{ stream: 's', key: 'k', version: -1 }], [['s', 'k']], 'tx-client', 1))
      c.deliverAll()
      c.tick(2)
      expect(result(c, first)).toMatchObject({ ok: true, firstPosition: 0 })
      const retry = c.propose(l, cond([{ stream: 's', key: 'k', version: -1 }], [['s', 'k']], 'tx-client', 1))
      expect(result(c, retry)).toMatchObject({ ok: true, firstPosition: 0, outcome: { kind: 'dup' } })
    })
  })

  describe('per-entry conditions (many commits in one append)', () => {
    type R = { stream: string; key: string; version: number }
    const entry = (reads: R[] | undefined, key: string, stream = 'acct') =>
      reads === undefined ? { streams: [stream], data: enc(key), keys: [key] } : { streams: [stream], data: enc(key), keys: [key], reads }
    const each = (entries: ReturnType<typeof entry>[], clientId?: string, seq?: number) => ({ kind: 'append' as const, clientId, seq, entries })
    /** A cluster with conditional appends in use, whose leader has applied one plain write of acct/`key`, at `pos`. */
    const withWrite = (key: string) => {
      const c = mk()
      const l = c.elect()
      c.tick(2)
      arm(c, l)
      const w = c.propose(l, write('acct', key))
      c.deliverAll()
      c.tick(2)
      expect(result(c, w)).toMatchObject({ ok: true })
      return { c, l, pos: (result(c, w) as { firstPosition: number }).firstPosition }
    }

    it('checks each entry on its own, after the entries before it; refused entries are dropped, the rest sequenced in order', () => {
      const { c, l, pos: pj } = withWrite('j')
      const id = c.propose(
        l,
        each(
          [
            entry([{ stream: 'acct', key: 'k', version: pj }], 'k'), // fresh: accepted
            entry([{ stream: 'acct', key: 'j', version: pj - 1 }], 'x'), // j was written at pj: refused
            entry(undefined, 'm'), // no condition: accepted
            entry([{ stream: 'acct', key: 'k', version: pj }], 'y'), // k is written by entry 0, sequenced before it: refused
            entry([{ stream: 'acct', key: 'j', version: pj }], 'z'), // fresh: accepted
          ],
          'c1',
          1,
        ),
      )
      c.deliverAll()
      c.tick(3)
      expect(result(c, id)).toMatchObject({
        ok: true,
        firstPosition: pj + 1,
        count: 3,
        refused: [
          { index: 1, conflict: { stream: 'acct', key: 'j', version: pj - 1, position: pj } },
          { index: 3, conflict: { stream: 'acct', key: 'k', version: pj, position: -1 } },
        ],
      })
      for (let i = 0; i < 3; i++) {
        expect(c.cores[i]!.status().nextPosition).toBe(pj + 4)
        const op = c.chosen[i]!.flatMap((r) => r.value.ops).find((o) => o.kind === 'append' && o.clientId === 'c1')!
        expect(op.kind === 'append' && op.entries.map((e) => new TextDecoder().decode(e.data))).toEqual(['k', 'm', 'z'])
        expect(op.kind === 'append' && op.entries.some((e) => 'reads' in e)).toBe(false) // the sequencer's business only
        expect(op).toMatchObject({ refused: [{ index: 1 }, { index: 3 }] })
      }
      // The accepted entries' writes are remembered: a read of k before entry 0 now conflicts at its position.
      const late = c.propose(l, each([entry([{ stream: 'acct', key: 'k', version: pj }], 'q')]))
      expect(result(c, late)).toMatchObject({ ok: true, count: 0, refused: [{ index: 0, conflict: { key: 'k', position: pj + 1 } }] })
    })

    it('an append whose every entry is refused is answered at once and leaves no trace', () => {
      const { c, l } = withWrite('a')
      const tail = c.cores[l]!.status().nextPosition
      const id = c.propose(l, each([entry([{ stream: 'acct', key: 'a', version: -1 }], 'b'), entry([{ stream: 'acct', key: 'a', version: -1 }], 'c')], 'c2', 1))
      expect(result(c, id)).toMatchObject({ ok: true, count: 0, firstPosition: -1, refused: [{ index: 0 }, { index: 1 }] })
      c.deliverAll()
      c.tick(3)
      for (let i = 0; i < 3; i++) expect(c.cores[i]!.status().nextPosition).toBe(tail)
      expect(c.chosen[l]!.flatMap((r) => r.value.ops).some((o) => o.kind === 'append' && o.clientId === 'c2')).toBe(false)
    })

    it('a retry of the same (clientId, seq), even on a new leader, gets the same positions and refusals', () => {
      const { c, l, pos } = withWrite('a')
      const req = () => each([entry([{ stream: 'acct', key: 'a', version: -1 }], 'b'), entry([{ stream: 'acct', key: 'n', version: 0 }], 'n')], 'c3', 7)
      const id = c.propose(l, req())
      c.deliverAll()
      c.tick(3)
      const original = result(c, id) as { firstPosition: number; refused: unknown }
      expect(original).toMatchObject({ ok: true, count: 1, refused: [{ index: 0, conflict: { key: 'a', position: pos } }] })
      c.crash(l)
      c.tick(80)
      const l2 = c.leader()!
      expect(l2).not.toBe(l)
      c.tick(5)
      // The new leader's watermark would refuse both reads now; the session answers instead.
      const again = c.propose(l2, req())
      c.deliverAll()
      c.tick(3)
      expect(result(c, again)).toMatchObject({ ok: true, outcome: { kind: 'dup' }, firstPosition: original.firstPosition, count: 1, refused: original.refused })
      expect(c.cores[l2]!.status().nextPosition).toBe(original.firstPosition + 1)
    })

    it('reads on the append and on its entries together are refused as a bad request', () => {
      const c = mk()
      const l = c.elect()
      c.tick(2)
      const id = c.propose(l, { ...each([entry([{ stream: 'acct', key: 'a', version: -1 }], 'b')]), reads: [{ stream: 'acct', key: 'a', version: -1 }] })
      expect(result(c, id)).toMatchObject({ ok: false, code: 'bad_request' })
    })
  })
}
