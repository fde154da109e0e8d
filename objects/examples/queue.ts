// Example: Queue as a work queue with two competing consumers in different runtimes:
// each job is handed to exactly one of them.
// Run: npx tsx objects/examples/queue.ts

import { MemoryLog, MemoryLogClient, connect } from '../../object-runtime/index.ts'
import { Queue } from '../index.ts'

interface Job {
  id: number
}

const log = new MemoryLog()
const producer = await connect({ log: new MemoryLogClient(log), closeLog: true })
const workers = await Promise.all([1, 2].map(() => connect({ log: new MemoryLogClient(log), closeLog: true })))

const jobs = producer.open(Queue<Job>, 'jobs')
for (let id = 1; id <= 6; id++) await jobs.enqueue({ id })
console.log('queued:', await jobs.size(), 'head:', await jobs.peek())

const taken = await Promise.all(
  workers.map(async (rt, w) => {
    const q = rt.open(Queue<Job>, 'jobs')
    const mine: number[] = []
    for (let job = await q.dequeue(); job !== undefined; job = await q.dequeue()) mine.push(job.id)
    return `worker ${w + 1} took ${JSON.stringify(mine)}`
  }),
)
console.log(taken.join('\n'))
console.log('left:', await jobs.size())

await producer.close()
for (const rt of workers) await rt.close()
