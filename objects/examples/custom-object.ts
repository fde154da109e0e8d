// Example: a custom replicated object with defineObject, in draft mode (a small plain
// root drafted by immer). Mutators are deterministic, return values, and may read the
// entry's log position and time through currentEntry().
// Run: npx tsx objects/examples/custom-object.ts

import { MemoryLog, MemoryLogClient, connect, currentEntry, defineObject } from '../../object-runtime/index.ts'

const Leaderboard = defineObject({
  name: 'Leaderboard',
  initial: () => ({ scores: {} as Record<string, number>, updatedAt: 0 }),
  mutators: {
    add(state, player: string, pts: number) {
      state.scores[player] = (state.scores[player] ?? 0) + pts
      state.updatedAt = currentEntry().ts // log time, the same on every client
      return state.scores[player]
    },
  },
  accessors: {
    top(state, n: number) {
      return Object.entries(state.scores)
        .sort((x, y) => y[1] - x[1])
        .slice(0, n)
    },
  },
  conflictKeys: { add: (player) => [player], top: () => ['*'] },
})

const rt = await connect({ log: new MemoryLogClient(new MemoryLog()), closeLog: true })
const board = rt.open(Leaderboard, 'board')
await board.add('ann', 10)
await board.add('bob', 7)
console.log('ann now has', await board.add('ann', 5))
console.log('top 2:', await board.top(2))
console.log('top 1 (cached):', await board.top(1, { consistency: 'cached' }))
console.log('version', board.version, 'hash', board.stateHash())
await rt.close()
