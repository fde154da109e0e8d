// Checkers that watch the replicas from outside (TigerBeetle/Jepsen style): they see
// only what a driver sees — ChosenRecords emitted in Outputs, what is on each disk,
// and what clients were told — never the core's internals.
//
// LogChecker guards agreement and the deterministic application of the log:
//   - at most one value chosen per slot, and every replica derives the same record
//     (firstPosition, ts, outcomes) from it;
//   - each replica applies slots contiguously, so its log is a prefix of one sequence;
//   - positions and log time follow from the previous record;
//   - exactly-once: the first occurrence of (clientId, seq) is stored, later ones are
//     `dup` with the original first position.
// HistoryChecker guards what clients observe: acknowledged appends are in the log
// exactly once at the acknowledged positions, in acknowledgement order, and tail
// answers are linearizable.

import { ballotString, compareBallots, type AppendOp, type Ballot, type ChosenRecord, type Entry, type Message, type ProposalResult, type ReplicaId } from '../../log-server/paxos/types.ts'

export class CheckFailure extends Error {
  constructor(
    readonly checker: string,
    detail: string,
  ) {
    super(`[${checker}] ${detail}`)
    this.name = 'CheckFailure'
  }
}

function fail(checker: string, detail: string): never {
  throw new CheckFailure(checker, detail)
}

/**
 * A canonical text of a value: object keys sorted, bytes as hex, absent, undefined and
 * null fields alike (the wire turns one into the other); equal values give equal text.
 */
export function canonical(v: unknown): string {
  if (v === null || v === undefined) return String(v)
  if (typeof v === 'number' || typeof v === 'boolean') return String(v)
  if (typeof v === 'string') return JSON.stringify(v)
  if (v instanceof Uint8Array) return `0x${Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('hex')}`
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`
  if (typeof v === 'object') {
    const o = v as Record<string, unknown>
    const keys = Object.keys(o)
      .filter((k) => o[k] !== undefined && o[k] !== null)
      .sort()
    return `{${keys.map((k) => `${k}:${canonical(o[k])}`).join(',')}}`
  }
  return `<${typeof v}>`
}

/** Entries a record stores: those of appends whose outcome is `new`. */
export function storedEntries(r: ChosenRecord): number {
  let n = 0
  for (let i = 0; i < r.value.ops.length; i++) {
    const op = r.value.ops[i]!
    if (op.kind === 'append' && r.outcomes[i]?.kind === 'new') n += op.entries.length
  }
  return n
}

function sessionKey(clientId: string, seq: number): string {
  return `${clientId}#${seq}`
}

export function describeRecord(r: ChosenRecord): string {
  const ops = r.value.ops.map((op, i) => {
    const o = r.outcomes[i]
    const out = o === undefined ? '?' : o.kind === 'dup' ? `dup@${o.first}` : o.kind === 'rejected' ? `rejected:${o.code}` : 'new'
    if (op.kind === 'trim') return `trim(${op.stream}<${op.before})=${out}`
    return `append(${op.clientId ?? '-'}#${op.seq ?? '-'} x${op.entries.length})=${out}`
  })
  return `slot ${r.slot} first=${r.firstPosition} ts=${r.ts} vts=${r.value.ts} [${ops.join(' ')}]`
}

/** Where the first stored copy of an exactly-once append lives in the log. */
export interface StoredAppend {
  readonly slot: number
  readonly opIndex: number
  readonly first: number
  readonly entries: readonly Entry[]
}

export class LogChecker {
  /** The one sequence every replica's log must be a prefix of: records by slot, contiguous. */
  private readonly log: ChosenRecord[] = []
  private readonly keys: string[] = []
  /** Per replica (per life of its core): the next slot it must apply. */
  private readonly nextSlotOf = new Map<ReplicaId, number>()
  private readonly stored = new Map<string, StoredAppend>()
  /** Every stored entry, by position. */
  private readonly entries: Entry[] = []
  private next = 0
  /** Observations, for reports. */
  observed = 0

  /** A core was (re)started at this replica, with this many slots already applied on its disk. */
  started(replica: ReplicaId, commitSlot: number): void {
    if (commitSlot > this.log.length) {
      fail('agreement', `replica ${replica} restarted with commitSlot ${commitSlot}, beyond any slot ever emitted as chosen (${this.log.length})`)
    }
    this.nextSlotOf.set(replica, commitSlot)
  }

