// Recording histories for the checker from real concurrent clients.
//
// Every client of one recorder reads the same monotonic clock (process.hrtime, which is
// system-wide on one machine, so clients in several processes on one host can share
// it by passing a common `origin`). An operation's interval must enclose everything the
// system did for it: take `call` before the request is sent and `ret` after the answer
// arrived, which `run` does.
//
// Outcomes: an answer is recorded as a completed operation; an error that proves the
// operation had no effect (e.g. a 400, or a 409 of a conditional append) removes it;
// any other error (timeout, connection reset, 503 after the request may have reached a
// leader) leaves it pending: it may or may not have happened, at any time after its call.

import type { ClientId, Operation } from './checker.ts'

export interface RecorderOptions {
  /** Monotonic time source; default: nanoseconds since `origin` from process.hrtime. */
  readonly clock?: () => number
  /** Origin of the default clock (process.hrtime.bigint() units); default: now. */
  readonly origin?: bigint
}

export interface OperationHandle<O> {
  /** The operation returned `output`. */
  ok(output: O): void
  /** The operation certainly had no effect: drop it from the history. */
  failed(): void
  /** The outcome is unknown: keep it pending (also the state of an unresolved handle). */
  unknown(): void
}

interface Slot<I, O> {
  op: Operation<I, O> | null
}

export class HistoryRecorder<I, O> {
  readonly #clock: () => number
  readonly #slots: Slot<I, O>[] = []

  constructor(options: RecorderOptions = {}) {
    const origin = options.origin ?? process.hrtime.bigint()
    this.#clock = options.clock ?? (() => Number(process.hrtime.bigint() - origin))
  }

  /** Mark the call of an operation now; resolve the handle when the answer (or error) comes. */
  begin(clientId: ClientId, input: I): OperationHandle<O> {
    const call = this.#clock()
    const slot: Slot<I, O> = { op: { clientId, input, call } }
    this.#slots.push(slot)
    let resolved = false
    const resolve = (next: Operation<I, O> | null): void => {
      if (resolved) throw new Error('HistoryRecorder: operation resolved twice')
      resolved = true
      slot.op = next
    }
    return {
      ok: (output) => resolve({ clientId, input, output, call, ret: this.#clock() }),
      failed: () => resolve(null),
      unknown: () => resolve({ clientId, input, call }),
    }
  }

  /**
   * Run `invoke` as one operation and record it. `definiteFailure(err)` says whether an
   * error proves the operation had no effect; by default no error does (conservative).
   * The error is rethrown either way.
   */
  async run(
    clientId: ClientId,
    input: I,
    invoke: () => Promise<O>,
    definiteFailure: (err: unknown) => boolean = () => false,
  ): Promise<O> {
    const handle = this.begin(clientId, input)
    let output: O
    try {
      output = await invoke()
    } catch (err) {
      if (definiteFailure(err)) handle.failed()
      else handle.unknown()
      throw err
    }
    handle.ok(output)
    return output
  }

  /** The history so far; operations still in flight appear as pending. */
  history(): Operation<I, O>[] {
    const ops: Operation<I, O>[] = []
    for (const slot of this.#slots) if (slot.op !== null) ops.push(slot.op)
    return ops
  }
}
