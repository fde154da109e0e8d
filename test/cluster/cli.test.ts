// The `quipu` command as a user runs it: `quipu cluster` (what `npm start` runs), then
// append/read/tail/status against it, Ctrl-C, and a second start that resumes.
import { execFile, spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, describe, expect, it } from 'vitest'
import { sleep } from './harness.ts'

const BIN = resolve(import.meta.dirname, '..', '..', 'bin', 'quipu.mjs')
const run = promisify(execFile)

async function quipu(...args: string[]): Promise<{ stdout: string; stderr: string; code: number }> {
  try {
    const r = await run(process.execPath, [BIN, ...args], { timeout: 30_000 })
    return { stdout: r.stdout, stderr: r.stderr, code: 0 }
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string; code?: number }
    return { stdout: err.stdout ?? '', stderr: err.stderr ?? '', code: err.code ?? 1 }
  }
}

function startCluster(dir: string, base: number) {
  const p = spawn(process.execPath, [BIN, 'cluster', '--replicas', '3', '--data', dir, '--base-port', String(base)], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  p.stdout.on('data', (b: Buffer) => (out += b.toString()))
  p.stderr.on('data', (b: Buffer) => (out += b.toString()))
  return { p, output: () => out }
}

async function waitFor(cond: () => Promise<boolean>, what: string, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    if (await cond()) return
    await sleep(100)
  }
  throw new Error(`timed out: ${what}`)
}

describe('the quipu command', () => {
  const dir = mkdtempSync(join(tmpdir(), 'quipu-cli-'))
  afterAll(() => rmSync(dir, { recursive: true, force: true }))
  const base = 12_000 + Math.floor(Math.random() * 500) * 10
  const servers = [0, 1, 2].map((i) => `http://127.0.0.1:${base + i}`).join(',')

  it('runs a local cluster, appends, reads, tails, reports status; Ctrl-C stops it; a restart resumes the data', async () => {
    let c = startCluster(dir, base)
    try {
      await waitFor(async () => {
        const s = await quipu('status', '--json', '--servers', servers)
        return s.code === 0 && (JSON.parse(s.stdout) as { role?: string }[]).some((r) => r.role === 'leader')
      }, 'a leader')
      expect(c.output()).toMatch(/starting 3 replicas/)
      expect(c.output()).toMatch(/\[r0\] replica 0: serving/)
      const a = await quipu('append', 'greetings', 'hello', '--servers', servers)
      expect(a.stdout.trim()).toBe('appended at position 0')
      const b = await quipu('append', 'greetings,audit', 'both', '--json', '--servers', servers)
      expect(JSON.parse(b.stdout)).toEqual({ positions: [1] })
      const r = await quipu('read', '--stream', 'audit', '--json', '--servers', servers)
      const rj = JSON.parse(r.stdout) as { entries: { position: number; data: string }[] }
      expect(rj.entries.map((e) => [e.position, Buffer.from(e.data, 'base64').toString()])).toEqual([[1, 'both']])
      const human = await quipu('read', '--servers', servers)
      expect(human.stdout).toMatch(/0\s+greetings\s+hello/)
      const t = await quipu('tail', '--streams', 'greetings,none', '--servers', servers)
      expect(t.stdout).toMatch(/tail: 2/)
      expect(t.stdout).toMatch(/none: empty/)
      const st = await quipu('status', '--servers', servers)
      expect(st.stdout.match(/leader /g)?.length).toBeGreaterThanOrEqual(1)
      const bad = await quipu('append', 'bad name!', 'x', '--servers', servers)
      expect(bad.code).not.toBe(0)
      expect(bad.stderr).toMatch(/bad_request/)
    } finally {
      c.p.kill('SIGINT')
      await new Promise((r) => c.p.once('exit', r))
    }
    expect(c.output()).toMatch(/cluster stopped/)
    // Every replica stopped gracefully; a second start resumes from the same data.
    expect(c.output().match(/stopped$/gm)?.length).toBeGreaterThanOrEqual(3)
    c = startCluster(dir, base)
    try {
      await waitFor(async () => {
        const r = await quipu('read', '--json', '--servers', servers)
        return r.code === 0 && (JSON.parse(r.stdout) as { entries: unknown[] }).entries.length === 2
      }, 'the data back after a restart')
      expect(c.output()).toMatch(/resumed from/)
    } finally {
      c.p.kill('SIGINT')
      await new Promise((r) => c.p.once('exit', r))
    }
  })

  it('explains bad configuration instead of crashing', async () => {
    const r = await quipu('replica', '--id', '7', '--peers', '127.0.0.1:1,127.0.0.1:2,127.0.0.1:3', '--data', join(dir, 'x'))
    expect(r.code).not.toBe(0)
    expect(r.stderr).toMatch(/id must be an integer in \[0, 2\]/)
    const r2 = await quipu('replica', '--id', '0', '--peers', '127.0.0.1:1,127.0.0.1:2', '--data', join(dir, 'x'))
    expect(r2.stderr).toMatch(/3 or 5 replicas/)
    const r3 = await quipu('read', '--from', '-4')
    expect(r3.code).not.toBe(0)
  })
})
