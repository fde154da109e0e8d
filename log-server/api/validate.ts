// What the HTTP API accepts. The JSON schemas declare the shape (fastify checks them
// before a handler runs, with type coercion off); the functions below turn a checked
// body or query into ReplicaApi arguments and enforce what a schema cannot say (safe
// integers, byte sizes, base64, duplicate names). Every failure is a QuipuError:
// 400 `bad_request`, or 413 `too_large` for size limits.

import { QuipuError } from '../errors.ts'
import type { AppendRequest, ReadRange } from './replica-api.ts'
import type { HttpLimits } from './limits.ts'
import { base64DecodedLength, decodeBase64Strict } from './wire.ts'

// --- stream names -----------------------------------------------------------------------

export const STREAM_NAME_BYTES_MAX = 200
/** 1–200 bytes of `[A-Za-z0-9._:/-]` (ASCII, so bytes = characters). */
export const STREAM_NAME_RE = /^[A-Za-z0-9._:/-]{1,200}$/

export function isStreamName(s: unknown): s is string {
  return typeof s === 'string' && STREAM_NAME_RE.test(s)
}

function describe(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)
  if (v instanceof Uint8Array) return `${v.byteLength} bytes of binary`
  if (Array.isArray(v)) return 'an array'
  if (v === null) return 'null'
  if (typeof v === 'number' || typeof v === 'boolean') return String(v)
  return typeof v
}

export function checkStreamName(s: unknown, where: string): string {
  if (!isStreamName(s)) {
    throw new QuipuError(
      'bad_request',
      `${where}: bad stream name ${describe(s)} (1-${STREAM_NAME_BYTES_MAX} characters of A-Z a-z 0-9 . _ : / -)`,
    )
  }
  return s
}

// --- query integers ---------------------------------------------------------------------

/**
 * Query-string integers: canonical decimal digits only — no sign, fraction, exponent,
 * whitespace, leading zeros or hex — and at most 2^53 - 1. "0", "42" pass; "-1", "1.5",
 * "1e3", "0x10", "01", " 1", "" fail.
 */
export const QUERY_INT_RE = /^(0|[1-9][0-9]{0,15})$/

export function parseQueryInt(value: unknown, name: string): number | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'string' || !QUERY_INT_RE.test(value)) {
    throw new QuipuError('bad_request', `${name} must be a non-negative integer in canonical decimal form, got ${describe(value)}`)
  }
  const n = Number(value)
  if (!Number.isSafeInteger(n)) throw new QuipuError('bad_request', `${name} must be at most 2^53 - 1, got ${value}`)
  return n
}

/** A body integer: a JSON/msgpack number that is a non-negative safe integer. */
export function checkBodyInt(value: unknown, name: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new QuipuError('bad_request', `${name} must be a non-negative safe integer, got ${describe(value)}`)
  }
  return value
}

// --- query helpers ----------------------------------------------------------------------

export type Query = Readonly<Record<string, unknown>>

/**
 * `?streams=a,b`: comma-separated names, each checked. Absent or empty → []. Repeated
 * names are kept once (first occurrence order).
 */
export function parseStreamList(value: unknown, max: number): string[] {
  if (value === undefined || value === '') return []
  if (typeof value !== 'string') throw new QuipuError('bad_request', 'streams must be one comma-separated list (give the parameter once)')
  const names = value.split(',')
  if (names.length > max) throw new QuipuError('bad_request', `streams names ${names.length} streams; at most ${max}`)
  const out = new Set<string>()
  for (const n of names) out.add(checkStreamName(n, 'streams'))
  return [...out]
}

/** `?from=&to=&limit=` of a read. `from` defaults to 0; `limit` to readLimitDefault, capped at readLimitMax. */
export function parseReadRange(query: Query, limits: HttpLimits): ReadRange {
  const from = parseQueryInt(query['from'], 'from') ?? 0
  const to = parseQueryInt(query['to'], 'to')
  const limit = parseQueryInt(query['limit'], 'limit') ?? limits.readLimitDefault
  if (limit < 1) throw new QuipuError('bad_request', 'limit must be at least 1')
  if (to !== undefined && to < from) throw new QuipuError('bad_request', `to (${to}) must not be below from (${from})`)
  const range: ReadRange = { from, limit: Math.min(limit, limits.readLimitMax) }
  return to === undefined ? range : { ...range, to }
}

