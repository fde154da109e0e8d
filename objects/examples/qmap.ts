// Example: QMap over an in-memory log, two runtimes standing for two processes.
// Run: npx tsx objects/examples/qmap.ts

import { MemoryLog, MemoryLogClient, connect } from '../../object-runtime/index.ts'
import { QMap } from '../index.ts'

interface User {
  name: string
  age: number
}

const log = new MemoryLog()
const a = await connect({ log: new MemoryLogClient(log), closeLog: true })
const b = await connect({ log: new MemoryLogClient(log), closeLog: true })

const usersA = a.open(QMap<string, User>, 'users')
const usersB = b.open(QMap<string, User>, 'users')

console.log('new key?', await usersA.set('alice', { name: 'Alice', age: 3 }))
await usersA.set('bob', { name: 'Bob', age: 5 })
// B sees A's completed writes: accessors are linearizable by default.
console.log('B reads alice:', await usersB.get('alice'))
console.log('B size:', await usersB.size())
console.log('deleted bob?', await usersB.delete('bob'))
console.log('A keys:', await usersA.keys())
// A cached read answers from local state without asking the log.
console.log('A cached has bob:', await usersA.has('bob', { consistency: 'cached' }))
console.log('same state:', usersA.version === usersB.version && usersA.stateHash() === usersB.stateHash())

await a.close()
await b.close()
