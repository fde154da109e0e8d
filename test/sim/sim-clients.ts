// Simulated clients. Each is closed-loop (one request outstanding), has a clientId and
// an increasing seq, and sends to the replica it believes leads. On `not_leader` or a
// timeout it retries the SAME (clientId, seq) elsewhere: exactly-once is the log's job.
// Clients also ask for the tail (readIndex) and now and then trim a stream.

import type { Rng } from '../../log-server/paxos/rng.ts'
import type { AppendOp, Entry, Op, ProposalResult, ReadIndexResult, ReplicaId, RequestId } from '../../log-server/paxos/types.ts'
import { CheckFailure, type HistoryChecker } from './checkers.ts'

export interface ClientWorkload {
  clients: number
  /** Ticks without an answer before a client retries elsewhere. */
  timeoutTicks: number
  /** Idle ticks between requests, uniform in [0, thinkTicksMax]. */
  thinkTicksMax: number
  tailRate: number
  trimRate: number
  /** Share of appends sent without exactly-once ids (at-least-once: a retry may store a second copy). */
  anonRate: number
  entriesMax: number
}

/** What clients need from the cluster: a way to reach replica r (false: it is down). */
export interface ClientTransport {
  propose(replica: ReplicaId, requestId: RequestId, op: Op): boolean
  readIndex(replica: ReplicaId, requestId: RequestId): boolean
}

export const STREAMS = ['orders', 'users', 'audit', 'metrics'] as const

const encoder = new TextEncoder()

/** Entries named after their request (`label`), so that every stored entry can be traced to it. */
export function entriesFor(clientId: string, label: string, count: number, rng: Rng): Entry[] {
  const out: Entry[] = []
  for (let i = 0; i < count; i++) {
    const a = STREAMS[rng.int(0, STREAMS.length)]!
    const streams = rng.next() < 0.2 ? [a, STREAMS[(STREAMS.indexOf(a) + 1) % STREAMS.length]!] : [a]
    out.push({ streams, data: encoder.encode(`${clientId}/${label}/${i}`) })
  }
  return out
}

type Pending =
  | { kind: 'append'; op: AppendOp; historyId: number; requestId: RequestId; deadline: number; retryAt: number }
  | { kind: 'tail'; requestId: RequestId; deadline: number; retryAt: number }
  | { kind: 'trim'; requestId: RequestId; deadline: number }

interface Client {
  readonly id: string
  readonly index: number
  seq: number
  /** Appends without ids sent so far (names their entries). */
  anon: number
  target: ReplicaId
  pending: Pending | null
  nextAt: number
}

type Route = { client: number; kind: 'append'; historyId: number } | { client: number; kind: 'tail'; tailId: number } | { client: number; kind: 'trim' }

export class ClientPool {
  private readonly clients: Client[] = []
  private readonly routes = new Map<RequestId, Route>()
  private nextRequestId = 1
  private now = 0
  /** Stop starting new requests (pending ones still finish). */
  draining = false
  retries = 0
  trims = 0

  constructor(
    private readonly n: number,
    private readonly work: ClientWorkload,
    private readonly rng: Rng,
    private readonly history: HistoryChecker,
    private readonly transport: ClientTransport,
  ) {
    for (let i = 0; i < work.clients; i++) {
      this.clients.push({ id: `client-${i}`, index: i, seq: 0, anon: 0, target: rng.int(0, n), pending: null, nextAt: rng.int(0, work.thinkTicksMax + 1) })
    }
  }

  get idle(): boolean {
    return this.clients.every((c) => c.pending === null)
  }