  /** A replica emitted a chosen (applied) record. */
  observe(replica: ReplicaId, r: ChosenRecord): void {
    this.observed++
    const expected = this.nextSlotOf.get(replica) ?? 0
    if (r.slot !== expected) {
      fail('prefix', `replica ${replica} applied slot ${r.slot} but its next slot was ${expected}: a replica's log must grow contiguously`)
    }
    this.nextSlotOf.set(replica, r.slot + 1)
    if (r.outcomes.length !== r.value.ops.length) {
      fail('determinism', `replica ${replica} slot ${r.slot}: ${r.outcomes.length} outcomes for ${r.value.ops.length} ops`)
    }
    const key = canonical(r)
    if (r.slot < this.log.length) {
      if (this.keys[r.slot] !== key) {
        fail(
          'one-value-per-slot',
          `slot ${r.slot} chosen twice with different records:\n  first seen:  ${describeRecord(this.log[r.slot]!)}\n  replica ${replica}: ${describeRecord(r)}`,
        )
      }
      return
    }
    if (r.slot > this.log.length) {
      fail('prefix', `replica ${replica} applied slot ${r.slot} while no replica ever applied slot ${this.log.length}`)
    }
    this.extend(replica, r, key)
  }

  /** A new slot of the one sequence: check it follows from the previous record. */
  private extend(replica: ReplicaId, r: ChosenRecord, key: string): void {
    const prev = this.log[this.log.length - 1]
    const prevTs = prev === undefined ? 0 : prev.ts
    if (r.firstPosition !== this.next) {
      fail('positions', `replica ${replica} slot ${r.slot}: firstPosition ${r.firstPosition}, but earlier slots stored ${this.next} entries`)
    }
    if (r.ts !== Math.max(r.value.ts, prevTs)) {
      fail('log-time', `replica ${replica} slot ${r.slot}: ts ${r.ts} is not max(value.ts ${r.value.ts}, previous ts ${prevTs})`)
    }
    if (r.ts < prevTs) fail('log-time', `slot ${r.slot}: log time went backwards (${prevTs} -> ${r.ts})`)
    let pos = r.firstPosition
    for (let i = 0; i < r.value.ops.length; i++) {
      const op = r.value.ops[i]!
      const out = r.outcomes[i]!
      if (op.kind === 'trim') {
        if (out.kind === 'dup') fail('determinism', `slot ${r.slot} op ${i}: a trim cannot be a dup`)
        continue
      }
      if (op.clientId == null || op.seq == null) {
        // No exactly-once ids (absent, or null off the wire): stored every time.
        if (out.kind !== 'new') fail('exactly-once', `slot ${r.slot} op ${i}: an append without exactly-once ids must be stored, got ${canonical(out)}`)
        this.entries.push(...op.entries)
        pos += op.entries.length
        continue
      }
      const k = sessionKey(op.clientId, op.seq)
      const before = this.stored.get(k)
      if (before === undefined) {
        // The simulated clients never send a sequence number below one they had acknowledged,
        // so a first occurrence is always inside the exactly-once window.
        if (out.kind !== 'new') fail('exactly-once', `slot ${r.slot} op ${i}: first occurrence of ${k} has outcome ${canonical(out)}, expected new`)
        this.stored.set(k, { slot: r.slot, opIndex: i, first: pos, entries: op.entries })
        this.entries.push(...op.entries)
        pos += op.entries.length
        continue
      }
      if (out.kind === 'new') {
        fail('exactly-once', `slot ${r.slot} op ${i}: ${k} stored a second time (first stored in slot ${before.slot} at position ${before.first})`)
      }
      if (out.kind === 'dup' && out.first !== before.first) {
        fail('exactly-once', `slot ${r.slot} op ${i}: dup of ${k} names first position ${out.first}, but it was stored at ${before.first}`)
      }
      if (out.kind === 'rejected' && out.code !== 'sequence_too_old') {
        fail('exactly-once', `slot ${r.slot} op ${i}: retry of ${k} rejected with ${out.code}`)
      }
    }
    if (this.entries.length !== pos) fail('positions', `slot ${r.slot}: ${this.entries.length} entries stored, but positions reach ${pos}`)
    this.log.push(r)
    this.keys.push(key)
    this.next = pos
  }

  /** The entry stored at a position of the chosen log. */
  entryAt(position: number): Entry | undefined {
    return this.entries[position]
  }

  /** Number of slots known chosen (applied by some replica). */
  get length(): number {
    return this.log.length
  }

  /** The tail of the known chosen log: the next position to be assigned. */
  get nextPosition(): number {
    return this.next
  }

  record(slot: number): ChosenRecord | undefined {
    return this.log[slot]
  }

  storedAppend(clientId: string, seq: number): StoredAppend | undefined {
    return this.stored.get(sessionKey(clientId, seq))
  }

