// Shared bits of the HTTP tests: build a server over a FakeReplica, encode msgpack
// requests, decode answers whatever their format, assert error answers.

import { decode, encode } from '@msgpack/msgpack'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { expect } from 'vitest'
import { buildServer } from '../../log-server/api/server.ts'
import type { HttpLimits } from '../../log-server/api/limits.ts'
import { FakeReplica } from './fake-replica.ts'

export interface Harness {
  readonly app: FastifyInstance
  readonly replica: FakeReplica
}

export function harness(limits?: Partial<HttpLimits>): Harness {
  const replica = new FakeReplica()
  return { app: buildServer({ replica, limits }), replica }
}

export const MSGPACK = 'application/msgpack'

export function msgpack(value: unknown): Buffer {
  const u8 = encode(value)
  return Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength)
}

export function isMsgpackAnswer(res: LightMyRequestResponse): boolean {
  return String(res.headers['content-type'] ?? '').startsWith(MSGPACK)
}

/** The answer's body, decoded by its content-type (msgpack or JSON). */
export function answer(res: LightMyRequestResponse): Record<string, unknown> {
  const value: unknown = isMsgpackAnswer(res) ? decode(res.rawPayload) : JSON.parse(res.body)
  if (typeof value !== 'object' || value === null) throw new Error(`answer is not an object: ${res.body}`)
  return value as Record<string, unknown>
}

export function b64(bytes: Uint8Array | string): string {
  return Buffer.from(bytes).toString('base64')
}

/** Asserts an error answer: status, `error.code`, a message, and the format asked for. */
export function expectError(res: LightMyRequestResponse, status: number, code: string): Record<string, unknown> {
  expect(res.statusCode, res.body).toBe(status)
  const body = answer(res)
  const error = body['error'] as Record<string, unknown> | undefined
  expect(error, res.body).toBeDefined()
  expect(error!['code']).toBe(code)
  expect(typeof error!['message']).toBe('string')
  expect((error!['message'] as string).length).toBeGreaterThan(0)
  return error!
}

/** The server still serves after whatever came before: a good append and a good read. */
export async function expectServes(app: FastifyInstance): Promise<void> {
  const res = await app.inject({ method: 'POST', url: '/v1/append', payload: { entries: [{ streams: ['ok'], data: b64('ok') }] } })
  expect(res.statusCode, res.body).toBe(200)
  const tail = await app.inject({ method: 'GET', url: '/v1/tail?streams=ok' })
  expect(tail.statusCode, tail.body).toBe(200)
}
