// Shared fixtures of the transport tests: free ports, a log-collecting logger, a
// polling wait, and one message of every type with binary entry data.

import net from 'node:net'
import { createTcpTransport } from '../../log-server/transport/tcp-transport.ts'
import type { TcpTransport } from '../../log-server/transport/tcp-transport.ts'
import type { TransportLimits, TransportLogger } from '../../log-server/transport/options.ts'
import type { ChosenRecord, Message, ReplicaId, SlotValue } from '../../log-server/paxos/types.ts'

export const HOST = '127.0.0.1'

/** A port that was free a moment ago: bind a throwaway server to port 0 and close it. */
export async function freePort(): Promise<number> {
  const s = net.createServer()
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject)
    s.listen(0, HOST, () => resolve())
  })
  const addr = s.address()
  await new Promise<void>((resolve) => s.close(() => resolve()))
  if (addr === null || typeof addr !== 'object') throw new Error('no port')
  return addr.port
}

export async function freePorts(n: number): Promise<number[]> {
  const ports: number[] = []
  while (ports.length < n) {
    const p = await freePort()
    if (!ports.includes(p)) ports.push(p)
  }
  return ports
}

export interface LogLine {
  readonly level: 'info' | 'warn'
  readonly msg: string
  readonly fields: Record<string, unknown>
}

export function collectingLogger(): TransportLogger & { lines: LogLine[]; text(): string } {
  const lines: LogLine[] = []
  return {
    lines,
    info: (fields, msg) => lines.push({ level: 'info', msg, fields }),
    warn: (fields, msg) => lines.push({ level: 'warn', msg, fields }),
    text: () => lines.map((l) => `${l.level} ${l.msg} ${JSON.stringify(l.fields)}`).join('\n'),
  }
}

export async function waitFor(cond: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 5))
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

export const CLUSTER = 'test-cluster'

export interface Node {
  readonly id: ReplicaId
  readonly port: number
  transport: TcpTransport
  readonly received: Message[]
  readonly logger: ReturnType<typeof collectingLogger>
}

/** Builds (without starting) replica `id` of a cluster whose peer ports are `ports[i]`. */
export function makeNode(id: ReplicaId, ports: readonly number[], limits: Partial<TransportLimits> = {}, cluster = CLUSTER): Node {
  const logger = collectingLogger()
  const port = ports[id]
  if (port === undefined) throw new Error(`no port for ${id}`)
  const transport = createTcpTransport({
    id,
    cluster,
    listen: { host: HOST, port },
    peers: ports.map((p, i) => ({ id: i, host: HOST, port: p })),
    limits: { reconnectDelayMaxMs: 200, ...limits },
    logger,
  })
  const node: Node = { id, port, transport, received: [], logger }
  transport.onMessage((m) => node.received.push(m))
  return node
}

export function bytes(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n)
  for (let i = 0; i < n; i++) b[i] = (seed * 31 + i * 7) & 0xff
  return b
}

export function slotValue(entries: number, entryBytes: number, seed = 1): SlotValue {
  return {
    ts: 1_700_000_000_000 + seed,
    ops: [
      {
        kind: 'append',
        clientId: `client-${seed}`,
        seq: seed,
        entries: Array.from({ length: entries }, (_, i) => ({ streams: [`s${i % 3}`, 'all'], data: bytes(entryBytes + (i % 3), seed + i) })),
      },
      { kind: 'append', entries: [{ streams: ['empty'], data: new Uint8Array(0) }] },
      { kind: 'trim', stream: 's1', before: 3 },
    ],
  }
}

function record(slot: number): ChosenRecord {
  return {
    slot,
    value: slotValue(4, 10, slot),
    firstPosition: slot * 5,
    ts: 1_700_000_000_000 + slot,
    outcomes: [{ kind: 'new' }, { kind: 'dup', first: 2 }, { kind: 'rejected', code: 'sequence_too_old' }],
  }
}

/** One message of every type from `from` to `to`. */
export function everyMessage(from: ReplicaId, to: ReplicaId): Message[] {
  const base = { from, to, inc: 2, vec: [1, 2, 3] }
  const ballot = { round: 7, replica: from }
  const promised = { round: 9, replica: 1 }
  const all: Message[] = [
    { ...base, type: 'prepare', ballot, fromSlot: 3 },
    {
      ...base,
      type: 'promise',
      ballot,
      commitSlot: 5,
      accepted: [
        { slot: 5, ballot, value: slotValue(3, 20, 5) },
        { slot: 6, ballot: promised, value: { ts: 0, ops: [] } },
      ],
      chosen: [record(3), record(4)],
    },
    { ...base, type: 'accept', ballot, slot: 11, value: slotValue(10, 100, 11), commitSlot: 10 },
    { ...base, type: 'accepted', ballot, slot: 11 },
    { ...base, type: 'nack', ballot, promised },
    { ...base, type: 'heartbeat', ballot, commitSlot: 12, readId: 77 },
    { ...base, type: 'heartbeatAck', ballot, readId: 77, commitSlot: 12 },
    { ...base, type: 'catchupRequest', fromSlot: 0, toSlot: 9 },
    { ...base, type: 'catchupReply', records: [record(0), record(1), record(2)], commitSlot: 3 },
    { ...base, type: 'joinProbe', attempt: 1 },
    { ...base, type: 'joinInfo', attempt: 1, knownIncarnation: 1, promised, maxSlot: -1, commitSlot: 0 },
    { ...base, type: 'join', incarnation: 3 },
    { ...base, type: 'joinAck', incarnation: 3, promised, maxSlot: 12, commitSlot: 12 },
  ]
  return all
}

/** A small message carrying a sequence number in `commitSlot`, to check order. */
export function heartbeat(from: ReplicaId, to: ReplicaId, n: number): Message {
  return { type: 'heartbeat', from, to, inc: 1, vec: [1, 1, 1], ballot: { round: 1, replica: from }, commitSlot: n, readId: n }
}

/** Every Uint8Array reachable from `v`, to check that none arrived as a Buffer. */
export function binaries(v: unknown, out: Uint8Array[] = []): Uint8Array[] {
  if (v instanceof Uint8Array) out.push(v)
  else if (Array.isArray(v)) for (const x of v) binaries(x, out)
  else if (typeof v === 'object' && v !== null) for (const x of Object.values(v)) binaries(x, out)
  return out
}
