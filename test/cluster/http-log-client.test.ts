// The LogClient conformance suite, run by the HTTP client against real replica
// processes (a fresh single-node log per test, so that positions start at 0), and
// once against a 3-replica cluster.
import { HttpLogClient } from '../../object-runtime/http-log-client.ts'
import type { LogClient } from '../../object-runtime/log-client.ts'
import { logClientConformance } from '../runtime/log-client-conformance.ts'
import { ProcessCluster } from './harness.ts'

function fixture(replicas: number) {
  return async () => {
    const c = await ProcessCluster.start(replicas)
    await c.waitLeader()
    const clients: LogClient[] = []
    return {
      async newClient(): Promise<LogClient> {
        const cl = new HttpLogClient({ servers: c.urls })
        clients.push(cl)
        return cl
      },
      async close(): Promise<void> {
        await Promise.all(clients.map((cl) => cl.close()))
        await c.close()
      },
    }
  }
}

logClientConformance('http, single-node replica process', fixture(1))
