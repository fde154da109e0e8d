// GET /v1/subscribe: push of committed entries, over a WebSocket (when the client asks
// for an upgrade) or as a streamed newline-delimited JSON answer (when it does not).
//
// Both transports carry the same frames:
//   { entries: [{ position, streams, data, ts }], next }   entries of [previous next, next)
//   { error: { code, message, ...details } }              last frame, then the end
// The first frame is always { entries: [], next: from }: the subscription is open.
//
// The shell owns framing, backpressure and keep-alive; the replica owns ordering (no gaps,
// no repeats). A PushSession connects one replica subscription to one transport (a
// PushSink); the SubscriptionHub counts open sessions and ends them all on shutdown.

import { PassThrough } from 'node:stream'
import type { FastifyBaseLogger, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import type { WebSocket } from 'ws'
import { QuipuError } from '../errors.ts'
import type { ApiEntry, ReplicaApi, Subscription } from './replica-api.ts'
import type { HttpLimits } from './limits.ts'
import { errorBody, sendError, toQuipuError } from './http-errors.ts'
import type { ErrorBody } from './http-errors.ts'
import { parseQueryInt, parseStreamList, subscribeQuerySchema } from './validate.ts'
import type { Query } from './validate.ts'
import { NDJSON_TYPE, encodeJson, encodeMsgpack } from './wire.ts'
import { encodeReadAnswer } from './read-answer.ts'
import type { WireFormat } from './wire.ts'

export interface PushFrame {
  readonly entries: readonly ApiEntry[]
  readonly next: number
}

/** One transport's end of a subscription. */
export interface PushSink {
  frame(frame: PushFrame): void
  /** Sends the error frame and ends the transport. Called at most once, last. */
  fail(body: ErrorBody, status: number): void
  /** Ends the transport without an error frame (the client went away). */
  end(): void
  /** Bytes queued towards the client and not yet taken by the network. */
  bufferedBytes(): number
}

/**
 * Only the contract's fields go out, whatever else a replica's entry object carries. (The
 * msgpack writer, encodeReadAnswer, writes only those anyway: this is for JSON.)
 */
export function wireFrame(f: PushFrame): PushFrame {
  return { entries: f.entries.map((e) => ({ position: e.position, streams: e.streams, data: e.data, ts: e.ts })), next: f.next }
}

/**
 * Cuts one replica batch into frames of at most `entriesMax` entries and `bytesMax` bytes of
 * data (a frame always has at least one entry). A frame that is not the batch's last says
 * `next` = its last entry's position + 1, which is where a resumed subscription must start.
 */
export function splitFrames(entries: readonly ApiEntry[], next: number, entriesMax: number, bytesMax: number): PushFrame[] {
  if (entries.length === 0) return [{ entries: [], next }]
  const frames: PushFrame[] = []
  let start = 0
  while (start < entries.length) {
    let end = start
    let bytes = 0
    while (end < entries.length && end - start < entriesMax) {
      const b = entries[end]!.data.byteLength
      if (end > start && bytes + b > bytesMax) break
      bytes += b
      end++
    }
    const last = end === entries.length
    frames.push({ entries: start === 0 && last ? entries : entries.slice(start, end), next: last ? next : entries[end - 1]!.position + 1 })
    start = end
  }
  return frames
}

export class PushSession {
  private closed = false
  private subscription: Subscription | undefined
  /** The last `next` sent: where the client resumes. */
  lastNext: number

  constructor(
    private readonly replica: ReplicaApi,
    private readonly streams: readonly string[],
    private readonly from: number,
    private readonly sink: PushSink,
    private readonly limits: HttpLimits,
    private readonly log: FastifyBaseLogger,
    private readonly onClosed: (s: PushSession) => void,
  ) {
    this.lastNext = from
  }

  get isClosed(): boolean {
    return this.closed
  }

  /**
   * Sends the opening frame and subscribes. A synchronous failure of replica.subscribe is
   * returned (the session is then closed and nothing else was sent), so that a transport
   * that has not committed to an answer yet can still answer with an HTTP error.
   */
  start(): QuipuError | undefined {
    this.sink.frame({ entries: [], next: this.from })
    try {
      const sub = this.replica.subscribe(
        this.streams,
        this.from,
        (entries, next) => this.push(entries, next),
        (err) => this.fail(err),
      )
      if (this.closed) sub.close()
      else this.subscription = sub
      return undefined
    } catch (err) {
      if (this.closed) return undefined
      this.closed = true
      this.onClosed(this)
      return this.toError(err)
    }
  }

  /** Keep-alive for transports without their own (an empty frame at the last `next`). */
  heartbeat(): void {
    if (!this.closed) this.sink.frame({ entries: [], next: this.lastNext })
  }

  private push(entries: readonly ApiEntry[], next: number): void {
    if (this.closed) return
    try {
      for (const f of splitFrames(entries, next, this.limits.frameEntriesMax, this.limits.frameBytesMax)) this.sink.frame(f)
      this.lastNext = next
    } catch (err) {
      this.fail(err)
      return
    }
    const buffered = this.sink.bufferedBytes()
    if (buffered > this.limits.subscriptionBufferedBytesMax) {
      this.fail(
        new QuipuError('overloaded', `subscriber too slow: ${buffered} bytes queued; reconnect with from=${this.lastNext}`, {
          next: this.lastNext,
        }),
      )
    }
  }

  /** Ends the subscription with an error frame (a replica failure, backpressure, shutdown). */
  fail(err: unknown): void {
    if (this.closed) return
    this.closed = true
    this.subscription?.close()
    this.onClosed(this)
    const q = this.toError(err)
    try {
      this.sink.fail(errorBody(q), q.status)
    } catch (e) {
      this.log.warn({ err: e }, 'subscription: error frame not sent')
      this.sink.end()
    }
  }

  /** Ends the subscription without an error frame: the client has gone. */
  stop(): void {
    if (this.closed) return
    this.closed = true
    this.subscription?.close()
    this.onClosed(this)
    this.sink.end()
  }

  private toError(err: unknown): QuipuError {
    const q = toQuipuError(err, this.limits.bodyBytesMax)
    if (q.code === 'internal') this.log.error({ err }, 'subscription failed unexpectedly')
    return q
  }
}

/** Open sessions of one server: bounded by subscriptionsMax, all ended on shutdown. */
export class SubscriptionHub {
  private readonly sessions = new Set<PushSession>()

  get size(): number {
    return this.sessions.size
  }

  add(s: PushSession): void {
    this.sessions.add(s)
  }

  remove(s: PushSession): void {
    this.sessions.delete(s)
  }

  /** Ends every open session with an error frame (`unavailable`: the server is going away). */
  closeAll(message: string): void {
    for (const s of [...this.sessions]) s.fail(new QuipuError('unavailable', message, { next: s.lastNext }))
  }
}

// --- transports -------------------------------------------------------------------------

/** WebSocket close code for an error frame: 4000 + the error's HTTP status (4410 = trimmed). */
export function closeCodeOf(status: number): number {
  return 4000 + status
}

function webSocketSink(socket: WebSocket, format: WireFormat): PushSink {
  const encode = (v: unknown): Buffer | string => (format === 'msgpack' ? encodeMsgpack(v) : encodeJson(v))
  const isOpen = (): boolean => socket.readyState === socket.OPEN
  return {
    frame(f) {
      // A push frame has a read answer's shape: msgpack frames are written directly (read-answer.ts).
      if (isOpen()) socket.send(format === 'msgpack' ? encodeReadAnswer(f.entries, f.next) : encode(wireFrame(f)), { binary: format === 'msgpack' })
    },
    fail(body, status) {
      if (!isOpen()) return
      socket.send(encode(body), { binary: format === 'msgpack' })
      socket.close(closeCodeOf(status), body.error.code)
    },
    end() {
      if (isOpen()) socket.close(1000)
    },
    bufferedBytes: () => socket.bufferedAmount,
  }
}

function ndjsonSink(out: PassThrough, reply: FastifyReply): PushSink {
  return {
    frame(f) {
      if (!out.writableEnded) out.write(`${encodeJson(wireFrame(f))}\n`)
    },
    fail(body) {
      if (!out.writableEnded) out.end(`${encodeJson(body)}\n`)
    },
    end() {
      if (!out.writableEnded) out.end()
    },
    bufferedBytes: () => out.writableLength + out.readableLength + reply.raw.writableLength,
  }
}

interface SubscribeArgs {
  readonly streams: string[]
  readonly from: number
  readonly format: WireFormat
}

function parseSubscribeQuery(query: Query, limits: HttpLimits): SubscribeArgs {
  const from = parseQueryInt(query['from'], 'from')
  if (from === undefined) throw new QuipuError('bad_request', 'from is required (GET /v1/tail gives the current tail)')
  const streams = parseStreamList(query['streams'], limits.queryStreamsMax)
  const f = query['format']
  if (f !== undefined && f !== 'msgpack' && f !== 'json') throw new QuipuError('bad_request', 'format must be msgpack or json')
  return { streams, from, format: f === 'json' ? 'json' : 'msgpack' }
}

export interface SubscribeRoutesOptions {
  readonly replica: ReplicaApi
  readonly limits: HttpLimits
  readonly hub: SubscriptionHub
}

/** The subscribe route. Needs @fastify/websocket registered before it. */
export const subscribeRoutes: FastifyPluginAsync<SubscribeRoutesOptions> = async (app, opts) => {
  const { replica, limits, hub } = opts

  const newSession = (args: SubscribeArgs, sink: PushSink, log: FastifyBaseLogger): PushSession => {
    const s = new PushSession(replica, args.streams, args.from, sink, limits, log, (x) => hub.remove(x))
    hub.add(s)
    return s
  }

  app.route<{ Querystring: Query }>({
    method: 'GET',
    url: '/v1/subscribe',
    schema: { querystring: subscribeQuerySchema },
    // Checked before any upgrade, so that a bad subscription is a plain HTTP error.
    preHandler: async (request) => {
      parseSubscribeQuery(request.query, limits)
      if (hub.size >= limits.subscriptionsMax) {
        throw new QuipuError('overloaded', `too many open subscriptions (${limits.subscriptionsMax}); retry later`)
      }
    },

    // No upgrade: streamed newline-delimited JSON.
    handler: (request: FastifyRequest<{ Querystring: Query }>, reply: FastifyReply) => {
      const args = parseSubscribeQuery(request.query, limits)
      const out = new PassThrough()
      const session = newSession(args, ndjsonSink(out, reply), request.log)
      // 'close' on the response: finished, or the client went away.
      reply.raw.on('close', () => session.stop())
      const early = session.start()
      if (early !== undefined) {
        out.destroy()
        sendError(request, reply, early)
        return reply
      }
      const timer = setInterval(() => session.heartbeat(), limits.subscriptionKeepAliveMs)
      timer.unref()
      out.on('close', () => clearInterval(timer))
      return reply
        .code(200)
        .type(NDJSON_TYPE)
        .header('cache-control', 'no-store')
        .header('x-accel-buffering', 'no')
        .send(out)
    },

    // Upgrade: a WebSocket with binary msgpack frames, or text JSON frames (?format=json).
    wsHandler: (socket: WebSocket, request: FastifyRequest<{ Querystring: Query }>) => {
      const args = parseSubscribeQuery(request.query, limits)
      const session = newSession(args, webSocketSink(socket, args.format), request.log)
      let alive = true
      const timer = setInterval(() => {
        if (!alive) {
          request.log.info('subscription: peer did not answer the keep-alive ping; dropping it')
          socket.terminate()
          return
        }
        alive = false
        if (socket.readyState === socket.OPEN) socket.ping()
      }, limits.subscriptionKeepAliveMs)
      timer.unref()
      socket.on('pong', () => {
        alive = true
      })
      // Client frames carry nothing in this protocol; they are read and dropped.
      socket.on('message', () => {})
      socket.on('close', () => {
        clearInterval(timer)
        session.stop()
      })
      const early = session.start()
      if (early !== undefined) webSocketSink(socket, args.format).fail(errorBody(early), early.status)
    },
  })
}
