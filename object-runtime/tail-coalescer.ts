// Coalescing of linearizable tail checks. A reader needs a tail obtained by a request
// sent AFTER it arrived (an older answer could miss a write that completed just before
// the read started). So: at most one request in flight, plus at most one queued; every
// reader who arrives while a request is in flight shares the queued one, which is sent
// as soon as the in-flight one returns. Under any load: ≤ 2 requests outstanding, and a
// reader waits for at most ~2 round trips.

export class TailCoalescer<T> {
  private readonly fetch: () => Promise<T>
  private inFlight: Promise<T> | null = null
  private queued: Promise<T> | null = null
  /** Requests sent (for tests and stats). */
  sent = 0

  constructor(fetch: () => Promise<T>) {
    this.fetch = fetch
  }

  get(): Promise<T> {
    if (this.queued !== null) return this.queued
    if (this.inFlight === null) return this.start()
    const after = this.inFlight
    const queued = after.then(
      () => undefined,
      () => undefined,
    ).then(() => {
      this.queued = null
      return this.start()
    })
    this.queued = queued
    return queued
  }

  private start(): Promise<T> {
    this.sent++
    const request = this.fetch().finally(() => {
      if (this.inFlight === request) this.inFlight = null
    })
    this.inFlight = request
    return request
  }
}
