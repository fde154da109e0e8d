// The LogClient of a real cluster: HTTP/1.1 with keep-alive (undici pools), msgpack
// bodies, the leader found and followed through failover.
//
// - Leader discovery: requests that need the leader (append, tail, trim) and reads (sent
//   to the leader too, so that a read after a tail sees everything the tail covers) go to
//   the last known leader, else to the servers in turn. A 421 names the leader: the
//   request goes there at once. A refused connection, a timeout or a 503 moves on to the
//   next server after a backoff.
// - Deadline: each call retries until `deadlineMs`, then fails with `unavailable`.
// - Appends are batched by AppendBatcher (shared with the memory client) and carry
//   (clientId, seq); a retry reuses the seq, so the log stores the batch once and
//   answers its original positions (exactly-once).
// - Subscriptions ride a WebSocket to /v1/subscribe and reconnect from the last `next`
//   after a drop, to any server.

import { Decoder, Encoder } from '@msgpack/msgpack'
import { Pool } from 'undici'
import WebSocket from 'ws'
import { FastDecoder } from './fast-decode.ts'
import { encodeAppendBody, encodeEachBody } from './append-body.ts'
import { AppendBatcher, type AppendBatcherConfig, type AppendRequestId, type ConditionalCall } from './append-batcher.ts'
import {
  LogError,
  assertRange,
  assertStreamName,
  assertTrimPoint,
  parseConflictDetails,
  type AppendEntry,
  type AppendOptions,
  type EntriesListener,
  type LogClient,
  type LogEntry,
  type LogErrorCode,
  type ReadRange,
  type ReadResult,
  type Subscription,
  type SubscriptionErrorListener,
  type TailResult,
} from './log-client.ts'

export interface HttpLogClientConfig {
  /** Replica URLs, e.g. ['http://127.0.0.1:7001', ...]. */
  readonly servers: readonly string[]
  /** A call that has not succeeded by then fails with `unavailable`. Default 10,000 ms. */
  readonly deadlineMs: number
  /** One HTTP request's timeout (headers and body). Default 5,000 ms. */
  readonly requestTimeoutMs: number
  /** First retry delay, doubled per attempt up to retryDelayMaxMs. Defaults 10 and 500 ms. */
  readonly retryDelayMinMs: number
  readonly retryDelayMaxMs: number
  /** Keep-alive connections per server. Default 16. */
  readonly connectionsPerServer: number
  /** Entries per read request when the caller gives no limit. Default 1,000. */
  readonly readPageSize: number
  /** Append batching (see AppendBatcherConfig). */
  readonly batching: Partial<AppendBatcherConfig>
  /** Exactly-once identity; a random UUID by default. */
  readonly clientId?: string
}

export const DEFAULT_HTTP_LOG_CLIENT_CONFIG = Object.freeze({
  deadlineMs: 10_000,
  requestTimeoutMs: 5_000,
  retryDelayMinMs: 10,
  retryDelayMaxMs: 500,
  connectionsPerServer: 16,
  readPageSize: 1_000,
  batching: {},
})

const MSGPACK = 'application/msgpack'

interface WireEntry {
  position: number
  streams: string[]
  data: Uint8Array
  ts?: number
}

interface ErrorBody {
  error?: { code?: string; message?: string; leader?: string; trimmedBefore?: number }
}

/** A failure worth trying elsewhere or later. */
class Retryable extends Error {
  constructor(
    message: string,
    readonly leader: string | null = null,
  ) {
    super(message)
  }
}

const CODES: Readonly<Record<number, LogErrorCode>> = { 400: 'bad_request', 404: 'not_found', 409: 'bad_request', 410: 'trimmed', 413: 'too_large' }