// --- bodies -----------------------------------------------------------------------------

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array)
}

/**
 * An append body → AppendRequest. `msgpack` says which encoding the body came in:
 * msgpack bodies carry `data` as bin, JSON bodies as a strict base64 string.
 * Size limits answer 413 `too_large`: more than appendEntriesMax entries, or an entry
 * with more than entryBytesMax bytes of data (the error names the entry's `index`).
 */
export function parseAppendBody(body: unknown, msgpack: boolean, limits: HttpLimits): AppendRequest {
  if (!isPlainObject(body)) throw new QuipuError('bad_request', `body must be an object, got ${describe(body)}`)
  const rawEntries = body['entries']
  if (!Array.isArray(rawEntries) || rawEntries.length === 0) {
    throw new QuipuError('bad_request', 'entries must be a non-empty array')
  }
  if (rawEntries.length > limits.appendEntriesMax) {
    throw new QuipuError(
      'too_large',
      `${rawEntries.length} entries in one append; at most ${limits.appendEntriesMax}`,
      { entries: rawEntries.length, limit: limits.appendEntriesMax },
    )
  }
  const entries: { streams: string[]; data: Uint8Array; keys?: string[]; reads?: { stream: string; key: string; version: number }[] }[] = []
  const copies = msgpack ? new DataCopies(rawEntries, limits.entryBytesMax) : null
  for (let i = 0; i < rawEntries.length; i++) {
    const e: unknown = rawEntries[i]
    if (!isPlainObject(e)) throw new QuipuError('bad_request', `entries[${i}] must be an object, got ${describe(e)}`, { index: i })
    const streams = e['streams']
    if (!Array.isArray(streams) || streams.length === 0) {
      throw new QuipuError('bad_request', `entries[${i}].streams must be a non-empty array of stream names`, { index: i })
    }
    if (streams.length > limits.entryStreamsMax) {
      throw new QuipuError('bad_request', `entries[${i}] names ${streams.length} streams; at most ${limits.entryStreamsMax}`, { index: i })
    }
    // The decoded arrays are this request's own: checked in place, not copied.
    for (let j = 0; j < streams.length; j++) checkStreamName(streams[j], `entries[${i}].streams`)
    const names = streams as string[]
    if (names.length > 1 && new Set(names).size !== names.length) {
      throw new QuipuError('bad_request', `entries[${i}].streams names a stream twice`, { index: i })
    }
    const data = entryData(e['data'], i, copies, limits)
    // Absent keys and reads stay absent (never undefined: the wire would turn it into null).
    const entry: (typeof entries)[number] = { streams: names, data }
    if (e['keys'] !== undefined) entry.keys = conflictKeys(e['keys'], `entries[${i}].keys`, limits.entryKeysMax, i)
    if (e['reads'] !== undefined) {
      const reads = parseReads(e['reads'], limits, `entries[${i}].reads`)
      if (reads.length > 0) entry.reads = reads
    }
    entries.push(entry)
  }
  const req: { -readonly [K in keyof AppendRequest]: AppendRequest[K] } = { entries }
  if (body['reads'] !== undefined) {
    const reads = parseReads(body['reads'], limits, 'reads')
    if (reads.length > 0) req.reads = reads
  }
  if (req.reads !== undefined && entries.some((e) => e.reads !== undefined)) {
    throw new QuipuError('bad_request', 'reads go on the append (all or nothing) or on its entries (each on its own), not both')
  }
  const clientId = body['clientId']
  const seq = body['seq']
  if (clientId !== undefined) {
    if (typeof clientId !== 'string' || clientId.length < 1 || clientId.length > 128) {
      throw new QuipuError('bad_request', `clientId must be a string of 1-128 characters, got ${describe(clientId)}`)
    }
    req.clientId = clientId
  }
  if (seq !== undefined) req.seq = checkBodyInt(seq, 'seq')
  if ((req.clientId === undefined) !== (req.seq === undefined)) {
    throw new QuipuError('bad_request', 'clientId and seq go together: give both (exactly-once) or neither')
  }
  return req
}

/** Conflict keys and read keys: 1-256 characters. */
export const CONFLICT_KEY_CHARS_MAX = 256

