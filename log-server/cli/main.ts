// `quipu` — run replicas and a local cluster, and talk to a cluster from the shell.
import { Command, InvalidArgumentError, Option } from 'commander'
import { CliClient, CliError } from './client.ts'
import { runCluster } from './cluster.ts'
import { runReplica } from './replica-main.ts'

const DEFAULT_SERVERS = 'http://127.0.0.1:7001,http://127.0.0.1:7002,http://127.0.0.1:7003'

function int(name: string, min = 0) {
  return (v: string): number => {
    if (!/^\d+$/.test(v)) throw new InvalidArgumentError(`${name} must be a whole number`)
    const n = Number(v)
    if (!Number.isSafeInteger(n) || n < min) throw new InvalidArgumentError(`${name} must be an integer >= ${min}`)
    return n
  }
}

function client(opts: { servers: string }): CliClient {
  return new CliClient(
    opts.servers
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s.length > 0)
      .map((s) => (/^https?:\/\//.test(s) ? s : `http://${s}`)),
  )
}

async function readStdin(): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const c of process.stdin) chunks.push(c as Buffer)
  return Buffer.concat(chunks)
}

function show(data: string): string {
  const buf = Buffer.from(data, 'base64')
  const text = buf.toString('utf8')
  // Printable UTF-8 is shown as text, anything else as base64.
  return /^[\P{C}\t]*$/u.test(text) && Buffer.from(text, 'utf8').equals(buf) ? text : `base64:${data}`
}

const serversOption = (): Option => new Option('-s, --servers <urls>', 'comma-separated replica URLs').env('QUIPU_SERVERS').default(DEFAULT_SERVERS)

const program = new Command()
program.name('quipu').description('quipu: a replicated shared log (Multi-Paxos over LevelDB) with client-side replicated objects').version('0.1.0')

program
  .command('cluster')
  .description('run a local cluster: one replica process per id on 127.0.0.1 (what `npm start` runs)')
  .option('-r, --replicas <n>', 'replicas (3 or 5)', int('replicas', 1), 3)
  .option('-d, --data <dir>', 'data directory (one subfolder per replica)', './data')
  .option('-p, --base-port <port>', 'HTTP port of replica 0; replica i listens on base+i', int('base-port', 1), 7001)
  .option('--peer-port-offset <n>', 'peer port = HTTP port + offset', int('peer-port-offset', 1), 1000)
  .option('--no-sync', 'do not fsync (benchmarks of throwaway data only)')
  .option('--debug', 'log why the core ignored messages')
  .action(async (o: { replicas: number; data: string; basePort: number; peerPortOffset: number; sync: boolean; debug?: boolean }) => {
    if (o.replicas !== 3 && o.replicas !== 5 && o.replicas !== 1) throw new InvalidArgumentError('replicas must be 3 or 5 (or 1)')
    await runCluster(o)
  })

program
  .command('replica')
  .description('run one replica (one per machine in a real deployment)')
  .addOption(new Option('--id <n>', "this replica's id: its index in --peers").env('QUIPU_ID').argParser(int('id')).makeOptionMandatory())
  .addOption(new Option('--peers <list>', 'every replica HOST:PORT (HTTP), in id order, comma-separated').env('QUIPU_PEERS').makeOptionMandatory())
  .addOption(new Option('--listen <host:port>', 'HTTP listen address (default: this id in --peers)').env('QUIPU_LISTEN'))
  .addOption(new Option('--data <dir>', 'data directory (LevelDB)').env('QUIPU_DATA').makeOptionMandatory())
  .addOption(new Option('--peer-port-offset <n>', 'peer TCP port = HTTP port + offset').env('QUIPU_PEER_PORT_OFFSET').argParser(int('peer-port-offset', 1)))
  .addOption(new Option('--cluster <name>', 'cluster name; replicas of other clusters are refused').env('QUIPU_CLUSTER'))
  .addOption(new Option('--tick-ms <ms>', 'core tick').env('QUIPU_TICK_MS').argParser(int('tick-ms', 1)))
  .addOption(new Option('--election-ticks <n>', 'election timeout, in ticks (randomized up to 2x)').env('QUIPU_ELECTION_TICKS').argParser(int('election-ticks', 2)))
  .addOption(new Option('--heartbeat-ticks <n>', 'leader heartbeat period, in ticks').env('QUIPU_HEARTBEAT_TICKS').argParser(int('heartbeat-ticks', 1)))
  .addOption(new Option('--batch-entries <n>', 'entries per Paxos slot, at most').env('QUIPU_BATCH_ENTRIES').argParser(int('batch-entries', 1)))
  .addOption(new Option('--batch-bytes <n>', 'bytes per Paxos slot, at most').env('QUIPU_BATCH_BYTES').argParser(int('batch-bytes', 1)))
  .addOption(new Option('--inflight-slots <n>', 'pipeline window: slots in flight, at most').env('QUIPU_INFLIGHT_SLOTS').argParser(int('inflight-slots', 1)))
  .addOption(new Option('--queue-ops <n>', 'requests queued at the leader, at most').env('QUIPU_QUEUE_OPS').argParser(int('queue-ops', 1)))
  .addOption(new Option('--body-limit <bytes>', 'HTTP request body limit').env('QUIPU_BODY_LIMIT').argParser(int('body-limit', 1)))
  .addOption(new Option('--entry-limit <bytes>', 'largest entry').env('QUIPU_ENTRY_LIMIT').argParser(int('entry-limit', 1)))
  .option('--no-sync', 'do not fsync (benchmarks of throwaway data only)')
  .option('--debug', 'log why the core ignored messages')
  .action(async (o: Record<string, unknown>) => {
    await runReplica(o)
  })

