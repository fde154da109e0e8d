// Wire formats of the HTTP API: msgpack (entry data as bin) and JSON (entry data as a
// base64 string). Requests say which one their body is with `content-type`; answers
// follow the request's `accept` header (see negotiateFormat). Everything here is pure.

import { Decoder, Encoder } from '@msgpack/msgpack'
import type { FastifyReply } from 'fastify'

export type WireFormat = 'json' | 'msgpack'

/** Media types read as msgpack bodies. The first is the one answers carry. */
export const MSGPACK_TYPES: readonly string[] = ['application/msgpack', 'application/x-msgpack', 'application/vnd.msgpack']
export const MSGPACK_TYPE = 'application/msgpack'
export const JSON_TYPE = 'application/json; charset=utf-8'
export const NDJSON_TYPE = 'application/x-ndjson; charset=utf-8'

/** The bare media type of a content-type/accept item: lower case, no parameters. */
function mediaType(value: string): string {
  const semi = value.indexOf(';')
  return (semi === -1 ? value : value.slice(0, semi)).trim().toLowerCase()
}

export function isMsgpackContentType(contentType: string | undefined): boolean {
  return contentType !== undefined && MSGPACK_TYPES.includes(mediaType(contentType))
}

interface Preference {
  /** Quality 0..1 of the most specific matching accept item, 0 if none matches. */
  readonly q: number
  /** Whether the type was named exactly (not only through a wildcard). */
  readonly explicit: boolean
  /** Position of that item in the header. */
  readonly index: number
}

function preference(items: readonly { type: string; q: number }[], exact: readonly string[]): Preference {
  let best = { q: 0, specificity: -1, index: -1 }
  items.forEach((item, index) => {
    let specificity: number
    if (exact.includes(item.type)) specificity = 2
    else if (item.type === 'application/*') specificity = 1
    else if (item.type === '*/*') specificity = 0
    else return
    if (specificity > best.specificity) best = { q: item.q, specificity, index }
  })
  return { q: best.q, explicit: best.specificity === 2, index: best.index }
}

function parseAccept(accept: string): { type: string; q: number }[] {
  const items: { type: string; q: number }[] = []
  for (const part of accept.split(',')) {
    const [typePart, ...params] = part.split(';')
    const type = (typePart ?? '').trim().toLowerCase()
    if (type === '') continue
    let q = 1
    for (const p of params) {
      const [k, v] = p.split('=')
      if (k?.trim().toLowerCase() === 'q' && v !== undefined) {
        const n = Number(v.trim())
        q = Number.isFinite(n) ? Math.min(1, Math.max(0, n)) : 0
      }
    }
    items.push({ type, q })
  }
  return items
}

/**
 * The format of an answer. `accept` decides when it prefers one of msgpack and JSON: the
 * higher quality wins; at equal quality, the one named explicitly (not through a
 * wildcard) wins; both named at equal quality, the one listed first wins. With no
 * `accept`, or one that does not choose (only wildcards, or neither type acceptable),
 * the answer takes the request body's format: msgpack for a msgpack body, JSON
 * otherwise. Never 406: a client that accepts neither still gets JSON.
 */
export function negotiateFormat(accept: string | undefined, contentType: string | undefined): WireFormat {
  const fallback: WireFormat = isMsgpackContentType(contentType) ? 'msgpack' : 'json'
  if (accept === undefined || accept.trim() === '') return fallback
  const items = parseAccept(accept)
  const m = preference(items, MSGPACK_TYPES)
  const j = preference(items, ['application/json'])
  if (m.q > j.q) return 'msgpack'
  if (j.q > m.q) return 'json'
  if (m.q > 0 && m.explicit !== j.explicit) return m.explicit ? 'msgpack' : 'json'
  if (m.q > 0 && m.explicit && j.explicit) return m.index < j.index ? 'msgpack' : 'json'
  return fallback
}

// --- encoding ---------------------------------------------------------------------------

export function toBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
}

// One encoder, and one decoder per body bound, for the whole process: the library's
// encode()/decode() build a new one per call (the encoder with a 2 KB buffer).
const msgpackEncoder = new Encoder({ ignoreUndefined: true })
const bodyDecoders = new Map<number, Decoder>()

/** msgpack: Uint8Array (and Buffer) values go out as bin. */
export function encodeMsgpack(value: unknown): Buffer {
  return toBuffer(msgpackEncoder.encode(value))
}

/**
 * JSON with every Uint8Array (Buffer included) as a standard base64 string. The replacer
 * looks at the holder's raw value because JSON.stringify calls Buffer#toJSON before the
 * replacer sees it.
 */
export function encodeJson(value: unknown): string {
  return JSON.stringify(value, function (this: unknown, key: string, v: unknown): unknown {
    const raw: unknown = (this as Record<string, unknown>)[key]
    if (raw instanceof Uint8Array) return toBuffer(raw).toString('base64')
    return v
  })
}

/**
 * Sends `body` in `format`: msgpack goes out pre-encoded (a Buffer skips fastify's
 * serializers); JSON through a per-reply serializer (which also replaces one a failed
 * handler may have set before the error handler answers).
 */
export function sendFormatted(reply: FastifyReply, format: WireFormat, body: unknown): FastifyReply {
  if (format === 'msgpack') return reply.type(MSGPACK_TYPE).send(encodeMsgpack(body))
  return reply.type(JSON_TYPE).serializer(encodeJson).send(body)
}

// --- decoding ---------------------------------------------------------------------------

/**
 * Decodes one msgpack value that must fill the whole body (trailing bytes are an error).
 * `__proto__` keys are refused by the decoder; map keys must be strings or numbers.
 * Throws on malformed input; the caller turns that into 400 `bad_request`.
 */
export function decodeMsgpackBody(body: Buffer, bytesMax: number): unknown {
  let d = bodyDecoders.get(bytesMax)
  if (d === undefined) {
    d = new Decoder({ maxStrLength: bytesMax, maxBinLength: bytesMax, maxArrayLength: bytesMax, maxMapLength: bytesMax, maxExtLength: bytesMax })
    if (bodyDecoders.size < 16) bodyDecoders.set(bytesMax, d)
  }
  return d.decode(body)
}

const BASE64_CHARS = /^[A-Za-z0-9+/]*={0,2}$/

/** Exact decoded length of a standard padded base64 string, or -1 when its shape is wrong. */
export function base64DecodedLength(s: string): number {
  if (s.length % 4 !== 0) return -1
  const pad = s.endsWith('==') ? 2 : s.endsWith('=') ? 1 : 0
  return (s.length / 4) * 3 - pad
}

/**
 * Strict standard base64 (RFC 4648 §4, `+/`, padded, no whitespace): returns the bytes, or
 * undefined when `s` is not the canonical encoding of some bytes. Node's own decoder
 * silently skips bad characters; the round trip catches that.
 */
export function decodeBase64Strict(s: string): Buffer | undefined {
  if (base64DecodedLength(s) < 0 || !BASE64_CHARS.test(s)) return undefined
  const bytes = Buffer.from(s, 'base64')
  return bytes.toString('base64') === s ? bytes : undefined
}