function checkConflictKey(k: unknown, where: string): string {
  if (typeof k !== 'string' || k.length < 1 || k.length > CONFLICT_KEY_CHARS_MAX) {
    throw new QuipuError('bad_request', `${where} must be a string of 1-${CONFLICT_KEY_CHARS_MAX} characters, got ${describe(k)}`)
  }
  return k
}

function conflictKeys(keys: unknown, where: string, max: number, index: number): string[] {
  if (!Array.isArray(keys)) throw new QuipuError('bad_request', `${where} must be an array of strings`, { index })
  if (keys.length > max) throw new QuipuError('bad_request', `${where} has ${keys.length} keys; at most ${max}`, { index })
  for (let j = 0; j < keys.length; j++) checkConflictKey(keys[j], `${where}[${j}]`)
  return keys as string[]
}

/** `reads` of a conditional append (or of one entry): [{ stream, key, version }], version an integer >= -1. */
function parseReads(raw: unknown, limits: HttpLimits, where: string): { stream: string; key: string; version: number }[] {
  if (!Array.isArray(raw)) throw new QuipuError('bad_request', `${where} must be an array of { stream, key, version }`)
  if (raw.length > limits.appendReadsMax) throw new QuipuError('bad_request', `${where} has ${raw.length} items; at most ${limits.appendReadsMax}`)
  const out: { stream: string; key: string; version: number }[] = []
  for (let j = 0; j < raw.length; j++) {
    const r: unknown = raw[j]
    if (!isPlainObject(r)) throw new QuipuError('bad_request', `${where}[${j}] must be an object, got ${describe(r)}`)
    const version = r['version']
    if (typeof version !== 'number' || !Number.isSafeInteger(version) || version < -1) {
      throw new QuipuError('bad_request', `${where}[${j}].version must be an integer >= -1, got ${describe(version)}`)
    }
    out.push({ stream: checkStreamName(r['stream'], `${where}[${j}].stream`), key: checkConflictKey(r['key'], `${where}[${j}].key`), version })
  }
  return out
}

/**
 * The data of a msgpack body's entries, copied out of the body into one buffer: the
 * decoder hands out views into the whole request body, and a copy lets the replica keep
 * the entries without pinning the body (up to bodyBytesMax) they came in. One allocation
 * for all entries of the request, not one per entry.
 */
class DataCopies {
  private readonly buf: Uint8Array
  private at = 0
  constructor(rawEntries: readonly unknown[], entryBytesMax: number) {
    let total = 0
    for (const e of rawEntries) {
      const d = isPlainObject(e) ? e['data'] : undefined
      if (d instanceof Uint8Array && d.byteLength <= entryBytesMax) total += d.byteLength
    }
    this.buf = new Uint8Array(total)
  }

  copy(data: Uint8Array): Uint8Array {
    const start = this.at
    this.buf.set(data, start)
    this.at += data.byteLength
    return this.buf.subarray(start, this.at)
  }
}

function tooLarge(i: number, bytes: number, limits: HttpLimits): QuipuError {
  return new QuipuError('too_large', `entries[${i}] has ${bytes} bytes of data; at most ${limits.entryBytesMax}`, {
    index: i,
    bytes,
    limit: limits.entryBytesMax,
  })
}

/** An entry's data: msgpack bin (copied by `copies`), or a strict base64 string in JSON (copies === null). */
function entryData(data: unknown, i: number, copies: DataCopies | null, limits: HttpLimits): Uint8Array {
  if (copies !== null) {
    if (!(data instanceof Uint8Array)) {
      throw new QuipuError('bad_request', `entries[${i}].data must be msgpack bin, got ${describe(data)}`, { index: i })
    }
    if (data.byteLength > limits.entryBytesMax) throw tooLarge(i, data.byteLength, limits)
    return copies.copy(data)
  }
  if (typeof data !== 'string') {
    throw new QuipuError('bad_request', `entries[${i}].data must be a base64 string, got ${describe(data)}`, { index: i })
  }
  // Check the size before decoding: a too-large entry costs no allocation.
  const declared = base64DecodedLength(data)
  if (declared > limits.entryBytesMax) throw tooLarge(i, declared, limits)
  const bytes = decodeBase64Strict(data)
  if (bytes === undefined) {
    throw new QuipuError('bad_request', `entries[${i}].data is not valid base64 (standard alphabet, padded)`, { index: i })
  }
  return bytes
}

