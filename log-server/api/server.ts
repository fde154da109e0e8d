// The replica's HTTP shell: fastify over a ReplicaApi. buildServer returns the app without
// listening (tests use app.inject(); the replica's launcher calls app.listen()).
//
// Order matters: parsers, the error and not-found handlers and the shutdown hooks are set
// on the root before the route plugins are registered, and @fastify/websocket is
// registered before the subscribe route (it wraps routes as they are added).
// docs/http-api.md is the user's description of all this: keep it in step.

import Fastify from 'fastify'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import websocket from '@fastify/websocket'
import { QuipuError } from '../errors.ts'
import type { ReplicaApi } from './replica-api.ts'
import { validateHttpLimits } from './limits.ts'
import type { HttpLimits } from './limits.ts'
import { sendError, toQuipuError } from './http-errors.ts'
import { logRoutes } from './log-routes.ts'
import { SubscriptionHub, subscribeRoutes } from './subscribe.ts'
import { formatSchemaErrors } from './validate.ts'
import { MSGPACK_TYPES, decodeMsgpackBody } from './wire.ts'

export interface ServerDeps {
  readonly replica: ReplicaApi
  /** Overrides of DEFAULT_HTTP_LIMITS (limits.ts); validated, a bad value throws RangeError. */
  readonly limits?: Partial<HttpLimits>
  /** fastify's logger option: false (default), true, or pino options. */
  readonly logger?: boolean | object
}

/** Client frames on a subscription WebSocket carry nothing; a small bound keeps them cheap. */
const WS_CLIENT_PAYLOAD_BYTES_MAX = 4096

export function buildServer(deps: ServerDeps): FastifyInstance {
  const limits = validateHttpLimits(deps.limits)
  const hub = new SubscriptionHub()
  let closing = false

  const handleError = (err: unknown, request: FastifyRequest, reply: FastifyReply): void => {
    const q = toQuipuError(err, limits.bodyBytesMax)
    if (q.code === 'internal') request.log.error({ err }, 'unexpected error')
    sendError(request, reply, q)
  }

  const app = Fastify({
    logger: deps.logger ?? false,
    bodyLimit: limits.bodyBytesMax,
    // Stream names are up to 200 characters, up to 600 once percent-encoded.
    routerOptions: { maxParamLength: 1024 },
    // HEAD is not part of the API (and a HEAD on /v1/subscribe must not open a subscription).
    exposeHeadRoutes: false,
    // Our own shutdown guard answers `unavailable` in the catalog's shape instead.
    return503OnClosing: false,
    // No type coercion: "1" is not a number and ["a"] is not "a". Schemas mean what they say.
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, useDefaults: false } },
    schemaErrorFormatter: formatSchemaErrors,
    // Errors raised before routing (a malformed URL) go through the catalog too.
    frameworkErrors: (err: FastifyError, request: FastifyRequest, reply: FastifyReply) => handleError(err, request, reply),
  })

  app.setErrorHandler((err: FastifyError, request, reply) => handleError(err, request, reply))
  app.setNotFoundHandler((request, reply) => {
    const url = request.url.length > 200 ? `${request.url.slice(0, 200)}…` : request.url
    sendError(request, reply, new QuipuError('not_found', `no route ${request.method} ${url}`))
  })

  // Bodies: JSON (fastify's parser: proto-poisoning refused) and msgpack. Plain text is not an API format.
  app.removeContentTypeParser('text/plain')
  app.addContentTypeParser(
    [...MSGPACK_TYPES],
    { parseAs: 'buffer', bodyLimit: limits.bodyBytesMax },
    (_request: FastifyRequest, body: Buffer | string, done: (err: Error | null, body?: unknown) => void) => {
      try {
        const buf = typeof body === 'string' ? Buffer.from(body) : body
        done(null, decodeMsgpackBody(buf, limits.bodyBytesMax))
      } catch (err) {
        const why = err instanceof Error ? err.message : String(err)
        done(new QuipuError('bad_request', `malformed msgpack body: ${why}`))
      }
    },
  )

  app.addHook('onRequest', async () => {
    if (closing) throw new QuipuError('unavailable', 'server is shutting down')
  })
  // Before @fastify/websocket's own preClose (registered later) closes the sockets bare:
  // every open subscription gets an `unavailable` error frame saying where to resume.
  app.addHook('preClose', async () => {
    closing = true
    hub.closeAll('server is shutting down; resubscribe from next elsewhere')
  })

  app.register(websocket, { options: { maxPayload: WS_CLIENT_PAYLOAD_BYTES_MAX } })
  app.register(logRoutes, { replica: deps.replica, limits })
  app.register(subscribeRoutes, { replica: deps.replica, limits, hub })
  return app
}
