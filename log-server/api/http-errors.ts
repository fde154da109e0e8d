// Turns whatever went wrong into a catalog error (log-server/errors.ts) and writes it as
// `{ error: { code, message, ...details } }` with the catalog's status. Known failures
// keep their message; anything unexpected becomes 500 `internal` with a generic message
// (the real error goes to the log, never to the client).

import type { FastifyReply, FastifyRequest } from 'fastify'
import { ERROR_CODES, QuipuError, isQuipuError } from '../errors.ts'
import type { ErrorCode } from '../errors.ts'
import { negotiateFormat, sendFormatted } from './wire.ts'

function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.hasOwn(ERROR_CODES, code)
}

const MESSAGE_CHARS_MAX = 300

function clip(message: string): string {
  return message.length > MESSAGE_CHARS_MAX ? `${message.slice(0, MESSAGE_CHARS_MAX)}…` : message
}

function statusCodeOf(err: object): number | undefined {
  const s = (err as { statusCode?: unknown }).statusCode
  return typeof s === 'number' && Number.isInteger(s) ? s : undefined
}

/**
 * The catalog error for `err`:
 * - a QuipuError as it is;
 * - any Error whose `code` is a catalog code (e.g. a storage or client error that shares
 *   the catalog) with that code and its message;
 * - fastify's own errors: body too large → `too_large`; schema validation, bad JSON,
 *   unsupported content-type and other 4xx → `bad_request` (404 → `not_found`, 429 →
 *   `overloaded`);
 * - anything else → `internal` (the caller logs it).
 */
export function toQuipuError(err: unknown, bodyBytesMax: number): QuipuError {
  if (isQuipuError(err)) return err
  if (typeof err !== 'object' || err === null) return new QuipuError('internal', 'internal error')
  const code = (err as { code?: unknown }).code
  // Framework messages may echo the request (a long URL): keep them short.
  const message = clip(err instanceof Error ? err.message : 'error')
  if (isErrorCode(code)) return new QuipuError(code, message)
  if (code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
    return new QuipuError('too_large', `request body exceeds ${bodyBytesMax} bytes`, { limit: bodyBytesMax })
  }
  if (code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
    return new QuipuError(
      'bad_request',
      'unsupported content-type: send application/msgpack or application/json',
    )
  }
  if ((err as { validation?: unknown }).validation !== undefined) return new QuipuError('bad_request', message)
  const status = statusCodeOf(err)
  if (status !== undefined && status >= 400 && status < 500) {
    if (status === 404) return new QuipuError('not_found', message)
    if (status === 413) return new QuipuError('too_large', message)
    if (status === 429) return new QuipuError('overloaded', message)
    return new QuipuError('bad_request', message)
  }
  if (status === 503) return new QuipuError('unavailable', message)
  return new QuipuError('internal', 'internal error')
}

/** Details that survive both encodings; a detail that cannot be encoded is dropped. */
function safeDetails(details: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(details)) {
    if (k === 'code' || k === 'message') continue
    try {
      JSON.stringify(v)
      out[k] = v
    } catch {
      // A detail that does not serialise (a bigint, a cycle) is not worth failing the answer.
    }
  }
  return out
}

export interface ErrorBody {
  readonly error: { readonly code: ErrorCode; readonly message: string; readonly [detail: string]: unknown }
}

export function errorBody(err: QuipuError): ErrorBody {
  return { error: { code: err.code, message: err.message, ...safeDetails(err.details) } }
}

/** Visible ASCII only: anything else could not go in a header (or would split it). */
const HEADER_SAFE = /^[\x21-\x7e]{1,2048}$/

/**
 * Writes `err` as the answer to `request`, in the format the request negotiates. Adds
 * `x-quipu-leader` for `not_leader` (when the leader is known) and `retry-after` for
 * `unavailable` and `overloaded`.
 */
export function sendError(request: FastifyRequest, reply: FastifyReply, err: QuipuError): void {
  const format = negotiateFormat(request.headers.accept, request.headers['content-type'])
  const leader = err.details['leader']
  if (err.code === 'not_leader' && typeof leader === 'string' && HEADER_SAFE.test(leader)) {
    reply.header('x-quipu-leader', leader)
  }
  if (err.code === 'unavailable' || err.code === 'overloaded') reply.header('retry-after', '1')
  sendFormatted(reply.code(err.status), format, errorBody(err))
}
