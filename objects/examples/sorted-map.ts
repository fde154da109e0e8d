// Example: SortedMap as a leaderboard by score, with range queries in key order.
// Run: npx tsx objects/examples/sorted-map.ts

import { MemoryLog, MemoryLogClient, connect } from '../../object-runtime/index.ts'
import { SortedMap } from '../index.ts'

const rt = await connect({ log: new MemoryLogClient(new MemoryLog()), closeLog: true })
const byScore = rt.open(SortedMap<number, string>, 'scores')
for (const [score, who] of [[310, 'ann'], [120, 'bob'], [560, 'cy'], [90, 'dee'], [400, 'eve']] as const) {
  await byScore.set(score, who)
}
console.log('scores in [100, 450):', await byScore.range(100, 450))
console.log('lowest two:', await byScore.range(undefined, undefined, 2))
console.log('min/max:', await byScore.minKey(), await byScore.maxKey())
console.log('deleted 90?', await byScore.delete(90), 'size:', await byScore.size())
await rt.close()
