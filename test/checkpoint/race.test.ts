// Overlapping checkpointers of one object, interleaved by hand on the in-memory log.
//
// A checkpointer that outlived its election (paused past `takeoverMs` of log time while
// another client took over) must never leave the newest complete checkpoint unusable:
// the END at the tail of ci/<name> must keep its data on cp/<name> and its op history
// from `upTo` on obj/<name>. Before the fencing in checkpoint.ts (ENDs appended
// conditionally, chained to the END read at the election; STARTs after that END; `upTo`
// never below it), each of these interleavings broke that: the first one lost the
// newest checkpoint so badly that a new client failed with history_trimmed.
//
// The gate below pauses one runtime's appends (or tails) on a checkpoint stream, the
// way a long GC pause or a stalled connection would.

import { decode } from '@msgpack/msgpack'
import { expect, test } from 'vitest'
import { checkpointDataStream, checkpointIndexStream, isLogError, streamOf } from '../../object-runtime/index.ts'
import type { AppendEntry, AppendOptions, LogClient, MemoryLogClient, TailResult } from '../../object-runtime/index.ts'
import { QMap } from '../../objects/index.ts'
import { loadCheckpoint, validateCheckpointPolicy, writeCheckpoint } from '../../object-runtime/checkpoint.ts'
import { cluster } from '../runtime/helpers.ts'

const TAKEOVER_MS = 1_000
const CP = checkpointDataStream('m')
const CI = checkpointIndexStream('m')

/** Pauses the next call of `kind` that touches `stream`, until release(). */
class Gate {
  private armed: { kind: 'append' | 'tail'; stream: string } | null = null
  private reachedResolve: () => void = () => undefined
  private releaseResolve: () => void = () => undefined
  reached: Promise<void> = Promise.resolve()
  private released: Promise<void> = Promise.resolve()

  arm(kind: 'append' | 'tail', stream: string): void {
    this.armed = { kind, stream }
    this.reached = new Promise((resolve) => (this.reachedResolve = resolve))
    this.released = new Promise((resolve) => (this.releaseResolve = resolve))
  }

  release(): void {
    this.releaseResolve()
  }

  async pass(kind: 'append' | 'tail', streams: readonly string[]): Promise<void> {
    const a = this.armed
    if (a === null || a.kind !== kind || !streams.includes(a.stream)) return
    this.armed = null
    this.reachedResolve()
    await this.released
  }

  wrap(inner: MemoryLogClient): LogClient {
    return {
      append: async (entries: readonly AppendEntry[], options?: AppendOptions): Promise<number[]> => {
        await this.pass('append', entries.flatMap((e) => e.streams))
        return inner.append(entries, options)
      },
      tail: async (streams?: readonly string[]): Promise<TailResult> => {
        await this.pass('tail', streams ?? [])
        return inner.tail(streams)
      },
      read: (range) => inner.read(range),
      readStream: (stream, range) => inner.readStream(stream, range),
      trim: (stream, before) => inner.trim(stream, before),
      subscribe: (streams, from, onEntries, onError) => inner.subscribe(streams, from, onEntries, onError),
      close: () => inner.close(),
    }
  }
}

async function setup() {
  const clock = { now: 1_000_000 }
  const c = await cluster(1, { log: { clock: () => clock.now }, config: { checkpoint: { chunkBytesMax: 1024, takeoverMs: TAKEOVER_MS } } })
  const gate = new Gate()
  const rtB = await c.add({ wrap: (client) => gate.wrap(client) })
  const a = c.runtimes[0]!.open(QMap<string, string>, 'm')
  const b = rtB.open(QMap<string, string>, 'm')
  let n = 0
  const writes = async (count: number): Promise<void> => {
    for (let i = 0; i < count; i++, n++) await a.set(`k${n % 30}`, `v${n}-${'x'.repeat(100)}`)
  }
  return { c, clock, gate, rtA: c.runtimes[0]!, rtB, a, b, writes }
}

/**
 * The newest complete checkpoint (the END at ci's tail) is usable: its data is on cp
 * (every chunk of its id) and the op history from its `upTo` is on obj. Returns its
 * END position.
 */
async function assertNewestCheckpointIntact(log: LogClient): Promise<number> {
  const endPosition = (await log.tail([CI])).streams[CI]!
  const [end] = (await log.readStream(CI, { from: endPosition, to: endPosition + 1 })).entries
  const rec = decode(end!.data) as unknown[]
  expect(rec[1]).toBe('end')
  const [id, upTo, chunks, startPosition] = [rec[2], rec[7] as number, rec[9] as number, rec[11] as number]
  const data = await log.readStream(CP, { from: startPosition, to: endPosition })
  const own = data.entries.filter((e) => {
    const r = decode(e.data) as unknown[]
    return r[1] === 'chunk' && r[2] === id
  })
  expect(own.length).toBe(chunks)
  await log.readStream(streamOf('m'), { from: upTo, limit: 1 })
  return endPosition
}

