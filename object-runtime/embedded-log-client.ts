// A LogClient over a log in this process (log-server/embedded.ts): no HTTP, no ports.
// Appends are batched and exactly-once like the HTTP client's.
import { openEmbeddedLog } from '../log-server/embedded.ts'
import type { ReplicaApi } from '../log-server/api/replica-api.ts'
import { AppendBatcher, type AppendBatcherConfig } from './append-batcher.ts'
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
  type LogErrorCode,
  type ReadRange,
  type ReadResult,
  type Subscription,
  type SubscriptionErrorListener,
  type TailResult,
} from './log-client.ts'

const PAGE = 1_000

function toLogError(e: unknown): unknown {
  if (e instanceof LogError || !(e instanceof Error)) return e
  const code = (e as { code?: unknown }).code
  if (code === 'conflict') {
    const conflict = parseConflictDetails((e as { details?: { conflict?: unknown } }).details?.conflict)
    if (conflict !== undefined) return new LogError('conflict', e.message, { cause: e, conflict })
  }
  const map: Record<string, LogErrorCode> = { trimmed: 'trimmed', too_large: 'too_large', bad_request: 'bad_request', not_found: 'not_found' }
  if (typeof code === 'string') return new LogError(map[code] ?? 'unavailable', e.message, { cause: e })
  return e
}

async function mapped<T>(p: Promise<T>): Promise<T> {
  try {
    return await p
  } catch (e) {
    throw toLogError(e)
  }
}

export class EmbeddedLogClient implements LogClient {
  private readonly batcher: AppendBatcher
  private closed = false

  /** `owned`: close() also stops the log (when this client opened it). */
  constructor(
    private readonly replica: ReplicaApi & { stop?: () => Promise<void> },
    private readonly owned: boolean,
    batching: Partial<AppendBatcherConfig> = {},
  ) {
    this.batcher = new AppendBatcher(
      (entries, id, reads) =>
        mapped(this.replica.append(reads === undefined ? { entries, clientId: id.clientId, seq: id.seq } : { entries, clientId: id.clientId, seq: id.seq, reads }).then((r) => r.positions)),
      batching,
    )
  }

  /** Opens (or creates) the embedded log in `dir` and a client that owns it. */
  static async open(dir: string, opts: { sync?: boolean } = {}): Promise<EmbeddedLogClient> {
    const replica = await openEmbeddedLog({ dir, sync: opts.sync })
    return new EmbeddedLogClient(replica, true)
  }

  append(entries: readonly AppendEntry[], options?: AppendOptions): Promise<number[]> {
    if (this.closed) return Promise.reject(new LogError('closed', 'log client closed'))
    if (options?.reads !== undefined) return this.batcher.appendConditional(entries, options.reads)
    return this.batcher.append(entries)
  }

  async read(range: ReadRange): Promise<ReadResult> {
    assertRange(range)
    this.check()
    return mapped(this.replica.readLog({ from: range.from, to: range.to, limit: range.limit ?? PAGE }))
  }

  async readStream(stream: string, range: ReadRange): Promise<ReadResult> {
    assertStreamName(stream)
    assertRange(range)
    this.check()
    return mapped(this.replica.readStream(stream, { from: range.from, to: range.to, limit: range.limit ?? PAGE }))
  }

  async tail(streams: readonly string[] = []): Promise<TailResult> {
    for (const s of streams) assertStreamName(s)
    this.check()
    return mapped(this.replica.tail(streams))
  }

  async trim(stream: string, before: number): Promise<{ trimmedBefore: number }> {
    assertStreamName(stream)
    assertTrimPoint(before)
    this.check()
    return mapped(this.replica.trim(stream, before))
  }

  subscribe(streams: readonly string[], from: number, onEntries: EntriesListener, onError?: SubscriptionErrorListener): Subscription {
    for (const s of streams) assertStreamName(s)
    this.check()
    let open = true
    const sub = this.replica.subscribe(
      streams,
      from,
      (entries, next) => {
        if (open) onEntries(entries, next)
      },
      (err) => {
        if (!open) return
        open = false
        const e = toLogError(err)
        onError?.(e instanceof LogError ? e : new LogError('unavailable', String(err)))
      },
    )
    return {
      close: () => {
        open = false
        sub.close()
      },
    }
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.batcher.close()
    if (this.owned) await this.replica.stop?.()
  }

  private check(): void {
    if (this.closed) throw new LogError('closed', 'log client closed')
  }
}
