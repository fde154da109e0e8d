// Example: Lock with fencing tokens and expiry in log time. The log's clock is injected
// so the example can move time forward; a real log stamps entries with its leader's time.
// Run: npx tsx objects/examples/lock.ts

import { MemoryLog, MemoryLogClient, connect } from '../../object-runtime/index.ts'
import { Lock } from '../index.ts'

let logTime = 0
const log = new MemoryLog({ clock: () => logTime })
const a = await connect({ log: new MemoryLogClient(log), closeLog: true })
const b = await connect({ log: new MemoryLogClient(log), closeLog: true })
const lockA = a.open(Lock, 'jobs-lock')
const lockB = b.open(Lock, 'jobs-lock')

const grant = await lockA.acquire('worker-a', 1000)
console.log('A acquires:', grant)
console.log('B tries:', await lockB.acquire('worker-b', 1000))

logTime = 1500 // A stopped renewing; its lease ended at log time 1000
console.log('status at 1500:', await lockB.check())
const grantB = await lockB.acquire('worker-b', 1000)
console.log('B acquires:', grantB)
if (grant.acquired) console.log('A renews with its old token:', await lockA.renew('worker-a', grant.token, 1000))
if (grant.acquired && grantB.acquired) console.log('fencing: B token > A token:', grantB.token > grant.token)

await a.close()
await b.close()