async function expectFreshOpenEquals(c: Awaited<ReturnType<typeof setup>>['c'], reference: { stateHash(): string; version: number }, applied: number): Promise<void> {
  const fresh = await c.add()
  const f = fresh.open(QMap<string, string>, 'm')
  await f.sync()
  expect(f.version).toBe(reference.version)
  expect(f.stateHash()).toBe(reference.stateHash())
  expect(fresh.stats.entriesApplied).toBe(applied)
}

/**
 * Lets the stalled checkpointer B go on and checks it was refused ('superseded'), the newest
 * checkpoint (ending at `newestEnd`) is intact, and a fresh client opens to A's state by
 * applying only the 5 ops after it. Closes the cluster.
 */
async function expectStaleRefused(
  { c, gate, a }: Pick<Awaited<ReturnType<typeof setup>>, 'c' | 'gate' | 'a'>,
  pending: Promise<{ outcome: string }>,
  newestEnd: number,
): Promise<void> {
  gate.release()
  const late = await pending
  await a.sync()
  await expectFreshOpenEquals(c, a, 5)
  expect(await assertNewestCheckpointIntact(c.clients[0]!)).toBe(newestEnd)
  expect(late.outcome).toBe('superseded')
  await c.close()
}

test('a stale checkpointer whose END lands after two newer checkpoints: refused, the newest stays usable', async () => {
  const { c, clock, gate, rtA, rtB, a, b, writes } = await setup()
  await writes(40)
  expect((await rtA.checkpoint(a)).outcome).toBe('written') // P, the previous checkpoint
  await writes(10)
  await b.sync()
  // B: START, election (won), CHUNKs, then stalls right before appending its END.
  gate.arm('append', CI)
  const pending = rtB.checkpoint(b)
  await gate.reached
  // B's START goes stale in log time; A takes over and checkpoints twice. A's second
  // checkpoint trims cp below A's first START, i.e. B's data.
  clock.now += TAKEOVER_MS
  await writes(10)
  expect((await rtA.checkpoint(a)).outcome).toBe('written')
  await writes(10)
  const newest = await rtA.checkpoint(a)
  if (newest.outcome !== 'written') throw new Error(`A: ${newest.outcome}`)
  await writes(5)
  // B wakes up. Unfenced, its END became the newest and pointed at trimmed data (a new
  // client then failed with history_trimmed); fenced, it is refused.
  await expectStaleRefused({ c, gate, a }, pending, newest.endPosition)
})

test('a stale checkpointer whose START precedes the newest END: refused, its trims never happen', async () => {
  const { c, clock, gate, rtA, rtB, a, b, writes } = await setup()
  await writes(40)
  const p = await rtA.checkpoint(a)
  if (p.outcome !== 'written') throw new Error(`P: ${p.outcome}`)
  await b.sync()
  // B appends its START, then stalls before it reads ci.
  gate.arm('tail', CI)
  const pending = rtB.checkpoint(b)
  await gate.reached
  // A checkpoints twice more, from P's state and `upTo` (a valid source that lags behind
  // B's: so B's `upTo` is not below them and only the START rule can refuse B). A's
  // second checkpoint trims cp below A's first START, i.e. B's START.
  clock.now += TAKEOVER_MS
  const log = c.clients[0]!
  const target = { objectName: 'm', type: 'QMap', typeVersion: 1 }
  const policy = validateCheckpointPolicy({ chunkBytesMax: 1024, takeoverMs: TAKEOVER_MS })
  const loaded = await loadCheckpoint(log, target, policy)
  const src = { ...target, objectStream: streamOf('m'), state: loaded!.state, version: loaded!.version, upTo: loaded!.upTo }
  expect(src.upTo).toBe(p.upTo)
  expect((await writeCheckpoint(log, src, policy)).outcome).toBe('written')
  const newest = await writeCheckpoint(log, src, policy)
  if (newest.outcome !== 'written') throw new Error(`A: ${newest.outcome}`)
  expect(isLogError(await log.readStream(CP, { from: 0 }).catch((err: unknown) => err), 'trimmed')).toBe(true)
  await writes(5)
  await expectStaleRefused({ c, gate, a }, pending, newest.endPosition)
})

test('a lagging checkpointer (its snapshot older than the newest checkpoint): refused', async () => {
  const { c, gate, rtA, rtB, a, b, writes } = await setup()
  await writes(40)
  await b.sync()
  // B takes its snapshot, then stalls before its START is appended.
  gate.arm('append', CP)
  const pending = rtB.checkpoint(b)
  await gate.reached
  await writes(20)
  const newest = await rtA.checkpoint(a)
  if (newest.outcome !== 'written') throw new Error(`A: ${newest.outcome}`)
  await writes(5)
  // B's START now follows A's END and B wins its election, but its `upTo` is below A's:
  // its END would be the newest while its op history is already trimmed.
  await expectStaleRefused({ c, gate, a }, pending, newest.endPosition)
})
