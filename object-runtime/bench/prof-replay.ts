import { MemoryLog, MemoryLogClient, connect, encodeOp, streamOf } from '../index.ts'
import { QMap } from '../../objects/index.ts'
const N = 1_000_000
const log = new MemoryLog()
const stream = streamOf('users')
for (let i = 0; i < N; i += 1000) {
  const entries = []
  for (let j = i; j < i + 1000; j++) entries.push({ streams: [stream], data: encodeOp({ type: 'QMap', version: 1, mutator: 'set', args: [`user:${j}`, j] }) })
  log.append(entries)
}
for (let r = 0; r < 2; r++) {
const rt = await connect({ log: new MemoryLogClient(log), closeLog: true })
const t0 = performance.now()
const users = rt.open(QMap<string, number>, 'users')
await users.sync()
const s = (performance.now() - t0) / 1000
console.log(N / s, 'entries/s', rt.stats)
await rt.close()
}
