// The request/answer routes of the v1 contract: append, tail, log and stream reads, trim,
// status. Each handler checks its input (validate.ts), calls the replica and answers in
// the negotiated format; every failure goes to the server's error handler.

import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import type { AppendAnswer, ReadResult, ReplicaApi } from './replica-api.ts'
import type { HttpLimits } from './limits.ts'
import {
  appendBatchBodySchema,
  batchItems,
  checkStreamName,
  parseAppendBody,
  parseReadRange,
  parseStreamList,
  parseTrimBody,
  rangeQuerySchema,
  streamParamsSchema,
  tailQuerySchema,
  trimBodySchema,
} from './validate.ts'
import type { Query } from './validate.ts'
import { MSGPACK_TYPE, isMsgpackContentType, negotiateFormat, sendFormatted } from './wire.ts'
import { encodeReadAnswer } from './read-answer.ts'
import { errorBody, toQuipuError } from './http-errors.ts'
import { QuipuError } from '../errors.ts'

/** Answers `body` in the format the request negotiates (msgpack, or JSON with base64 data). */
export function sendBody(request: FastifyRequest, reply: FastifyReply, body: unknown): FastifyReply {
  return sendFormatted(reply, negotiateFormat(request.headers.accept, request.headers['content-type']), body)
}

/**
 * A read answer with at most `bytesMax` bytes of entry data (at least one entry). When cut,
 * `next` = the last kept entry's position + 1: every matching entry below it was sent.
 */
export function capReadBytes(result: ReadResult, bytesMax: number): ReadResult {
  let bytes = 0
  let keep = 0
  for (const e of result.entries) {
    bytes += e.data.byteLength
    if (keep > 0 && bytes > bytesMax) break
    keep++
  }
  if (keep === result.entries.length) return result
  return { entries: result.entries.slice(0, keep), next: result.entries[keep - 1]!.position + 1 }
}

/** A read answer, cut at readBytesMax: msgpack written directly (read-answer.ts), JSON the general way. */
function sendRead(request: FastifyRequest, reply: FastifyReply, result: ReadResult, limits: HttpLimits): FastifyReply {
  const capped = capReadBytes(result, limits.readBytesMax)
  const format = negotiateFormat(request.headers.accept, request.headers['content-type'])
  if (format === 'msgpack') return reply.type(MSGPACK_TYPE).send(encodeReadAnswer(capped.entries, capped.next))
  return sendFormatted(reply, format, {
    entries: capped.entries.map((e) => ({ position: e.position, streams: e.streams, data: e.data, ts: e.ts })),
    next: capped.next,
  })
}

const WHOLE_BATCH_CODES: ReadonlySet<QuipuError['code']> = new Set(['not_leader', 'unavailable', 'overloaded'])

/** `{ positions }`, plus `refused` when per-entry conditions refused some entries (only the fields the contract names). */
function appendAnswer(a: AppendAnswer): AppendAnswer {
  return a.refused === undefined ? { positions: a.positions } : { positions: a.positions, refused: a.refused }
}

export interface LogRoutesOptions {
  readonly replica: ReplicaApi
  readonly limits: HttpLimits
}

type NameParams = { name: string }

/** `x-quipu-forward: false` asks a follower for a 421 instead of forwarding to the leader. */
function forwardOf(request: { headers: Record<string, string | string[] | undefined> }): boolean {
  const h = request.headers['x-quipu-forward']
  const v = (Array.isArray(h) ? h[0] : h)?.trim().toLowerCase()
  return v !== 'false' && v !== '0' && v !== 'no'
}

export const logRoutes: FastifyPluginAsync<LogRoutesOptions> = async (app, opts) => {
  const { replica, limits } = opts

  // No JSON schema here: parseAppendBody checks every field (and names the entry at fault),
  // and a schema pass over every entry and read of a batch of commits was pure overhead.
  app.post<{ Body: unknown }>('/v1/append', async (request, reply) => {
    const req = parseAppendBody(request.body, isMsgpackContentType(request.headers['content-type']), limits)
    return sendBody(request, reply, appendAnswer(await replica.append(req, { forward: forwardOf(request) })))
  })

  // Many independent appends in one request (a client's concurrent transaction commits):
  // each keeps its own clientId/seq, reads and answer. They are proposed together, so the
  // leader sequences them in one slot where they fit. When every item fails alike with an
  // error the client should retry as a whole (not_leader, unavailable, overloaded), the
  // request fails with it, so clients follow the leader as for /v1/append.
  app.post<{ Body: unknown }>('/v1/append/batch', { schema: { body: appendBatchBodySchema } }, async (request, reply) => {
    const msgpack = isMsgpackContentType(request.headers['content-type'])
    const items = batchItems(request.body, limits)
    const forward = forwardOf(request)
    // A malformed item fails alone (parsed inside the promise), the others go on.
    const settled = await Promise.allSettled(items.map(async (item) => replica.append(parseAppendBody(item, msgpack, limits), { forward })))
    const errors = settled.map((s) => {
      if (s.status === 'fulfilled') return null
      const q = toQuipuError(s.reason, limits.bodyBytesMax)
      if (q.code === 'internal') request.log.error({ err: s.reason }, 'unexpected error in a batched append')
      return q
    })
    const first = errors[0]
    if (first != null && WHOLE_BATCH_CODES.has(first.code) && errors.every((e) => e !== null && e.code === first.code)) throw first
    const results = settled.map((s, i) => (s.status === 'fulfilled' ? appendAnswer(s.value) : errorBody(errors[i]!)))
    return sendBody(request, reply, { results })
  })

  app.get<{ Querystring: Query }>('/v1/tail', { schema: { querystring: tailQuerySchema } }, async (request, reply) => {
    const streams = parseStreamList(request.query['streams'], limits.queryStreamsMax)
    const result = await replica.tail(streams.length === 0 ? undefined : streams, { forward: forwardOf(request) })
    return sendBody(request, reply, { tail: result.tail, streams: result.streams })
  })

  app.get<{ Querystring: Query }>('/v1/log', { schema: { querystring: rangeQuerySchema } }, async (request, reply) => {
    const range = parseReadRange(request.query, limits)
    return sendRead(request, reply, await replica.readLog(range), limits)
  })

  app.get<{ Querystring: Query; Params: NameParams }>(
    '/v1/streams/:name',
    { schema: { querystring: rangeQuerySchema, params: streamParamsSchema } },
    async (request, reply) => {
      const name = checkStreamName(request.params.name, 'stream')
      const range = parseReadRange(request.query, limits)
      return sendRead(request, reply, await replica.readStream(name, range), limits)
    },
  )

  app.post<{ Body: unknown; Params: NameParams }>(
    '/v1/streams/:name/trim',
    { schema: { body: trimBodySchema, params: streamParamsSchema } },
    async (request, reply) => {
      const name = checkStreamName(request.params.name, 'stream')
      const before = parseTrimBody(request.body)
      const { trimmedBefore } = await replica.trim(name, before, { forward: forwardOf(request) })
      return sendBody(request, reply, { trimmedBefore })
    },
  )

  // Always JSON: an operator's route, read with curl and dashboards.
  app.get('/v1/status', async (_request, reply) => {
    const status = replica.status()
    return sendFormatted(reply, 'json', status)
  })
}