program
  .command('append')
  .description('append one entry to STREAM (comma-separate several streams); DATA or standard input')
  .argument('<stream>', 'stream name(s), e.g. orders or orders,audit')
  .argument('[data]', 'the entry (text); read from standard input when omitted')
  .addOption(serversOption())
  .option('--json', 'machine-readable output')
  .action(async (stream: string, data: string | undefined, o: { servers: string; json?: boolean }) => {
    const bytes = data !== undefined ? Buffer.from(data, 'utf8') : await readStdin()
    const streams = stream.split(',').filter((s) => s.length > 0)
    const r = await client(o).cluster<{ positions: number[] }>('POST', '/v1/append', { entries: [{ streams, data: bytes.toString('base64') }] })
    console.log(o.json ? JSON.stringify(r) : `appended at position ${r.positions.join(', ')}`)
  })

program
  .command('read')
  .description('read entries of the log, or of one stream')
  .option('--stream <name>', 'only this stream')
  .option('--from <position>', 'first position', int('from'), 0)
  .option('--limit <n>', 'entries at most', int('limit', 1), 100)
  .addOption(serversOption())
  .option('--json', 'machine-readable output (data in base64)')
  .action(async (o: { stream?: string; from: number; limit: number; servers: string; json?: boolean }) => {
    const path = o.stream === undefined ? '/v1/log' : `/v1/streams/${encodeURIComponent(o.stream)}`
    const r = await client(o).cluster<{ entries: { position: number; streams: string[]; data: string; ts?: number }[]; next: number }>('GET', `${path}?from=${o.from}&limit=${o.limit}`)
    if (o.json) {
      console.log(JSON.stringify(r))
      return
    }
    for (const e of r.entries) console.log(`${String(e.position).padStart(8)}  ${e.streams.join(',').padEnd(16)}  ${show(e.data)}`)
    console.log(r.entries.length === 0 ? `no entries from position ${o.from} (next: ${r.next})` : `-- next: ${r.next}`)
  })

program
  .command('tail')
  .description('the next position to be assigned (linearizable), and the last position of streams')
  .option('--streams <names>', 'comma-separated streams')
  .addOption(serversOption())
  .option('--json', 'machine-readable output')
  .action(async (o: { streams?: string; servers: string; json?: boolean }) => {
    const q = o.streams ? `?streams=${encodeURIComponent(o.streams)}` : ''
    const r = await client(o).cluster<{ tail: number; streams: Record<string, number> }>('GET', `/v1/tail${q}`)
    if (o.json) {
      console.log(JSON.stringify(r))
      return
    }
    console.log(`tail: ${r.tail}`)
    for (const [k, v] of Object.entries(r.streams)) console.log(`${k}: ${v < 0 ? 'empty' : `last position ${v}`}`)
  })

program
  .command('status')
  .description('the state of every replica')
  .addOption(serversOption())
  .option('--json', 'machine-readable output')
  .action(async (o: { servers: string; json?: boolean }) => {
    const c = client(o)
    const rows = await Promise.all(
      c.servers.map(async (s) => {
        try {
          return { server: s, ...(await c.call<Record<string, unknown>>(s, 'GET', '/v1/status')).json }
        } catch (e) {
          return { server: s, error: (e as Error).message }
        }
      }),
    )
    if (o.json) {
      console.log(JSON.stringify(rows))
      return
    }
    for (const r of rows) {
      if ('error' in r && typeof r.error === 'string') {
        console.log(`${r.server}  DOWN (${r.error})`)
        continue
      }
      const x = r as Record<string, unknown>
      console.log(`${r.server}  id=${String(x.id)}  ${String(x.role).padEnd(9)}  commit=${String(x.commitPosition)}  ballot=${String(x.ballot)}  leader=${String(x.leader)}`)
    }
  })

program.parseAsync(process.argv).catch((e: unknown) => {
  if (e instanceof CliError || e instanceof InvalidArgumentError) console.error(`quipu: ${e.message}`)
  else if (e instanceof Error && (e as { code?: string }).code === 'bad_config') console.error(`quipu: bad configuration: ${e.message}`)
  else console.error(`quipu: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`)
  process.exit(1)
})