  /** Positions stored by slots [0, slot): what a replica with commitSlot = slot must report as its tail. */
  positionAt(slot: number): number {
    if (slot === 0) return 0
    const r = this.log[slot - 1]
    if (r === undefined) fail('prefix', `no record for slot ${slot - 1}`)
    return r.firstPosition + storedEntries(r)
  }

  tsAt(slot: number): number {
    return slot === 0 ? 0 : (this.log[slot - 1]?.ts ?? fail('prefix', `no record for slot ${slot - 1}`))
  }

  /**
   * A replica's disk: every chosen record it holds must be the record of the one
   * sequence, and the slots it holds must be a contiguous prefix.
   */
  checkDisk(replica: ReplicaId, chosen: ReadonlyMap<number, ChosenRecord>, commitSlot: number): void {
    for (let s = 0; s < commitSlot; s++) {
      const r = chosen.get(s)
      if (r === undefined) fail('prefix', `replica ${replica}: disk lacks slot ${s} below its commitSlot ${commitSlot}`)
      const k = this.keys[s]
      if (k === undefined) fail('prefix', `replica ${replica}: disk holds slot ${s}, which no replica ever emitted as chosen`)
      if (canonical(r) !== k) {
        fail('one-value-per-slot', `replica ${replica}: disk record of slot ${s} differs:\n  log:  ${describeRecord(this.log[s]!)}\n  disk: ${describeRecord(r)}`)
      }
    }
    for (const s of chosen.keys()) {
      if (s >= commitSlot) fail('prefix', `replica ${replica}: disk holds chosen slot ${s} at or beyond its commitSlot ${commitSlot}`)
    }
  }
}

// ---------------------------------------------------------------------------------

/**
 * The acceptor rule (Paxos Made Simple, P1a), watched on the wire: once an acceptor has
 * promised ballot b (a promise, an accepted, a heartbeat ack or a nack naming it), it
 * never again promises or accepts below b. The promise must survive restarts, so the
 * rule holds per incarnation (a replica that lost its disk comes back under a new one).
 */
export class AcceptorChecker {
  private readonly promised = new Map<string, Ballot>()

  sent(m: Message): void {
    let b: Ballot
    let answers: boolean
    switch (m.type) {
      case 'promise':
      case 'accepted':
        b = m.ballot
        answers = true
        break
      case 'heartbeatAck':
        b = m.ballot
        answers = false
        break
      case 'nack':
        b = m.promised
        answers = false
        break
      default:
        return
    }
    const key = `${m.from}/${m.inc}`
    const before = this.promised.get(key)
    if (before !== undefined && answers && compareBallots(b, before) < 0) {
      fail(
        'acceptor-promise',
        `replica ${m.from} (incarnation ${m.inc}) sent ${m.type} for ballot ${ballotString(b)} after it had promised ${ballotString(before)}${m.type === 'accepted' ? ` (slot ${m.slot})` : ''}`,
      )
    }
    if (before === undefined || compareBallots(b, before) > 0) this.promised.set(key, b)
  }
}

// ---------------------------------------------------------------------------------

interface AppendRecord {
  /** null: an append without exactly-once ids (at-least-once). */
  readonly clientId: string | null
  readonly seq: number | null
  readonly entries: readonly Entry[]
  readonly invokedAt: number
  /** Appends must land at or after this position: 1 + the highest acknowledged position at invocation. */
  readonly floorAcked: number
  /** ... and at or after every tail answered before invocation. */
  readonly floorTail: number
  ackedAt: number
  first: number
  count: number
}

function describeAppend(a: AppendRecord): string {
  return a.clientId === null ? `append without ids (${a.entries.length} entries)` : `append ${a.clientId}#${a.seq}`
}

interface TailRecord {
  readonly invokedAt: number
  readonly floorAcked: number
  readonly floorTail: number
}

/**
 * Client-visible history. Time is a logical counter advanced at every invocation and
 * every answer, so "A acknowledged before B invoked" is a comparison of counters.
 */
export class HistoryChecker {
  private clock = 0
  private readonly appends: AppendRecord[] = []
  private readonly tails: TailRecord[] = []
  /** Highest position acknowledged to any client so far (-1: none). */
  private maxAckedPosition = -1
  /** Highest tail answered to any client so far. */
  private maxTail = 0
  acked = 0
  dupAcks = 0
  tailAnswers = 0

  constructor(private readonly log: LogChecker) {}

  invokeAppend(op: AppendOp): number {
    this.appends.push({
      clientId: op.clientId ?? null,
      seq: op.seq ?? null,
      entries: op.entries,
      invokedAt: ++this.clock,
      floorAcked: this.maxAckedPosition + 1,
      floorTail: this.maxTail,
      ackedAt: -1,
      first: -1,
      count: -1,
    })
    return this.appends.length - 1
  }

