// An in-memory ReplicaApi for the HTTP tests: stores entries, assigns positions, keeps
// exactly-once sessions, trims (reads below a trim point throw QuipuError 'trimmed'),
// pushes to subscribers, and can be told to fail its next call with any error.

import { QuipuError } from '../../log-server/errors.ts'
import type {
  ApiEntry,
  AppendAnswer,
  AppendRequest,
  ReadRange,
  ReadResult,
  ReplicaApi,
  ReplicaStatus,
  Subscription,
  TailResult,
} from '../../log-server/api/replica-api.ts'

type Method = 'append' | 'tail' | 'readLog' | 'readStream' | 'trim' | 'status' | 'subscribe'

interface Subscriber {
  readonly streams: ReadonlySet<string>
  cursor: number
  readonly onEntries: (entries: readonly ApiEntry[], next: number) => void
  readonly onError: (err: Error) => void
  closed: boolean
  scheduled: boolean
}

export class FakeReplica implements ReplicaApi {
  readonly entries: ApiEntry[] = []
  readonly calls: { method: Method; args: unknown[] }[] = []
  private readonly trimPoints = new Map<string, number>()
  private readonly sessions = new Map<string, Map<number, number[]>>()
  private readonly subscribers = new Set<Subscriber>()
  private readonly failures = new Map<Method, unknown>()
  private nextAnswer: AppendAnswer | null = null
  /** Entries per pushed batch, at most. */
  pushEntriesMax = 100
  now = 1_700_000_000_000
  statusValue: ReplicaStatus = {
    id: 1,
    role: 'leader',
    leader: 'http://127.0.0.1:7001',
    ballot: '1.1',
    commitPosition: 0,
    commitSlot: 0,
    trim: {},
    peers: [{ id: 2, url: 'http://127.0.0.1:7002', connected: true }],
  }

  /** The next call of `method` throws `err` (once). */
  failNext(method: Method, err: unknown): void {
    this.failures.set(method, err)
  }

  /** The next append answers `answer` as it is (and stores nothing). */
  answerNext(method: 'append', answer: AppendAnswer): void {
    this.nextAnswer = answer
  }

  /** Ends every open subscription with `err` (as a replica does when it cannot go on). */
  failSubscriptions(err: Error): void {
    for (const sub of [...this.subscribers]) {
      sub.closed = true
      this.subscribers.delete(sub)
      sub.onError(err)
    }
  }

  get openSubscriptions(): number {
    return this.subscribers.size
  }

  private enter(method: Method, args: unknown[]): void {
    this.calls.push({ method, args })
    if (this.failures.has(method)) {
      const err = this.failures.get(method)
      this.failures.delete(method)
      throw err
    }
  }

  async append(req: AppendRequest): Promise<AppendAnswer> {
    this.enter('append', [req])
    if (this.nextAnswer !== null) {
      const a = this.nextAnswer
      this.nextAnswer = null
      return a
    }
    if (req.clientId !== undefined && req.seq !== undefined) {
      const seen = this.sessions.get(req.clientId)?.get(req.seq)
      if (seen !== undefined) return { positions: seen.slice() }
    }
    const ts = this.now++
    const positions: number[] = []
    for (const e of req.entries) {
      const position = this.entries.length
      this.entries.push({ position, streams: [...e.streams], data: Uint8Array.from(e.data), ts })
      positions.push(position)
    }
    if (req.clientId !== undefined && req.seq !== undefined) {
      let s = this.sessions.get(req.clientId)
      if (s === undefined) this.sessions.set(req.clientId, (s = new Map()))
      s.set(req.seq, positions.slice())
    }
    for (const sub of this.subscribers) this.schedule(sub)
    return { positions }
  }

  async tail(streams?: readonly string[]): Promise<TailResult> {
    this.enter('tail', [streams])
    const out: Record<string, number> = {}
    for (const s of streams ?? []) {
      let last = -1
      for (const e of this.entries) if (e.streams.includes(s)) last = e.position
      out[s] = last
    }
    return { tail: this.entries.length, streams: out }
  }

