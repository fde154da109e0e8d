// `quipu cluster`: a local cluster of separate replica processes on 127.0.0.1, each
// with its own LevelDB under DATA/rN. Output lines are prefixed with the replica id.
// Ctrl-C (SIGINT) or SIGTERM stops all of them gracefully; running it again resumes
// from the same data.
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdirSync } from 'node:fs'
import { resolve, join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createInterface } from 'node:readline'

const BIN = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'quipu.mjs')

export interface ClusterOptions {
  readonly replicas: number
  readonly data: string
  readonly basePort: number
  readonly peerPortOffset: number
  readonly sync: boolean
  readonly debug?: boolean
}

export async function runCluster(o: ClusterOptions): Promise<void> {
  const dataDir = resolve(o.data)
  mkdirSync(dataDir, { recursive: true })
  const peers = Array.from({ length: o.replicas }, (_, i) => `127.0.0.1:${o.basePort + i}`)
  console.log(`quipu: starting ${o.replicas} replicas, data in ${dataDir}`)
  for (let i = 0; i < o.replicas; i++) console.log(`  replica ${i}: http://${peers[i]}  (peer port ${o.basePort + i + o.peerPortOffset}, data ${join(dataDir, `r${i}`)})`)
  console.log(`try: curl -s http://${peers[0]}/v1/status  ·  npx quipu append greetings hello  ·  npx quipu read  ·  Ctrl-C stops the cluster`)
  const children: ChildProcess[] = []
  let stopping = false
  let exited = 0
  const done = new Promise<void>((res) => {
    for (let i = 0; i < o.replicas; i++) {
      const args = [BIN, 'replica', '--id', String(i), '--peers', peers.join(','), '--data', join(dataDir, `r${i}`), '--peer-port-offset', String(o.peerPortOffset)]
      if (!o.sync) args.push('--no-sync')
      if (o.debug) args.push('--debug')
      const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] })
      children.push(child)
      for (const stream of [child.stdout, child.stderr]) {
        if (stream === null) continue
        createInterface({ input: stream }).on('line', (line) => console.log(`[r${i}] ${line}`))
      }
      child.on('exit', (code, signal) => {
        exited++
        if (!stopping) console.log(`[r${i}] exited (${signal ?? `code ${String(code)}`}); the other replicas keep running`)
        if (exited === o.replicas) res()
      })
    }
  })
  const stop = (): void => {
    if (stopping) return
    stopping = true
    console.log('quipu: stopping the cluster...')
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM')
    // A replica that does not stop within 10 s is killed.
    setTimeout(() => {
      for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL')
    }, 10_000).unref()
  }
  process.on('SIGINT', stop)
  process.on('SIGTERM', stop)
  await done
  console.log('quipu: cluster stopped')
}
