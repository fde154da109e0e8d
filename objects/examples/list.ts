// Example: List as a shared to-do list with positional edits.
// Run: npx tsx objects/examples/list.ts

import { MemoryLog, MemoryLogClient, connect } from '../../object-runtime/index.ts'
import { List } from '../index.ts'

const rt = await connect({ log: new MemoryLogClient(new MemoryLog()), closeLog: true })
const todo = rt.open(List<string>, 'todo')
await todo.push('milk')
await todo.push('bread')
await todo.insert(1, 'eggs')
await todo.insert(0, 'coffee')
console.log('list:', await todo.slice())
console.log('removed last:', await todo.removeAt(-1))
console.log('at(1):', await todo.at(1), 'length:', await todo.length())
console.log('first two:', await todo.slice(0, 2))
await rt.close()
