// A seeded, lossy, duplicating, reordering network with partitions. Time is ticks.
// Every message gets a delivery tick (send tick + delay) and a random tie-break, so
// messages overtake one another; a blocked link drops what would cross it at delivery.

import type { Rng } from '../../log-server/paxos/rng.ts'
import type { Message, ReplicaId } from '../../log-server/paxos/types.ts'

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
  readonly msg: Message
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

  constructor(
    private readonly n: number,
    private readonly rng: Rng,
    faults: NetworkFaults,
  ) {
    this.faults = faults
  }

  send(msg: Message, now: number): void {
    this.sent++
    const f = this.faults
    if (f.lossRate > 0 && this.rng.next() < f.lossRate) {
      this.lost++
      return
    }
    this.enqueue(msg, now)
    if (f.dupRate > 0 && this.rng.next() < f.dupRate) {
      this.duplicated++
      this.enqueue(msg, now)
    }
  }

  private enqueue(msg: Message, now: number): void {
    const f = this.faults
    let delay = 1 + this.rng.int(0, f.delayMaxTicks)
    if (f.longDelayRate > 0 && this.rng.next() < f.longDelayRate) delay += this.rng.int(0, f.longDelayMaxTicks)
    this.heap.push({ at: now + delay, order: this.rng.next(), msg })
  }

  /** The next message due at or before `now`, or undefined. Messages over blocked links are dropped. */
  nextDue(now: number): Message | undefined {
    for (;;) {
      const top = this.heap.peek()
      if (top === undefined || top.at > now) return undefined
      this.heap.pop()
      if (this.blocked.has(top.msg.from * this.n + top.msg.to)) {
        this.cut++
        continue
      }
      this.delivered++
      // A copy, as a real network would hand over: no object is shared between replicas.
      return structuredClone(top.msg)
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
