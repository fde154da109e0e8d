// The Multi-Paxos core: a pure state machine. See types.ts for the contract.
import type { CoreConfig } from './config.ts'
import type { Rng } from './rng.ts'
import type { AppliedState, ChosenRecord, CoreStatus, Message, Op, Output, PersistedState, ReplicaId, RequestId } from './types.ts'

export class PaxosCore {
  constructor(config: CoreConfig, persisted: PersistedState | null, rng: Rng, now: number) {
    void config; void persisted; void rng; void now
    throw new Error('not implemented yet')
  }
  /** Advance logical time by one tick; `now` is a wall-clock reading in ms used only to timestamp new slots. */
  tick(now: number): Output { void now; throw new Error('todo') }
  /** Deliver one message from a peer. Bad or stale messages are ignored (reason in output.ignored). */
  step(msg: Message): Output { void msg; throw new Error('todo') }
  /** Ask to append/trim. The result arrives in some later (or this) Output's `results`, by requestId. */
  propose(requestId: RequestId, op: Op): Output { void requestId; void op; throw new Error('todo') }
  /** Linearizable tail: answered in `reads` once a majority confirmed this leader after this call. */
  readIndex(requestId: RequestId): Output { void requestId; throw new Error('todo') }
  /** The driver's answer to a StorageRead: chosen records read from storage for peer `to`. */
  serveCatchup(to: ReplicaId, records: readonly ChosenRecord[]): Output { void to; void records; throw new Error('todo') }
  status(): CoreStatus { throw new Error('todo') }
  get applied(): AppliedState { throw new Error('todo') }
}
