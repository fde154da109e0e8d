// Read-ahead for catch-up: reads one stream's entries in [from, to) page by page, in
// order, with up to `depth` requests in flight, so that the next pages are on their way
// (and the server works on them) while the caller applies the current one.
//
// The next page of a stream starts where the previous one ended (`next`), which is only
// known once it is answered. So the range is cut into spans of global positions,
// [a, b), each read with `to: b`; a span's width is the page size divided by the density
// of the stream (its entries per log position) seen so far. A span answered short (the
// server's entry or byte bound, `next < b`) is completed by a read of [next, b) before
// any later span is handed out. Pages are handed out in position order, each covering
// [its from, its next) exactly, so a caller that applies every page applies each entry
// once, in log order.
//
// Memory: at most `depth` pages are requested and not yet handed out; each is bounded by
// `limit` entries and by the server's byte bound on a read answer.
//
// Open ranges (`to` undefined: up to wherever the log ends): the reader stops at a page
// that ends short and is certainly not cut by a bound (no entries, or `next` past its
// last entry + 1): the server's tail as of that read.

import type { ReadRange, ReadResult } from './log-client.ts'

export interface ReadAheadOptions {
  /** Entries asked for per request (>= 1). */
  readonly limit: number
  /** Requests in flight at most, the one being waited for included (>= 1; 1 = no read-ahead). */
  readonly depth: number
}

/** One page: every entry of the stream in [from, next), in position order. */
export interface ReadAheadPage extends ReadResult {
  readonly from: number
}

interface Span {
  readonly from: number
  /** End of the span (exclusive); Infinity for the first read of an open range. */
  readonly to: number
  readonly result: Promise<ReadResult>
}

export class StreamReadAhead {
  private readonly read: (range: ReadRange) => Promise<ReadResult>
  private readonly limit: number
  private readonly depth: number
  private readonly to: number
  /** Where the next page handed out starts. */
  private position: number
  /** End of the positions already given to spans (requested or answered). */
  private planned: number
  private readonly spans: Span[] = []
  /** Log positions per request that should hold about `limit` entries of the stream. */
  private width: number
  private done = false
  private closed = false
  /** Requests sent (for stats). */
  requests = 0

  /**
   * `read` answers one request (e.g. `(r) => log.readStream(stream, r)`). `to`: end of the
   * range (exclusive), or undefined for an open range.
   */
  constructor(read: (range: ReadRange) => Promise<ReadResult>, from: number, to: number | undefined, options: ReadAheadOptions) {
    if (!Number.isSafeInteger(options.limit) || options.limit < 1) throw new RangeError(`read-ahead limit must be an integer >= 1, got ${options.limit}`)
    if (!Number.isSafeInteger(options.depth) || options.depth < 1) throw new RangeError(`read-ahead depth must be an integer >= 1, got ${options.depth}`)
    this.read = read
    this.limit = options.limit
    this.depth = options.depth
    this.to = to ?? Infinity
    this.position = from
    this.planned = from
    this.width = options.limit
    if (from >= this.to) this.done = true
  }

  /** Requests sent and not yet handed out. */
  get inFlight(): number {
    return this.spans.length
  }

  /**
   * The next page in order, or null once the range is covered (open range: once the end of
   * the log was reached). A page with `next === from` (no progress) means the server does
   * not hold the range up to `to` yet; the reader then stops (null afterwards).
   * Rejects with the error of the read that failed; the reader is then done.
   * One call at a time (await each before the next).
   */
  async next(): Promise<ReadAheadPage | null> {
    if (this.done || this.closed) return null
    this.start()
    const span = this.spans[0]!
    let result: ReadResult
    try {
      result = await span.result
    } catch (err) {
      this.close()
      throw err
    }
    if (this.closed) return null
    this.spans.shift()
    const from = span.from
    const { entries, next } = result
    if (!Number.isSafeInteger(next) || next < from || next > span.to) {
      this.close()
      throw new Error(`internal: a read of [${from}, ${span.to}) answered next = ${next}`)
    }
    this.position = next
    if (next === from || next >= this.to) {
      // Covered; or nothing held past `from` yet: the end of the log (open range) or a server behind `to`.
      this.finish()
      return { from, entries, next }
    }
    const short = next < span.to
    this.learn(from, next, entries.length, short)
    if (short) {
      if (this.to === Infinity && (entries.length === 0 || next > entries[entries.length - 1]!.position + 1)) {
        // Not cut by a bound (that ends a page right after its last entry): the tail as of this read.
        this.finish()
        return { from, entries, next }
      }
      // Cut short by a bound. The rest of the span comes before any later span; with no later
      // span in flight it is simply planned again.
      if (this.spans.length > 0) this.spans.unshift(this.request(next, span.to))
      else this.planned = next
    }
    this.fill()
    return { from, entries, next }
  }

  /**
   * Sends the first request now if none is in flight (next() does it too): a caller
   * reading several streams starts them all at once.
   */
  start(): void {
    if (this.done || this.closed || this.spans.length > 0) return
    // The first read of a range goes alone and whole: its answer tells the stream's density
    // (and a small range is one request). Later reads fill the window with spans.
    this.issue(this.position, this.requests === 0 ? this.to : this.spanEnd(this.position))
  }

  /** Stops: requests in flight are left to finish, their answers (and errors) dropped. */
  close(): void {
    this.closed = true
    this.spans.length = 0
  }

  private finish(): void {
    this.done = true
    this.spans.length = 0
  }

  /** Adapts the span width to what the last answer covered. */
  private learn(from: number, next: number, count: number, short: boolean): void {
    const covered = next - from
    if (count === 0) this.width = Math.min(this.width * 4, Number.MAX_SAFE_INTEGER)
    // Cut short by a bound: that is what one answer holds.
    else if (short) this.width = covered
    else this.width = Math.max(1, Math.floor((covered * this.limit) / count))
  }

  private spanEnd(from: number): number {
    return Math.min(this.to, from + this.width, Number.MAX_SAFE_INTEGER)
  }

  private fill(): void {
    while (!this.closed && this.spans.length < this.depth && this.planned < this.to) this.issue(this.planned, this.spanEnd(this.planned))
  }

  private issue(from: number, to: number): void {
    this.spans.push(this.request(from, to))
    this.planned = to
  }

  private request(from: number, to: number): Span {
    this.requests++
    const result = this.read(to === Infinity ? { from, limit: this.limit } : { from, to, limit: this.limit })
    // An answer nobody waits for any more (closed, or behind a failed read) must not be an unhandled rejection.
    result.catch(() => undefined)
    return { from, to, result }
  }
}
