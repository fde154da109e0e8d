// Example: Counter. Three "processes" add concurrently; each add answers the value right
// after it, as decided by the log order.
// Run: npx tsx objects/examples/counter.ts

import { MemoryLog, MemoryLogClient, connect } from '../../object-runtime/index.ts'
import { Counter } from '../index.ts'

const log = new MemoryLog()
const runtimes = await Promise.all([1, 2, 3].map(() => connect({ log: new MemoryLogClient(log), closeLog: true })))
const counters = runtimes.map((rt) => rt.open(Counter, 'page-views'))

const answers = await Promise.all(counters.map((c) => c.add(1)))
console.log('answers (a permutation of 1, 2, 3):', answers)
console.log('total seen by each:', await Promise.all(counters.map((c) => c.get())))
console.log('add(-1) ->', await counters[0]!.add(-1))

for (const rt of runtimes) await rt.close()
