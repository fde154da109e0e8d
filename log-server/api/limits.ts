// Bounds of the HTTP shell. Every body, read, subscription buffer and timer has a bound
// here; validateHttpLimits rejects nonsense with a message that names the field.
// docs/http-api.md lists the defaults: keep the two in step.

export interface HttpLimits {
  /** Bytes of one request body, encoded (msgpack or JSON), at most: 413 `too_large` past it. */
  readonly bodyBytesMax: number
  /** Bytes of one entry's data (decoded), at most: 413 `too_large` naming the entry index. */
  readonly entryBytesMax: number
  /** Entries in one append request, at most: 413 `too_large`. */
  readonly appendEntriesMax: number
  /** Streams one entry names, at most: 400 `bad_request`. */
  readonly entryStreamsMax: number
  /** Conflict keys one entry declares (`entries[i].keys`), at most: 400 `bad_request`. */
  readonly entryKeysMax: number
  /** Reads of one conditional append (`reads`), at most: 400 `bad_request` (the leader's own bound is 1,000). */
  readonly appendReadsMax: number
  /** Appends in one `POST /v1/append/batch` request, at most: 413 `too_large`. */
  readonly appendBatchMax: number
  /** Entries one read answers when the request gives no `limit`. */
  readonly readLimitDefault: number
  /** Entries one read answers, at most: a larger `limit` is lowered to this (read `next` to go on). */
  readonly readLimitMax: number
  /**
   * Bytes of entry data one read answer carries, at most; past it the answer is cut short
   * (at least one entry is always returned) and `next` points after the last entry sent.
   */
  readonly readBytesMax: number
  /** Stream names in one `?streams=` list (tail, subscribe), at most: 400 `bad_request`. */
  readonly queryStreamsMax: number
  /** Open subscriptions (WebSocket + streamed HTTP) on this server, at most: 429 `overloaded`. */
  readonly subscriptionsMax: number
  /**
   * Bytes queued to one subscriber and not yet taken by the network, at most. A subscriber
   * that falls this far behind gets an `overloaded` error frame and is closed; it resumes by
   * reconnecting with `from` = the last `next` it received.
   */
  readonly subscriptionBufferedBytesMax: number
  /** Entries in one pushed subscription frame, at most (larger batches are split). */
  readonly frameEntriesMax: number
  /** Bytes of entry data in one pushed subscription frame, at most (at least one entry per frame). */
  readonly frameBytesMax: number
  /**
   * Milliseconds between keep-alives of a subscription: a WebSocket ping (a peer that has not
   * answered the previous one is dropped) or, on a streamed HTTP subscription, an empty
   * `{ entries: [], next }` line.
   */
  readonly subscriptionKeepAliveMs: number
}

/**
 * Defaults:
 * - bodyBytesMax 4 MiB and entryBytesMax 1 MiB: DESIGN's request and entry sizes (JSON
 *   bodies carry base64, so ~3 MiB of data fits in a JSON body).
 * - appendEntriesMax 10,000: one request is one or a few Paxos slots, never a runaway array.
 * - entryStreamsMax 256: a transaction's commit entry names the streams it writes.
 * - entryKeysMax 1,024 conflict keys per entry; appendReadsMax 1,000 reads per conditional
 *   append (the leader's conditionReadsMax): a transaction, not a table scan.
 * - appendBatchMax 1,024 appends in one batch request (each still bounded as above, and
 *   the whole body by bodyBytesMax).
 * - readLimitDefault 1,000 and readLimitMax 10,000; readBytesMax 8 MiB (the storage layer
 *   already bounds a read at 4 MiB: this is the shell's own safety net).
 * - queryStreamsMax 1,000.
 * - subscriptionsMax 1,024; subscriptionBufferedBytesMax 8 MiB; frames of at most 1,000
 *   entries and 1 MiB of data; keep-alive every 30 s.
 */
export const DEFAULT_HTTP_LIMITS: HttpLimits = Object.freeze({
  bodyBytesMax: 4 << 20,
  entryBytesMax: 1 << 20,
  appendEntriesMax: 10_000,
  entryKeysMax: 1_024,
  appendReadsMax: 1_000,
  appendBatchMax: 1_024,
  entryStreamsMax: 256,
  readLimitDefault: 1_000,
  readLimitMax: 10_000,
  readBytesMax: 8 << 20,
  queryStreamsMax: 1_000,
  subscriptionsMax: 1_024,
  subscriptionBufferedBytesMax: 8 << 20,
  frameEntriesMax: 1_000,
  frameBytesMax: 1 << 20,
  subscriptionKeepAliveMs: 30_000,
})

export function validateHttpLimits(partial: Partial<HttpLimits> = {}): HttpLimits {
  for (const k of Object.keys(partial)) {
    if (!Object.hasOwn(DEFAULT_HTTP_LIMITS, k)) throw new RangeError(`HttpLimits: unknown limit ${k}`)
  }
  const merged: HttpLimits = { ...DEFAULT_HTTP_LIMITS, ...partial }
  for (const k of Object.keys(DEFAULT_HTTP_LIMITS) as (keyof HttpLimits)[]) {
    const v: unknown = merged[k]
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) {
      throw new RangeError(`HttpLimits.${k} must be a positive safe integer, got ${String(v)}`)
    }
  }
  if (merged.readLimitDefault > merged.readLimitMax) {
    throw new RangeError(
      `HttpLimits.readLimitDefault (${merged.readLimitDefault}) must not exceed readLimitMax (${merged.readLimitMax})`,
    )
  }
  if (merged.entryBytesMax > merged.bodyBytesMax) {
    throw new RangeError(
      `HttpLimits.entryBytesMax (${merged.entryBytesMax}) must not exceed bodyBytesMax (${merged.bodyBytesMax})`,
    )
  }
  return Object.freeze(merged)
}