  describePending(): string {
    return this.clients
      .filter((c) => c.pending !== null)
      .map((c) => `${c.id}: ${c.pending!.kind}${c.pending!.kind === 'append' ? ` #${c.pending!.op.seq ?? 'no-ids'}` : ''} at replica ${c.target}`)
      .join('; ')
  }

  /** Act for one tick: start requests, time out, retry. */
  tick(now: number): void {
    this.now = now
    for (const c of this.clients) {
      const p = c.pending
      if (p === null) {
        if (!this.draining && now >= c.nextAt) this.start(c)
        continue
      }
      if (p.kind !== 'trim' && p.retryAt >= 0 && now >= p.retryAt) {
        this.send(c)
      } else if (now >= p.deadline) {
        // No answer: the replica may be down, cut off, or slow. Try another one.
        this.retries++
        c.target = this.otherReplica(c.target)
        if (p.kind === 'trim') this.finish(c)
        else this.send(c)
      }
    }
  }

  private start(c: Client): void {
    const dice = this.rng.next()
    if (dice < this.work.tailRate) {
      c.pending = { kind: 'tail', requestId: 0, deadline: 0, retryAt: -1 }
    } else if (dice < this.work.tailRate + this.work.trimRate) {
      c.pending = { kind: 'trim', requestId: 0, deadline: 0 }
    } else if (dice < this.work.tailRate + this.work.trimRate + this.work.anonRate) {
      c.anon++
      const entries = entriesFor(c.id, `anon${c.anon}`, this.rng.int(1, this.work.entriesMax + 1), this.rng)
      // Absent ids, or ids present as undefined (what `{ clientId: body.clientId }` builds): the wire makes the latter null.
      const op: AppendOp = this.rng.next() < 0.5 ? { kind: 'append', entries } : { kind: 'append', clientId: undefined, seq: undefined, entries }
      c.pending = { kind: 'append', op, historyId: this.history.invokeAppend(op), requestId: 0, deadline: 0, retryAt: -1 }
    } else {
      c.seq++
      const op: AppendOp = { kind: 'append', clientId: c.id, seq: c.seq, entries: entriesFor(c.id, String(c.seq), this.rng.int(1, this.work.entriesMax + 1), this.rng) }
      c.pending = { kind: 'append', op, historyId: this.history.invokeAppend(op), requestId: 0, deadline: 0, retryAt: -1 }
    }
    this.send(c)
  }

  /** (Re)send c's pending request to its target. The pending state is set before the call: answers may come back inside it. */
  private send(c: Client): void {
    const p = c.pending
    if (p === null) return
    const requestId = this.nextRequestId++
    p.requestId = requestId
    p.deadline = this.now + this.work.timeoutTicks
    let reached: boolean
    if (p.kind === 'append') {
      p.retryAt = -1
      this.routes.set(requestId, { client: c.index, kind: 'append', historyId: p.historyId })
      reached = this.transport.propose(c.target, requestId, p.op)
    } else if (p.kind === 'tail') {
      p.retryAt = -1
      this.routes.set(requestId, { client: c.index, kind: 'tail', tailId: this.history.invokeTail() })
      reached = this.transport.readIndex(c.target, requestId)
    } else {
      this.trims++
      const stream = STREAMS[this.rng.int(0, STREAMS.length)]!
      this.routes.set(requestId, { client: c.index, kind: 'trim' })
      reached = this.transport.propose(c.target, requestId, { kind: 'trim', stream, before: this.rng.int(0, 1 + this.history.acked) })
    }
    if (!reached && c.pending === p) {
      // Connection refused: the replica is down. Try another one next tick.
      this.routes.delete(requestId)
      c.target = this.otherReplica(c.target)
      if (p.kind === 'trim') this.finish(c)
      else p.retryAt = this.now + 1
    }
  }

  private otherReplica(r: ReplicaId): ReplicaId {
    return (r + 1 + this.rng.int(0, this.n - 1)) % this.n
  }

  private finish(c: Client): void {
    c.pending = null
    c.nextAt = this.now + this.rng.int(0, this.work.thinkTicksMax + 1)
  }

  private route(requestId: RequestId, replica: ReplicaId): Route {
    const route = this.routes.get(requestId)
    if (route === undefined) throw new CheckFailure('driver-contract', `replica ${replica} answered request ${requestId}, which it never got or already answered`)
    this.routes.delete(requestId)
    return route
  }

  /** A replica answered a propose. */
  onResult(replica: ReplicaId, r: ProposalResult): void {
    const route = this.route(r.requestId, replica)
    const c = this.clients[route.client]!
    const p = c.pending
    const current = p !== null && p.requestId === r.requestId
    if (route.kind === 'trim') {
      if (current) this.finish(c)
      return
    }
    if (route.kind !== 'append') throw new CheckFailure('driver-contract', `replica ${replica} answered read ${r.requestId} as a proposal`)
    if (r.ok) {
      this.history.answerAppend(route.historyId, r)
      // Any attempt's success completes the append, even a late one.
      if (p !== null && p.kind === 'append' && p.historyId === route.historyId) this.finish(c)
      return
    }
    if (!current || p.kind !== 'append') return
    switch (r.code) {
      case 'not_leader':
        c.target = r.leader !== null && r.leader !== replica ? r.leader : this.otherReplica(replica)
        p.retryAt = this.now + 1 + this.rng.int(0, 3)
        this.retries++
        return
      case 'overloaded':
        p.retryAt = this.now + 5
        this.retries++
        return
      default:
        throw new CheckFailure('client', `append ${p.op.clientId ?? '(no ids)'}#${p.op.seq ?? '-'} refused with ${r.code}: ${r.message}`)
    }
  }

  /** A replica answered a readIndex. */
  onRead(replica: ReplicaId, r: ReadIndexResult): void {
    const route = this.route(r.requestId, replica)
    if (route.kind !== 'tail') throw new CheckFailure('driver-contract', `replica ${replica} answered proposal ${r.requestId} as a read`)
    const c = this.clients[route.client]!
    const p = c.pending
    const current = p !== null && p.kind === 'tail' && p.requestId === r.requestId
    if (r.ok) {
      // Late answers to abandoned attempts are reads too: each attempt is checked on its own.
      this.history.answerTail(route.tailId, r.tail, replica)
      if (current) this.finish(c)
      return
    }
    if (!current) return
    c.target = r.leader !== null && r.leader !== replica ? r.leader : this.otherReplica(replica)
    p.retryAt = this.now + 1 + this.rng.int(0, 3)
    this.retries++
  }
}