function normalize(url: string): string {
  const u = new URL(/^https?:\/\//.test(url) ? url : `http://${url}`)
  return `${u.protocol}//${u.host}`
}

export class HttpLogClient implements LogClient {
  readonly config: HttpLogClientConfig
  private readonly servers: string[]
  private readonly pools = new Map<string, Pool>()
  private leader: string | null = null
  private next = 0
  private closed = false
  private readonly batcher: AppendBatcher
  private readonly subscriptions = new Set<{ close(): void }>()

  constructor(config: Partial<HttpLogClientConfig> & Pick<HttpLogClientConfig, 'servers'>) {
    const c: HttpLogClientConfig = { ...DEFAULT_HTTP_LOG_CLIENT_CONFIG, ...config }
    if (!Array.isArray(c.servers) || c.servers.length === 0) throw new RangeError('HttpLogClient: servers must list at least one URL')
    for (const k of ['deadlineMs', 'requestTimeoutMs', 'retryDelayMinMs', 'retryDelayMaxMs', 'connectionsPerServer', 'readPageSize'] as const) {
      if (!Number.isSafeInteger(c[k]) || c[k] < 1) throw new RangeError(`HttpLogClient: ${k} must be a positive integer, got ${String(c[k])}`)
    }
    this.config = c
    this.servers = c.servers.map(normalize)
    // This client retries within its deadline itself (following the leader), so the
    // batcher makes one attempt per batch: its retries would multiply the deadline.
    this.batcher = new AppendBatcher(
      (entries, id, reads) => this.sendAppend(entries, id, reads),
      { ...c.batching, retryAttemptsMax: 1 },
      c.clientId,
      (calls) => this.sendConditionalBatch(calls),
    )
  }

  get clientId(): string {
    return this.batcher.clientId
  }

  /** The leader this client currently talks to, if known. */
  get knownLeader(): string | null {
    return this.leader
  }

  append(entries: readonly AppendEntry[], options?: AppendOptions): Promise<number[]> {
    if (this.closed) return Promise.reject(new LogError('closed', 'log client closed'))
    if (options?.reads !== undefined) return this.batcher.appendConditional(entries, options.reads)
    return this.batcher.append(entries)
  }

  async read(range: ReadRange): Promise<ReadResult> {
    assertRange(range)
    return this.readPath('/v1/log', range)
  }

  async readStream(stream: string, range: ReadRange): Promise<ReadResult> {
    assertStreamName(stream)
    assertRange(range)
    return this.readPath(`/v1/streams/${encodeURIComponent(stream)}`, range)
  }

  async tail(streams: readonly string[] = []): Promise<TailResult> {
    for (const s of streams) assertStreamName(s)
    const q = streams.length > 0 ? `?streams=${encodeURIComponent(streams.join(','))}` : ''
    const r = (await this.call('GET', `/v1/tail${q}`)) as { tail: number; streams: Record<string, number> }
    return { tail: r.tail, streams: r.streams }
  }

  async trim(stream: string, before: number): Promise<{ trimmedBefore: number }> {
    assertStreamName(stream)
    assertTrimPoint(before)
    const r = (await this.call('POST', `/v1/streams/${encodeURIComponent(stream)}/trim`, { before })) as { trimmedBefore: number }
    return { trimmedBefore: r.trimmedBefore }
  }

  subscribe(streams: readonly string[], from: number, onEntries: EntriesListener, onError?: SubscriptionErrorListener): Subscription {
    for (const s of streams) assertStreamName(s)
    if (!Number.isSafeInteger(from) || from < 0) throw new LogError('bad_request', `bad subscription start ${from}`)
    let cursor = from
    let ws: WebSocket | null = null
    let stopped = false
    let attempt = 0
    let timer: NodeJS.Timeout | null = null
    const fail = (e: LogError): void => {
      if (stopped) return
      sub.close()
      onError?.(e)
    }
    const connect = (): void => {
      if (stopped) return
      const server = this.leader ?? this.servers[(this.next + attempt) % this.servers.length]!
      const q = new URLSearchParams({ from: String(cursor) })
      if (streams.length > 0) q.set('streams', streams.join(','))
      const url = `${server.replace(/^http/, 'ws')}/v1/subscribe?${q.toString()}`
      const sock = new WebSocket(url, { perMessageDeflate: false, handshakeTimeout: this.config.requestTimeoutMs })
      ws = sock
      sock.binaryType = 'nodebuffer'
      sock.on('message', (raw: Buffer) => {
        if (stopped) return
        // A push frame has a read answer's shape: decoded by the same fast path (error frames by the library).
        const fast = fastPushFrame(raw)
        if (fast !== null) {
          attempt = 0
          if (fast.entries.length === 0 && fast.next <= cursor) return
          cursor = Math.max(cursor, fast.next)
          onEntries(fast.entries, cursor)
          return
        }
        let frame: { entries?: WireEntry[]; next?: number } & ErrorBody
        try {
          frame = decode(raw) as typeof frame
        } catch {
          sock.terminate()
          return
        }
        if (frame.error !== undefined) {
          const code = frame.error.code
          if (code === 'trimmed' || code === 'bad_request' || code === 'not_found') {
            fail(new LogError(code, frame.error.message ?? code))
          }
          return // other errors (overloaded, unavailable): the close that follows reconnects
        }
        attempt = 0
        const entries = (frame.entries ?? []).map(toEntry)
        const next = frame.next ?? cursor
        if (entries.length === 0 && next <= cursor) return
        cursor = Math.max(cursor, next)
        onEntries(entries, cursor)
      })
      const retry = (): void => {
        if (stopped || ws !== sock) return
        ws = null
        attempt++
        const delay = Math.min(this.config.retryDelayMaxMs, this.config.retryDelayMinMs * 2 ** Math.min(attempt, 10))
        timer = setTimeout(connect, delay)
      }
      sock.on('close', retry)
      sock.on('error', () => {
        this.leader = null
        retry()
      })
    }
    const sub = {
      close: (): void => {
        if (stopped) return
        stopped = true
        if (timer) clearTimeout(timer)
        this.subscriptions.delete(sub)
        ws?.terminate()
        ws = null
      },
    }
    this.subscriptions.add(sub)
    connect()
    return sub
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.batcher.close()
    for (const s of [...this.subscriptions]) s.close()
    await Promise.all([...this.pools.values()].map((p) => p.close()))
    this.pools.clear()
  }

  // ---------------------------------------------------------------- plumbing

  private async readPath(path: string, range: ReadRange): Promise<ReadResult> {
    const q = new URLSearchParams({ from: String(range.from), limit: String(range.limit ?? this.config.readPageSize) })
    if (range.to !== undefined) q.set('to', String(range.to))
    const r = (await this.call('GET', `${path}?${q.toString()}`, undefined, decodeReadAnswer)) as ReadResult | { entries: WireEntry[]; next: number }
    return r instanceof FastReadAnswer ? r : { entries: (r.entries as WireEntry[]).map(toEntry), next: r.next }
  }

  /**
   * Concurrent conditional appends, sent together. Those of one entry (every transaction
   * commit) go as ONE append whose entries carry their own reads (per-entry conditions):
   * one seq, one session record and one slot op for all of them, each entry accepted or
   * refused on its own. Others go in one POST /v1/append/batch, each with its own seq.
   */
  private async sendConditionalBatch(calls: readonly ConditionalCall[]): Promise<(number[] | Error)[]> {
    const out = new Array<number[] | Error>(calls.length)
    const singles: number[] = []
    const others: number[] = []
    for (let i = 0; i < calls.length; i++) (calls[i]!.entries.length === 1 && calls[i]!.reads.length > 0 ? singles : others).push(i)
    // Both settle before the lane is free again; a request that failed as a whole fails its own calls only.
    const fail = (which: readonly number[]) => (err: unknown) => {
      const e = err instanceof Error ? err : new LogError('unavailable', String(err))
      for (const i of which) out[i] = e
    }
    await Promise.all([
      singles.length > 0 ? this.sendEach(calls, singles, out).catch(fail(singles)) : undefined,
      others.length > 0 ? this.sendBatchItems(calls, others, out).catch(fail(others)) : undefined,
    ])
    return out
  }

  /**
   * Single-entry conditional calls as one append with per-entry reads, under the first
   * call's (lane, seq): the request is retried whole by `call`, so the log answers a retry
   * from the session with the same positions and refusals.
   */
  private async sendEach(calls: readonly ConditionalCall[], which: readonly number[], out: (number[] | Error)[]): Promise<void> {
    const items = which.map((i) => ({ entry: calls[i]!.entries[0]!, reads: calls[i]!.reads }))
    const id = calls[which[0]!]!.id
    const r = (await this.call('POST', '/v1/append', new PreEncoded(encodeEachBody(items, id.clientId, id.seq)))) as { positions?: unknown; refused?: unknown }
    const positions = r.positions
    if (!Array.isArray(positions) || positions.length !== which.length) {
      throw new LogError('unavailable', `malformed append answer: expected ${which.length} positions`)
    }
    const refused = new Map<number, unknown>()
    if (Array.isArray(r.refused)) for (const x of r.refused as { index?: unknown; conflict?: unknown }[]) if (typeof x.index === 'number') refused.set(x.index, x.conflict)
    for (let k = 0; k < which.length; k++) {
      const p = positions[k] as unknown
      if (typeof p === 'number' && p >= 0) {
        out[which[k]!] = [p]
        continue
      }
      const conflict = parseConflictDetails(refused.get(k))
      out[which[k]!] =
        conflict === undefined
          ? new LogError('unavailable', `malformed append answer: entry ${k} has no position and no conflict`)
          : new LogError('conflict', `${conflict.stream}/${conflict.key} was written ${conflict.position >= 0 ? `at position ${conflict.position}` : 'by a write not chosen yet or not remembered'}, after the version read (${conflict.version})`, { conflict })
    }
  }

  /**
   * Conditional calls in one POST /v1/append/batch, each with its own seq. The request as a
   * whole is retried by `call` (leader changes, 503); an item that alone failed with a
   * retryable code (rare: e.g. leadership lost between items) is sent again, with its seq,
   * until the deadline; every other item error is that call's own answer.
   */
  private async sendBatchItems(calls: readonly ConditionalCall[], which: readonly number[], out: (number[] | Error)[]): Promise<void> {
    const deadline = Date.now() + this.config.deadlineMs
    let delay = this.config.retryDelayMinMs
    let todo = which
    for (;;) {
      const appends = todo.map((i) => {
        const c = calls[i]!
        return { entries: wireEntries(c.entries), clientId: c.id.clientId, seq: c.id.seq, reads: c.reads }
      })
      const r = (await this.call('POST', '/v1/append/batch', { appends })) as { results?: unknown }
      if (!Array.isArray(r.results) || r.results.length !== todo.length) {
        throw new LogError('unavailable', `malformed batch answer: expected ${todo.length} results`)
      }
      const again: number[] = []
      for (let k = 0; k < todo.length; k++) {
        const i = todo[k]!
        const res = r.results[k] as { positions?: unknown } & ErrorBody
        if (Array.isArray(res.positions)) {
          out[i] = res.positions as number[]
          continue
        }
        const code = res.error?.code
        if ((code === 'not_leader' || code === 'unavailable' || code === 'overloaded') && Date.now() + delay < deadline) again.push(i)
        else out[i] = itemError(res.error)
      }
      if (again.length === 0) return
      todo = again
      await new Promise((resolve) => setTimeout(resolve, delay))
      delay = Math.min(this.config.retryDelayMaxMs, delay * 2)
    }
  }

  private sendAppend(entries: readonly AppendEntry[], id: AppendRequestId, reads?: AppendOptions['reads']): Promise<number[]> {
    const body = new PreEncoded(encodeAppendBody(entries, id.clientId, id.seq, reads))
    return this.call('POST', '/v1/append', body).then((r) => (r as { positions: number[] }).positions)
  }

  private pool(server: string): Pool {
    let p = this.pools.get(server)
    if (p === undefined) {
      p = new Pool(server, {
        connections: this.config.connectionsPerServer,
        headersTimeout: this.config.requestTimeoutMs,
        bodyTimeout: this.config.requestTimeoutMs,
        connectTimeout: Math.min(this.config.requestTimeoutMs, 2_000),
      })
      this.pools.set(server, p)
    }
    return p
  }

  /** One request against the cluster, following the leader and retrying until the deadline. */
  private async call(method: 'GET' | 'POST', path: string, body?: unknown, decodeOk?: (buf: Uint8Array) => unknown): Promise<unknown> {
    const deadline = Date.now() + this.config.deadlineMs
    let delay = this.config.retryDelayMinMs
    let last = 'no server tried'
    for (let attempt = 0; ; attempt++) {
      if (this.closed) throw new LogError('closed', 'log client closed')
      const server = this.leader ?? this.servers[this.next % this.servers.length]!
      try {
        return await this.once(server, method, path, body, Math.max(1, Math.min(this.config.requestTimeoutMs, deadline - Date.now())), decodeOk)
      } catch (e) {
        if (!(e instanceof Retryable)) throw e
        last = `${server}: ${e.message}`
        if (e.leader !== null && e.leader !== server) {
          this.leader = normalize(e.leader)
          if (attempt < 2 * this.servers.length) continue // follow the redirect at once
        } else {
          this.leader = null
          this.next++
        }
      }
      const now = Date.now()
      if (now >= deadline || now + delay > deadline) throw new LogError('unavailable', `no answer from the cluster within ${this.config.deadlineMs} ms (last: ${last})`)
      await new Promise((r) => setTimeout(r, delay))
      delay = Math.min(this.config.retryDelayMaxMs, delay * 2)
    }
  }

  private async once(server: string, method: 'GET' | 'POST', path: string, body: unknown, timeoutMs: number, decodeOk?: (buf: Uint8Array) => unknown): Promise<unknown> {
    let res
    try {
      res = await this.pool(server).request({
        method,
        path,
        signal: AbortSignal.timeout(timeoutMs),
        // This client follows the leader itself: a follower should answer 421, not forward.
        headers: body === undefined ? { accept: MSGPACK, 'x-quipu-forward': 'false' } : { accept: MSGPACK, 'content-type': MSGPACK, 'x-quipu-forward': 'false' },
        body: body === undefined ? undefined : body instanceof PreEncoded ? body.bytes : bodyEncoder.encode(body),
      })
    } catch (e) {
      throw new Retryable((e as Error).message)
    }
    const buf = new Uint8Array(await res.body.arrayBuffer())
    let decoded: unknown
    try {
      decoded = buf.length === 0 ? {} : decodeOk !== undefined && res.statusCode < 300 ? decodeOk(buf) : decode(buf)
    } catch {
      throw new Retryable(`undecodable answer (status ${res.statusCode})`)
    }
    if (res.statusCode < 300) return decoded
    const err = (decoded as ErrorBody).error
    const message = err?.message ?? `status ${res.statusCode}`
    if (res.statusCode === 421) throw new Retryable(message, err?.leader ?? null)
    if (res.statusCode === 429 || res.statusCode >= 500) throw new Retryable(`${err?.code ?? res.statusCode}: ${message}`)
    if (res.statusCode === 409) {
      // 409 with details: a conditional append lost; without (a seq below the session
      // window): a broken request.
      const conflict = parseConflictDetails((err as { conflict?: unknown } | undefined)?.conflict)
      if (conflict !== undefined) throw new LogError('conflict', message, { conflict })
    }
    throw new LogError(CODES[res.statusCode] ?? 'bad_request', message)
  }
}

// One encoder and one decoder for every request and answer (the library's encode()/decode()
// build a new one per call).
const bodyEncoder = new Encoder({ ignoreUndefined: true })
const answerDecoder = new Decoder()
const decode = (buf: Uint8Array): unknown => answerDecoder.decode(buf)

/** A request body already in msgpack. */
class PreEncoded {
  constructor(readonly bytes: Uint8Array) {}
}

/** Absent fields are left out (msgpack would carry undefined as null). */
function wireEntries(entries: readonly AppendEntry[]): object[] {
  return entries.map((e) => (e.keys === undefined ? { streams: e.streams, data: e.data } : { streams: e.streams, data: e.data, keys: e.keys }))
}

/** The error of one item of a batch answer, as the single-append path would raise it. */
function itemError(err: ErrorBody['error']): LogError {
  const message = err?.message ?? 'the append failed'
  switch (err?.code) {
    case 'conflict': {
      // With details: a conditional append lost; without (a seq below the session window): a broken request.
      const conflict = parseConflictDetails((err as { conflict?: unknown }).conflict)
      return conflict !== undefined ? new LogError('conflict', message, { conflict }) : new LogError('bad_request', message)
    }
    case 'bad_request':
    case 'too_large':
    case 'not_found':
    case 'trimmed':
      return new LogError(err.code, message)
    default:
      return new LogError('unavailable', `${err?.code ?? 'error'}: ${message}`)
  }
}

/** A read answer decoded by the fast path (fast-decode.ts). */
class FastReadAnswer implements ReadResult {
  constructor(
    readonly entries: LogEntry[],
    readonly next: number,
  ) {}
}

const readAnswerDecoder = new FastDecoder()

/** A read answer: the fast path, else the library (any other shape, e.g. a newer server's extra fields). */
function decodeReadAnswer(buf: Uint8Array): unknown {
  try {
    const r = readAnswerDecoder.decodeReadAnswer(buf)
    if (r !== null) return new FastReadAnswer(r.entries, r.next)
  } catch {
    // Malformed or unsupported for the fast path: the library decides.
  }
  return decode(buf)
}

function fastPushFrame(raw: Uint8Array): { entries: LogEntry[]; next: number } | null {
  try {
    return readAnswerDecoder.decodeReadAnswer(raw)
  } catch {
    return null // malformed for the fast path: the library decides
  }
}

function toEntry(e: WireEntry): LogEntry {
  return e.ts === undefined ? { position: e.position, streams: e.streams, data: e.data } : { position: e.position, streams: e.streams, data: e.data, ts: e.ts }
}