  /** Any successful answer to any attempt of an append (late answers included). */
  answerAppend(id: number, r: Extract<ProposalResult, { ok: true }>): void {
    const a = this.appends[id]
    if (a === undefined) throw new Error(`unknown append ${id}`)
    const what = describeAppend(a)
    if (r.outcome.kind === 'rejected') fail('exactly-once', `${what}: ok result with a rejected outcome`)
    if (a.clientId === null && r.outcome.kind !== 'new') fail('exactly-once', `${what}: an append without ids answered ${r.outcome.kind}`)
    const first = r.outcome.kind === 'dup' ? r.outcome.first : r.firstPosition
    if (r.outcome.kind === 'dup') this.dupAcks++
    if (r.count !== a.entries.length) fail('acked-positions', `${what}: acknowledged ${r.count} entries, sent ${a.entries.length}`)
    if (a.ackedAt >= 0) {
      // Without ids, each attempt that lands is a copy of its own (at-least-once).
      if (a.clientId === null) {
        this.checkStored(a, first)
        return
      }
      if (first !== a.first) {
        fail('exactly-once', `${what}: acknowledged at position ${a.first}, then another attempt answered ${r.outcome.kind} at ${first}`)
      }
      return
    }
    a.ackedAt = ++this.clock
    a.first = first
    a.count = r.count
    this.acked++
    if (first < a.floorAcked) {
      fail('ack-order', `${what} got positions from ${first}, but position ${a.floorAcked - 1} was acknowledged before it was invoked`)
    }
    if (first < a.floorTail) {
      fail('linearizable-tail', `${what} got positions from ${first}, but a tail of ${a.floorTail} was answered before it was invoked`)
    }
    // The acknowledgement names positions of the chosen log, which the leader applied before answering.
    if (first + a.count > this.log.nextPosition) {
      fail('acked-positions', `${what} acknowledged positions up to ${first + a.count - 1}, beyond the chosen log's tail ${this.log.nextPosition}`)
    }
    this.checkStored(a, first)
    this.maxAckedPosition = Math.max(this.maxAckedPosition, first + a.count - 1)
  }

  /** The acknowledged positions hold exactly what the client sent (and, with ids, its one stored copy). */
  private checkStored(a: AppendRecord, first: number): void {
    const what = describeAppend(a)
    if (a.clientId !== null && a.seq !== null) {
      const s = this.log.storedAppend(a.clientId, a.seq)
      if (s === undefined) fail('durability', `${what} acknowledged at ${first} but never stored in the chosen log`)
      if (s.first !== first) fail('acked-positions', `${what} acknowledged at ${first} but stored at ${s.first} (slot ${s.slot})`)
    }
    for (let i = 0; i < a.entries.length; i++) {
      const e = this.log.entryAt(first + i)
      if (e === undefined) fail('durability', `${what} acknowledged at ${first}, but position ${first + i} is not in the chosen log`)
      if (canonical(e) !== canonical(a.entries[i])) {
        fail('acked-positions', `${what} acknowledged at ${first}, but position ${first + i} holds another entry`)
      }
    }
  }

  invokeTail(): number {
    this.tails.push({ invokedAt: ++this.clock, floorAcked: this.maxAckedPosition + 1, floorTail: this.maxTail })
    return this.tails.length - 1
  }

  answerTail(id: number, tail: number, replica: ReplicaId): void {
    const t = this.tails[id]
    if (t === undefined) throw new Error(`unknown tail query ${id}`)
    ++this.clock
    this.tailAnswers++
    if (tail < t.floorAcked) {
      fail('linearizable-tail', `replica ${replica} answered tail ${tail}, but position ${t.floorAcked - 1} was acknowledged before the query was invoked`)
    }
    if (tail < t.floorTail) {
      fail('linearizable-tail', `replica ${replica} answered tail ${tail}, but tail ${t.floorTail} had been answered before the query was invoked`)
    }
    if (tail > this.log.nextPosition) {
      fail('linearizable-tail', `replica ${replica} answered tail ${tail}, beyond the chosen log's tail ${this.log.nextPosition}`)
    }
    this.maxTail = Math.max(this.maxTail, tail)
  }

  /** At the end: every acknowledged append is still where it was acknowledged, exactly once. */
  final(): void {
    for (const a of this.appends) if (a.ackedAt >= 0) this.checkStored(a, a.first)
  }

  get invokedAppends(): number {
    return this.appends.length
  }
}
