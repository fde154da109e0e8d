// PersistedImage folds the core's writes into what a disk would hold, and hands back
// the PersistedState a restarted core starts from. It is the reference meaning of
// `Write`: the memory LogStore and the simulator's disks are this, and the LevelDB
// store must load the same PersistedState from what it wrote.

import {
  ZERO_BALLOT,
  compareBallots,
  type Ballot,
  type ChosenRecord,
  type PersistedState,
  type SessionState,
  type SlotValue,
  type Write,
} from './types.ts'

export class PersistedImage {
  private initialized = false
  private incarnation = 0
  private incarnations: readonly number[] = []
  private voting = false
  private promised: Ballot = ZERO_BALLOT
  private readonly accepted = new Map<number, { slot: number; ballot: Ballot; value: SlotValue }>()
  /** Chosen records by slot (the whole log, unless reclaimed by trims). */
  readonly chosen = new Map<number, ChosenRecord>()
  private commitSlot = 0
  private nextPosition = 0
  private lastTs = 0
  private readonly sessions = new Map<string, SessionState>()
  private readonly trims = new Map<string, number>()

  apply(writes: readonly Write[]): void {
    for (const w of writes) {
      switch (w.kind) {
        case 'promise':
          if (compareBallots(w.ballot, this.promised) > 0) this.promised = w.ballot
          break
        case 'accept':
          this.accepted.set(w.slot, { slot: w.slot, ballot: w.ballot, value: w.value })
          break
        case 'chosen': {
          const r = w.record
          this.chosen.set(r.slot, r)
          this.accepted.delete(r.slot)
          this.commitSlot = r.slot + 1
          let stored = 0
          for (let i = 0; i < r.value.ops.length; i++) {
            const op = r.value.ops[i]!
            if (op.kind === 'append' && r.outcomes[i]?.kind === 'new') stored += op.entries.length
          }
          this.nextPosition = r.firstPosition + stored
          this.lastTs = r.ts
          for (const s of w.sessions) {
            if (s.state === null) this.sessions.delete(s.clientId)
            else this.sessions.set(s.clientId, s.state)
          }
          for (const t of w.trims) this.trims.set(t.stream, t.before)
          break
        }
        case 'identity':
          this.initialized = true
          this.incarnation = w.incarnation
          this.incarnations = w.incarnations
          this.voting = w.voting
          break
      }
    }
  }

  /** What a restarted core finds; null when nothing identifying was ever written. */
  load(recentChosenMax: number): PersistedState | null {
    if (!this.initialized) return null
    const recent: ChosenRecord[] = []
    for (let s = Math.max(0, this.commitSlot - recentChosenMax); s < this.commitSlot; s++) {
      const r = this.chosen.get(s)
      if (r) recent.push(r)
    }
    return {
      incarnation: this.incarnation,
      incarnations: this.incarnations,
      voting: this.voting,
      promised: this.promised,
      accepted: [...this.accepted.values()].filter((a) => a.slot >= this.commitSlot).sort((a, b) => a.slot - b.slot),
      applied: {
        commitSlot: this.commitSlot,
        nextPosition: this.nextPosition,
        lastTs: this.lastTs,
        sessions: new Map([...this.sessions].sort((a, b) => a[1].lastSlot - b[1].lastSlot || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))),
        trims: new Map(this.trims),
      },
      recentChosen: recent,
    }
  }

  /** Chosen records for slots in [from, to) that are still held, in order. */
  chosenRange(from: number, to: number): ChosenRecord[] {
    const out: ChosenRecord[] = []
    for (let s = from; s < to; s++) {
      const r = this.chosen.get(s)
      if (r) out.push(r)
      else break
    }
    return out
  }

  get committed(): number {
    return this.commitSlot
  }
}
