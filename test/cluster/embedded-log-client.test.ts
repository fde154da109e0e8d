// The LogClient conformance suite over the embedded single-node log (LevelDB in a temp dir).
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { EmbeddedLogClient } from '../../object-runtime/embedded-log-client.ts'
import { openEmbeddedLog } from '../../log-server/embedded.ts'
import type { LogClient } from '../../object-runtime/log-client.ts'
import { logClientConformance } from '../runtime/log-client-conformance.ts'

logClientConformance('embedded', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'quipu-embedded-'))
  const replica = await openEmbeddedLog({ dir })
  const clients: LogClient[] = []
  return {
    async newClient(): Promise<LogClient> {
      const c = new EmbeddedLogClient(replica, false)
      clients.push(c)
      return c
    },
    async close(): Promise<void> {
      await Promise.all(clients.map((c) => c.close()))
      await replica.stop()
      rmSync(dir, { recursive: true, force: true })
    },
  }
})