/** A trim body `{ before }` → before. */
export function parseTrimBody(body: unknown): number {
  if (!isPlainObject(body)) throw new QuipuError('bad_request', `body must be an object, got ${describe(body)}`)
  return checkBodyInt(body['before'], 'before')
}

// --- JSON schemas (fastify validates these before the handlers run) ---------------------

/** The part of an ajv error fastify hands to its schemaErrorFormatter that we read. */
export interface SchemaError {
  readonly instancePath: string
  readonly message?: string
  readonly params: Readonly<Record<string, unknown>>
}

/** `/entries/0/streams/1` → `entries[0].streams[1]`. */
function readablePath(dataVar: string, instancePath: string): string {
  let out = dataVar === 'body' ? 'body' : ''
  for (const seg of instancePath.split('/').slice(1)) {
    if (/^[0-9]+$/.test(seg)) out += `[${seg}]`
    else out += out === '' ? seg : `.${seg}`
  }
  return out === '' ? dataVar : out
}

/**
 * fastify's schemaErrorFormatter: the first schema failure as a 400 `bad_request` whose
 * message names the field in the API's own terms.
 */
export function formatSchemaErrors(errors: readonly SchemaError[], dataVar: string): QuipuError {
  const e = errors[0]
  if (e === undefined) return new QuipuError('bad_request', `invalid ${dataVar}`)
  const where = readablePath(dataVar, e.instancePath)
  const pattern = e.params['pattern']
  if (pattern === QUERY_INT_RE.source) {
    return new QuipuError('bad_request', `${where} must be a non-negative integer in canonical decimal form (digits only, no sign, fraction, exponent or leading zero)`)
  }
  if (pattern === STREAM_NAME_RE.source) {
    return new QuipuError('bad_request', `${where}: bad stream name (1-${STREAM_NAME_BYTES_MAX} characters of A-Z a-z 0-9 . _ : / -)`)
  }
  // A query parameter given twice arrives as an array.
  if (dataVar === 'querystring' && e.params['type'] === 'string') {
    return new QuipuError('bad_request', `${where} must be given once`)
  }
  return new QuipuError('bad_request', `${where} ${e.message ?? 'is invalid'}`)
}

const streamNameSchema = { type: 'string', minLength: 1, maxLength: STREAM_NAME_BYTES_MAX, pattern: STREAM_NAME_RE.source } as const
const queryIntSchema = { type: 'string', pattern: QUERY_INT_RE.source } as const
const safeIntSchema = { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER } as const

/** `POST /v1/append/batch`: `{ appends: [append body, ...] }`; each item is checked by parseAppendBody. */
export const appendBatchBodySchema = {
  type: 'object',
  required: ['appends'],
  properties: { appends: { type: 'array', minItems: 1, items: { type: 'object' } } },
} as const

/** The items of a batch body (each an append body, parsed on its own: one bad item fails alone). */
export function batchItems(body: unknown, limits: HttpLimits): unknown[] {
  if (!isPlainObject(body) || !Array.isArray(body['appends']) || body['appends'].length === 0) {
    throw new QuipuError('bad_request', 'appends must be a non-empty array of append bodies')
  }
  const items = body['appends'] as unknown[]
  if (items.length > limits.appendBatchMax) {
    throw new QuipuError('too_large', `${items.length} appends in one batch; at most ${limits.appendBatchMax}`, { appends: items.length, limit: limits.appendBatchMax })
  }
  return items
}

export const trimBodySchema = {
  type: 'object',
  required: ['before'],
  properties: { before: safeIntSchema },
} as const

export const streamParamsSchema = {
  type: 'object',
  required: ['name'],
  properties: { name: streamNameSchema },
} as const

export const rangeQuerySchema = {
  type: 'object',
  properties: { from: queryIntSchema, to: queryIntSchema, limit: queryIntSchema },
} as const

export const tailQuerySchema = {
  type: 'object',
  properties: { streams: { type: 'string' } },
} as const

export const subscribeQuerySchema = {
  type: 'object',
  required: ['from'],
  properties: {
    streams: { type: 'string' },
    from: queryIntSchema,
    format: { type: 'string', enum: ['msgpack', 'json'] },
  },
} as const
