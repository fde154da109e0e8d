// A seeded, lossy, duplicating, reordering network with partitions. Time is ticks.
// Every message gets a delivery tick (send tick + delay) and a random tie-break, so
// messages overtake one another; a blocked link drops what would cross it at delivery.

import type { Rng } from '../../log-server/paxos/rng.ts'
import type { Message, ReplicaId } from '../../log-server/paxos/types.ts'
import { FRAME_HEADER_BYTES, MessageEncoder, decodeBody } from '../../log-server/transport/codec.ts'

/**
 * How messages cross the simulated wire: 'msgpack' encodes each with the production peer
 * codec and decodes it at delivery (absent fields, null, bytes: exactly what a replica
 * gets from a socket); 'clone' is a structuredClone (faster, less faithful).
 */
export type WireMode = 'msgpack' | 'clone'

/** One message as it travels: its bytes (or a private copy), and the link it crosses. */
interface Parcel {
  readonly from: ReplicaId
  readonly to: ReplicaId
  readonly bytes: Uint8Array | null
  readonly copy: Message | null
}

export class Wire {
  private readonly encoder = new MessageEncoder()
  constructor(readonly mode: WireMode) {}

  pack(msg: Message): Parcel {
    if (this.mode === 'clone') return { from: msg.from, to: msg.to, bytes: null, copy: structuredClone(msg) }
    const frame = this.encoder.encodeFrame(msg)
    this.encoder.clearCache()
    return { from: msg.from, to: msg.to, bytes: frame.subarray(FRAME_HEADER_BYTES), copy: null }
  }

  /** A fresh object each time: no object is shared between replicas, or between two deliveries of a duplicate. */
  unpack(p: Parcel): Message {
    if (p.bytes !== null) return decodeBody(p.bytes) as Message
    return structuredClone(p.copy!)
  }
}

export interface NetworkFaults {
  /** Probability that a message is lost. */
  lossRate: number
  /** Probability that a message is delivered twice. */
  dupRate: number
  /** Delay of a message, in ticks, uniform in [1, delayMaxTicks]. */
  delayMaxTicks: number
  /** Probability that a message is held much longer (a stale message arriving late). */
  longDelayRate: number
  longDelayMaxTicks: number
}

export const CALM_NETWORK: NetworkFaults = Object.freeze({ lossRate: 0, dupRate: 0, delayMaxTicks: 1, longDelayRate: 0, longDelayMaxTicks: 1 })

interface InFlight {
  readonly at: number
  readonly order: number
  readonly parcel: Parcel
}

/** A binary min-heap of in-flight messages by (delivery tick, tie-break). */
class FlightHeap {
  private readonly items: InFlight[] = []

  get size(): number {
    return this.items.length
  }

  private less(a: InFlight, b: InFlight): boolean {
    return a.at !== b.at ? a.at < b.at : a.order < b.order
  }

  push(x: InFlight): void {
    const h = this.items
    h.push(x)
    let i = h.length - 1
    while (i > 0) {
      const p = (i - 1) >> 1
      if (!this.less(h[i]!, h[p]!)) break
      ;[h[i], h[p]] = [h[p]!, h[i]!]
      i = p
    }
  }

  peek(): InFlight | undefined {
    return this.items[0]
  }

  pop(): InFlight | undefined {
    const h = this.items
    const top = h[0]
    const last = h.pop()
    if (top === undefined || last === undefined || h.length === 0) return top
    h[0] = last
    let i = 0
    for (;;) {
      const l = 2 * i + 1
      const r = l + 1
      let m = i
      if (l < h.length && this.less(h[l]!, h[m]!)) m = l
      if (r < h.length && this.less(h[r]!, h[m]!)) m = r
      if (m === i) break
      ;[h[i], h[m]] = [h[m]!, h[i]!]
      i = m
    }
    return top
  }
}

export class SimNetwork {
  faults: NetworkFaults
  private readonly heap = new FlightHeap()
  /** Blocked directed links, as from * n + to. */
  private readonly blocked = new Set<number>()
  sent = 0
  lost = 0
  delivered = 0
  duplicated = 0
  cut = 0

  private readonly wire: Wire

  constructor(
    private readonly n: number,
    private readonly rng: Rng,
    faults: NetworkFaults,
    wire: WireMode = 'msgpack',
  ) {
    this.faults = faults
    this.wire = new Wire(wire)
  }

  send(msg: Message, now: number): void {
    this.sent++
    const f = this.faults
    if (f.lossRate > 0 && this.rng.next() < f.lossRate) {
      this.lost++
      return
    }
    const parcel = this.wire.pack(msg)
    this.enqueue(parcel, now)
    if (f.dupRate > 0 && this.rng.next() < f.dupRate) {
      this.duplicated++
      this.enqueue(parcel, now)
    }
  }

  private enqueue(parcel: Parcel, now: number): void {
    const f = this.faults
    let delay = 1 + this.rng.int(0, f.delayMaxTicks)
    if (f.longDelayRate > 0 && this.rng.next() < f.longDelayRate) delay += this.rng.int(0, f.longDelayMaxTicks)
    this.heap.push({ at: now + delay, order: this.rng.next(), parcel })
  }

  /** The next message due at or before `now`, or undefined. Messages over blocked links are dropped. */
  nextDue(now: number): Message | undefined {
    for (;;) {
      const top = this.heap.peek()
      if (top === undefined || top.at > now) return undefined
      this.heap.pop()
      if (this.blocked.has(top.parcel.from * this.n + top.parcel.to)) {
        this.cut++
        continue
      }
      this.delivered++
      return this.wire.unpack(top.parcel)
    }
  }

  get inFlight(): number {
    return this.heap.size
  }

  block(from: ReplicaId, to: ReplicaId): void {
    this.blocked.add(from * this.n + to)
  }

  /** Cut both directions between a and b. */
  cutBoth(a: ReplicaId, b: ReplicaId): void {
    this.block(a, b)
    this.block(b, a)
  }

  isolate(id: ReplicaId): void {
    for (let r = 0; r < this.n; r++) if (r !== id) this.cutBoth(id, r)
  }

  heal(): void {
    this.blocked.clear()
  }

  get partitioned(): boolean {
    return this.blocked.size > 0
  }

  describeBlocked(): string {
    return [...this.blocked].map((k) => `${Math.floor(k / this.n)}->${k % this.n}`).join(' ')
  }
}