  private trimOf(stream: string): number {
    return this.trimPoints.get(stream) ?? 0
  }

  private reclaimed(e: ApiEntry): boolean {
    return e.streams.every((s) => this.trimOf(s) > e.position)
  }

  async readLog(range: ReadRange): Promise<ReadResult> {
    this.enter('readLog', [range])
    const tail = this.entries.length
    const to = Math.min(range.to ?? tail, tail)
    const out: ApiEntry[] = []
    let p = range.from
    for (; p < to && out.length < range.limit; p++) {
      const e = this.entries[p]!
      if (this.reclaimed(e)) throw new QuipuError('trimmed', `position ${p} has been trimmed`, { position: p })
      out.push(e)
    }
    return { entries: out, next: out.length === range.limit ? p : Math.max(to, range.from) }
  }

  async readStream(name: string, range: ReadRange): Promise<ReadResult> {
    this.enter('readStream', [name, range])
    const trim = this.trimOf(name)
    if (range.from < trim) {
      throw new QuipuError('trimmed', `stream ${name} is trimmed before ${trim}`, { trimmedBefore: trim })
    }
    const tail = this.entries.length
    const to = Math.min(range.to ?? tail, tail)
    const out: ApiEntry[] = []
    for (let p = range.from; p < to && out.length < range.limit; p++) {
      const e = this.entries[p]!
      if (e.streams.includes(name)) out.push(e)
    }
    const next = out.length === range.limit ? out[out.length - 1]!.position + 1 : Math.max(to, range.from)
    return { entries: out, next }
  }

  async trim(stream: string, before: number): Promise<{ readonly trimmedBefore: number }> {
    this.enter('trim', [stream, before])
    const trimmedBefore = Math.max(this.trimOf(stream), Math.min(before, this.entries.length))
    this.trimPoints.set(stream, trimmedBefore)
    for (const sub of this.subscribers) this.schedule(sub)
    return { trimmedBefore }
  }

  status(): ReplicaStatus {
    this.enter('status', [])
    return { ...this.statusValue, commitPosition: this.entries.length, trim: Object.fromEntries(this.trimPoints) }
  }

  subscribe(
    streams: readonly string[],
    from: number,
    onEntries: (entries: readonly ApiEntry[], next: number) => void,
    onError: (err: Error) => void,
  ): Subscription {
    this.enter('subscribe', [streams, from])
    const sub: Subscriber = { streams: new Set(streams), cursor: from, onEntries, onError, closed: false, scheduled: false }
    this.subscribers.add(sub)
    this.schedule(sub)
    return {
      close: () => {
        sub.closed = true
        this.subscribers.delete(sub)
      },
    }
  }

  private schedule(sub: Subscriber): void {
    if (sub.scheduled || sub.closed) return
    sub.scheduled = true
    setImmediate(() => {
      sub.scheduled = false
      if (!sub.closed) this.deliver(sub)
    })
  }

  private deliver(sub: Subscriber): void {
    const matches = (e: ApiEntry): boolean => sub.streams.size === 0 || e.streams.some((s) => sub.streams.has(s))
    for (const s of sub.streams) {
      if (sub.cursor < this.trimOf(s)) {
        sub.closed = true
        this.subscribers.delete(sub)
        sub.onError(new QuipuError('trimmed', `subscription at ${sub.cursor} is below the trim point of ${s}`))
        return
      }
    }
    const tail = this.entries.length
    if (sub.cursor >= tail) return
    const out: ApiEntry[] = []
    let p = sub.cursor
    for (; p < tail && out.length < this.pushEntriesMax; p++) {
      const e = this.entries[p]!
      if (matches(e)) out.push(e)
    }
    sub.cursor = p
    sub.onEntries(out, p)
    if (sub.cursor < this.entries.length) this.schedule(sub)
  }
}
