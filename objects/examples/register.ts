// Example: Register with compare-and-set as a leader election: the first CAS in log
// order wins, everyone agrees who.
// Run: npx tsx objects/examples/register.ts

import { MemoryLog, MemoryLogClient, connect } from '../../object-runtime/index.ts'
import { Register } from '../index.ts'

const log = new MemoryLog()
const nodes = ['node-1', 'node-2', 'node-3']
const runtimes = await Promise.all(nodes.map(() => connect({ log: new MemoryLogClient(log), closeLog: true })))
const leader = runtimes.map((rt) => rt.open(Register<string>, 'leader'))

const won = await Promise.all(leader.map((r, i) => r.compareAndSet(undefined, nodes[i]!)))
console.log('who won the CAS:', won)
console.log('leader according to each node:', await Promise.all(leader.map((r) => r.get())))
console.log('set returns the previous value:', await leader[0]!.set('node-9'))

for (const rt of runtimes) await rt.close()
