// The README tutorial, runnable: a custom replicated object (a leaderboard) and two
// built-ins, against the cluster of `npm start` or, with --embedded, a log inside this
// process.
//
//   npm start                                          # in one terminal
//   npx tsx objects/examples/tutorial.ts               # in another
//   npx tsx objects/examples/tutorial.ts --embedded    # no server needed (data in ./quipu-data)
import { connect, currentEntry, defineObject } from '../../object-runtime/index.ts'
import { Counter, QMap } from '../index.ts'

// 1. Define the object: its initial state, mutators (run on an immer draft, in log
//    order, on every client; they may return a value) and accessors (read-only).
const Leaderboard = defineObject({
  name: 'Leaderboard',
  initial: () => ({ scores: {} as Record<string, number>, lastUpdate: 0 }),
  mutators: {
    add(state, player: string, points: number) {
      state.scores[player] = (state.scores[player] ?? 0) + points
      state.lastUpdate = currentEntry().ts // log time: identical on every client
      return state.scores[player]
    },
    reset(state, player: string) {
      delete state.scores[player]
    },
  },
  accessors: {
    top(state, n: number) {
      return Object.entries(state.scores)
        .sort((a, b) => b[1] - a[1])
        .slice(0, n)
    },
    score(state, player: string) {
      return state.scores[player] ?? 0
    },
  },
  // What each operation touches, for transactions: here, one player's score.
  conflictKeys: { add: (player) => [player], reset: (player) => [player], top: () => ['*'], score: (player) => [player] },
})

// 2. Connect: to a cluster, or to an embedded single-node log.
const embedded = process.argv.includes('--embedded')
const servers = (process.env.QUIPU_SERVERS ?? 'http://127.0.0.1:7001,http://127.0.0.1:7002,http://127.0.0.1:7003').split(',')
const rt = embedded ? await connect({ embedded: './quipu-data' }) : await connect({ servers })

// 3. Open objects by name (one object = one stream) and use them.
const board = rt.open(Leaderboard, 'tutorial-board')
console.log('ann has', await board.add('ann', 10))
console.log('bob has', await board.add('bob', 7))
console.log('ann has', await board.add('ann', 5))
console.log('top 2:', await board.top(2)) // linearizable: sees every write acknowledged before it
console.log('bob (cached, no round trip):', await board.score('bob', { consistency: 'cached' }))

const visits = rt.open(Counter, 'tutorial-visits')
console.log('visit number', await visits.add(1))

const users = rt.open(QMap<string, { age: number }>(), 'tutorial-users')
await users.set('alice', { age: 3 })
console.log('alice:', await users.get('alice'), 'users:', await users.size())

console.log(`board at log position ${board.version}, state hash ${board.stateHash()}`)
await rt.close()
