// The Paxos core alone: 3 replicas over a zero-latency in-memory network, nothing
// persisted, measuring entries chosen per second. The target is that the core is
// never the bottleneck: >= 1,000,000 entries/s with 1,000-entry slots on one core.
import { validateCoreConfig } from '../log-server/paxos/config.ts'
import { PaxosCore } from '../log-server/paxos/core.ts'
import { seededRng } from '../log-server/paxos/rng.ts'
import type { Message, Op, Output } from '../log-server/paxos/types.ts'
import { fmt, median, table, writeSection, type BenchArgs } from './lib/report.ts'

interface Case {
  readonly name: string
  readonly batch: number
  /** Entries per proposed op: 1 = one client request per entry; batch = one request per slot. */
  readonly entriesPerOp: number
  readonly exactlyOnce: boolean
}

function runCase(c: Case, seconds: number): number {
  const n = 3
  const cores: PaxosCore[] = []
  for (let i = 0; i < n; i++) {
    const cfg = validateCoreConfig({ id: i, replicas: n, batchEntriesMax: c.batch, inflightSlotsMax: 64, queueOpsMax: 1_000_000, queueBytesMax: 1 << 30 })
    cores.push(new PaxosCore(cfg, null, seededRng(i + 1), 0))
  }
  const queue: Message[] = []
  let chosenEntries = 0
  const handle = (id: number, o: Output): void => {
    for (const m of o.messages) queue.push(m)
    if (id === leaderId) for (const r of o.chosen) for (const op of r.value.ops) if (op.kind === 'append') chosenEntries += op.entries.length
  }
  let leaderId = -1
  const pump = (): void => {
    while (queue.length > 0) {
      const batch = queue.splice(0, queue.length)
      for (const m of batch) handle(m.to, cores[m.to]!.step(m))
    }
  }
  let now = 0
  for (let t = 0; t < 200 && leaderId < 0; t++) {
    now += 10
    for (let i = 0; i < n; i++) handle(i, cores[i]!.tick(now))
    pump()
    for (let i = 0; i < n; i++) if (cores[i]!.status().role === 'leader') leaderId = i
  }
  if (leaderId < 0) throw new Error('no leader')
  const data = new Uint8Array(100).fill(7)
  const streams = ['bench']
  let seq = 0
  const makeOp = (): Op => {
    const entries = []
    for (let k = 0; k < c.entriesPerOp; k++) entries.push({ streams, data })
    return c.exactlyOnce ? { kind: 'append', clientId: `c${seq % 64}`, seq: seq++, entries } : { kind: 'append', entries }
  }
  const leader = cores[leaderId]!
  const burstOps = Math.max(1, Math.ceil((c.batch * 64) / c.entriesPerOp))
  const start = performance.now()
  const deadline = start + seconds * 1000
  let requestId = 0
  let loops = 0
  while (true) {
    if (leader.status().queued < burstOps) {
      const items = []
      for (let k = 0; k < burstOps; k++) items.push({ requestId: requestId++, op: makeOp() })
      handle(leaderId, leader.proposeBatch(items))
    }
    pump()
    if ((++loops & 7) === 0 && performance.now() > deadline) break
  }
  const elapsed = (performance.now() - start) / 1000
  return chosenEntries / elapsed
}

export async function benchPaxos(args: BenchArgs): Promise<void> {
  const runs = 3
  const seconds = args.quick ? 0.4 : 2
  const cases: Case[] = [
    { name: 'slots of 1 entry', batch: 1, entriesPerOp: 1, exactlyOnce: false },
    { name: 'slots of 100 entries (100 requests of 1)', batch: 100, entriesPerOp: 1, exactlyOnce: false },
    { name: 'slots of 1000 entries (1000 requests of 1)', batch: 1000, entriesPerOp: 1, exactlyOnce: false },
    { name: 'slots of 1000 entries (1000 requests of 1, exactly-once ids)', batch: 1000, entriesPerOp: 1, exactlyOnce: true },
    { name: 'slots of 1000 entries (1 request of 1000)', batch: 1000, entriesPerOp: 1000, exactlyOnce: false },
  ]
  const rows: string[][] = []
  for (const c of cases) {
    const xs: number[] = []
    for (let r = 0; r < runs; r++) xs.push(runCase(c, seconds))
    rows.push([c.name, fmt(median(xs)), xs.map((x) => fmt(x / 1000)).join(' / ') + ' K'])
    console.log(`paxos: ${c.name}: ${fmt(median(xs))} entries/s`)
  }
  const t = table(['case (3 replicas, 100-byte entries)', 'entries/s (median)', 'runs'], rows)
  console.log('\n' + t + '\n')
  writeSection(
    'paxos',
    'Paxos core alone (`npm run bench -- paxos`)',
    [
      `Three cores in one process over a zero-latency in-memory network; writes are not persisted; ${runs} runs of ${seconds} s each; one core of this machine runs all three replicas and the load.`,
      '',
      t,
      '',
      'Target: >= 1,000,000 entries/s with slots of 1,000 entries, i.e. the core is never the bottleneck of the service.',
    ].join('\n'),
    `npm run bench -- paxos${args.quick ? ' --quick' : ''}`,
  )
}
