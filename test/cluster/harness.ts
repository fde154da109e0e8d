// Real replica processes on 127.0.0.1, each with its own LevelDB in a temp dir. Tests
// kill them by PID (SIGKILL = crash, SIGTERM = graceful), wipe their data dirs and
// restart them. Output of every process is kept for the failure message.
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'

const BIN = resolve(import.meta.dirname, '..', '..', 'bin', 'quipu.mjs')
const PEER_OFFSET = 1000

async function portFree(port: number): Promise<boolean> {
  return new Promise((res) => {
    const s = createServer()
    s.once('error', () => res(false))
    s.listen(port, '127.0.0.1', () => s.close(() => res(true)))
  })
}

/** A base port such that base..base+n-1 and their peer ports are free. */
async function freeBase(n: number): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    // Below Linux's ephemeral range (32768+), which outgoing connections draw from.
    const base = 10_000 + Math.floor(Math.random() * 1_000) * 10
    let ok = true
    for (let i = 0; i < n && ok; i++) ok = (await portFree(base + i)) && (await portFree(base + i + PEER_OFFSET))
    if (ok) return base
  }
  throw new Error('no free ports')
}

export interface StatusJson {
  id: number
  role: string
  leader: string | null
  commitPosition: number
  commitSlot: number
  voting: boolean
  incarnation: number
  [k: string]: unknown
}

export class ProcessCluster {
  readonly procs: (ChildProcess | null)[] = []
  readonly logs: string[][] = []
  readonly urls: string[]
  readonly dirs: string[]
  private readonly root: string

  private constructor(
    readonly n: number,
    readonly base: number,
    readonly extraArgs: readonly string[],
    /** Flags for node itself (e.g. --cpu-prof), before the script. */
    readonly nodeArgs: readonly string[] = [],
  ) {
    this.root = mkdtempSync(join(tmpdir(), 'quipu-cluster-'))
    this.urls = Array.from({ length: n }, (_, i) => `http://127.0.0.1:${base + i}`)
    this.dirs = Array.from({ length: n }, (_, i) => join(this.root, `r${i}`))
  }

  static async start(n = 3, extraArgs: readonly string[] = [], nodeArgs: readonly string[] = []): Promise<ProcessCluster> {
    const c = new ProcessCluster(n, await freeBase(n), extraArgs, nodeArgs)
    for (let i = 0; i < n; i++) c.spawn(i)
    await Promise.all(c.urls.map((_, i) => c.waitServing(i)))
    return c
  }

  spawn(i: number): void {
    const peers = this.urls.map((u) => u.replace('http://', '')).join(',')
    const args = [...this.nodeArgs, BIN, 'replica', '--id', String(i), '--peers', peers, '--data', this.dirs[i]!, '--peer-port-offset', String(PEER_OFFSET), ...this.extraArgs]
    const p = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] })
    const log: string[] = (this.logs[i] ??= [])
    const keep = (b: Buffer): void => {
      for (const line of b.toString().split('\n')) if (line.length > 0) log.push(line)
      if (log.length > 2000) log.splice(0, log.length - 2000)
    }
    p.stdout.on('data', keep)
    p.stderr.on('data', keep)
    this.procs[i] = p
  }

  async waitServing(i: number, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs
    while (Date.now() < deadline) {
      if (this.procs[i]?.exitCode != null) throw new Error(`replica ${i} exited: ${this.output(i)}`)
      if ((await this.status(i)) !== null) return
      await sleep(50)
    }
    throw new Error(`replica ${i} not serving within ${timeoutMs} ms: ${this.output(i)}`)
  }

  output(i: number): string {
    return (this.logs[i] ?? []).slice(-40).join('\n')
  }

  async status(i: number): Promise<StatusJson | null> {
    try {
      const r = await fetch(`${this.urls[i]}/v1/status`, { signal: AbortSignal.timeout(1000) })
      return r.ok ? ((await r.json()) as StatusJson) : null
    } catch {
      return null
    }
  }

  async statuses(): Promise<(StatusJson | null)[]> {
    return Promise.all(this.urls.map((_, i) => this.status(i)))
  }

  /** The id of the replica that says it leads and that the others follow, within the timeout. */
  async waitLeader(timeoutMs = 10_000, exclude: number | null = null): Promise<number> {
    const deadline = Date.now() + timeoutMs
    while (Date.now() < deadline) {
      const st = await this.statuses()
      const l = st.findIndex((s, i) => s?.role === 'leader' && i !== exclude)
      if (l >= 0) return l
      await sleep(25)
    }
    throw new Error(`no leader within ${timeoutMs} ms:\n${this.urls.map((_, i) => `--- r${i}\n${this.output(i)}`).join('\n')}`)
  }

  /** Waits until every live replica has applied up to `position`. */
  async waitCommit(position: number, timeoutMs = 10_000, who: readonly number[] = this.urls.map((_, i) => i)): Promise<void> {
    const deadline = Date.now() + timeoutMs
    while (Date.now() < deadline) {
      const st = await Promise.all(who.map((i) => this.status(i)))
      // storeTail: what reads can see (the core's commitPosition runs one persist ahead).
      if (st.every((s) => s !== null && s.commitPosition >= position && (s.storeTail as number) >= position)) return
      await sleep(25)
    }
    throw new Error(`replicas ${who.join(',')} did not reach position ${position}: ${JSON.stringify(await this.statuses())}`)
  }

  async kill(i: number, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const p = this.procs[i]
    if (!p || p.exitCode !== null || p.signalCode !== null) return
    const exited = new Promise((r) => p.once('exit', r))
    p.kill(signal)
    await exited
    this.procs[i] = null
  }

  async restart(i: number, opts: { wipe?: boolean } = {}): Promise<void> {
    await this.kill(i, 'SIGTERM')
    if (opts.wipe) rmSync(this.dirs[i]!, { recursive: true, force: true })
    this.spawn(i)
    await this.waitServing(i)
  }

  async close(): Promise<void> {
    await Promise.all(this.procs.map((_, i) => this.kill(i, 'SIGKILL')))
    rmSync(this.root, { recursive: true, force: true })
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms))
}
