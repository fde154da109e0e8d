// Example: QSet of online users.
// Run: npx tsx objects/examples/qset.ts

import { MemoryLog, MemoryLogClient, connect } from '../../object-runtime/index.ts'
import { QSet } from '../index.ts'

const rt = await connect({ log: new MemoryLogClient(new MemoryLog()), closeLog: true })
const online = rt.open(QSet<string>, 'online')
console.log('ann new?', await online.add('ann'))
console.log('ann new again?', await online.add('ann'))
await online.add('bob')
console.log('has bob:', await online.has('bob'), 'size:', await online.size())
console.log('bob left?', await online.delete('bob'))
console.log('values:', await online.values())
await rt.close()
