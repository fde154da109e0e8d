// The Paxos core is pure: no I/O, no clock, no ambient randomness. That is what makes
// the simulator deterministic (one seed replays a run exactly), so it is enforced on
// the source text of log-server/paxos, comments and string literals aside.

import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const PAXOS_DIR = join(ROOT, 'log-server', 'paxos')

/** Modules whose import means I/O, timers or the clock. `node:*` is forbidden as a whole. */
const FORBIDDEN_MODULES = [
  'fs',
  'net',
  'http',
  'https',
  'http2',
  'dgram',
  'dns',
  'tls',
  'child_process',
  'worker_threads',
  'cluster',
  'timers',
  'perf_hooks',
  'process',
  'fastify',
  'level',
  'classic-level',
  'abstract-level',
  'undici',
]

/** Calls that read the clock, draw ambient randomness or schedule work. */
const FORBIDDEN_CALLS: readonly { name: string; re: RegExp }[] = [
  { name: 'Date.now(', re: /\bDate\s*\.\s*now\s*\(/ },
  { name: 'Math.random(', re: /\bMath\s*\.\s*random\s*\(/ },
  { name: 'setTimeout(', re: /\bsetTimeout\s*\(/ },
  { name: 'setInterval(', re: /\bsetInterval\s*\(/ },
  { name: 'setImmediate(', re: /\bsetImmediate\s*\(/ },
  { name: 'performance.now(', re: /\bperformance\s*\.\s*now\s*\(/ },
  { name: 'new Date()', re: /\bnew\s+Date\s*\(\s*\)/ },
  { name: 'process.hrtime', re: /\bprocess\s*\.\s*hrtime\b/ },
  { name: 'crypto.getRandomValues(', re: /\bgetRandomValues\s*\(/ },
]

/**
 * Blank out comments and the contents of string literals (keeping the quotes and the
 * text of module specifiers, which the import check reads separately), so that a comment
 * saying "never call Date.now()" is not a violation.
 */
export function stripComments(src: string): string {
  let out = ''
  let i = 0
  const n = src.length
  while (i < n) {
    const c = src[i]!
    const d = src[i + 1]
    if (c === '/' && d === '/') {
      while (i < n && src[i] !== '\n') i++
      continue
    }
    if (c === '/' && d === '*') {
      const end = src.indexOf('*/', i + 2)
      const stop = end < 0 ? n : end + 2
      out += src.slice(i, stop).replace(/[^\n]/g, ' ')
      i = stop
      continue
    }
    if (c === '`') {
      // Template literal: blank the text, keep the code inside ${...} (it may call anything).
      out += c
      let j = i + 1
      while (j < n && src[j] !== '`') {
        if (src[j] === '\\') {
          out += '  '
          j += 2
          continue
        }
        if (src[j] === '$' && src[j + 1] === '{') {
          let depth = 1
          let k = j + 2
          while (k < n && depth > 0) {
            if (src[k] === '{') depth++
            else if (src[k] === '}') depth--
            k++
          }
          out += src.slice(j, k)
          j = k
          continue
        }
        out += src[j] === '\n' ? '\n' : ' '
        j++
      }
      out += '`'
      i = j + 1
      continue
    }
    if (c === "'" || c === '"') {
      let j = i + 1
      while (j < n && src[j] !== c) {
        if (src[j] === '\\') j++
        j++
      }
      const body = src.slice(i + 1, j)
      // Keep strings without spaces (module specifiers); blank the others (prose).
      out += c + (!/\s/.test(body) ? body : body.replace(/[^\n]/g, ' ')) + c
      i = j + 1
      continue
    }
    out += c
    i++
  }
  return out
}

/** Module specifiers a source text imports, re-exports or requires. */
export function importedModules(code: string): string[] {
  const out: string[] = []
  const patterns = [
    /\bimport\s+(?:type\s+)?[^'"`;]*?\bfrom\s*['"]([^'"]+)['"]/g,
    /\bexport\s+[^'"`;]*?\bfrom\s*['"]([^'"]+)['"]/g,
    /\bimport\s*['"]([^'"]+)['"]/g,
    /\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g,
    /\brequire\s*\(\s*['"]([^'"]+)['"]\s*\)/g,
  ]
  for (const re of patterns) for (const m of code.matchAll(re)) out.push(m[1]!)
  return out
}

function forbiddenModule(spec: string): boolean {
  if (spec.startsWith('node:')) return true
  const root = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!
  return FORBIDDEN_MODULES.includes(root) || spec.startsWith('@fastify/')
}

/** Every rule a source text breaks, as readable lines. */
export function violations(src: string): string[] {
  const code = stripComments(src)
  const found: string[] = []
  for (const spec of importedModules(code)) if (forbiddenModule(spec)) found.push(`imports '${spec}'`)
  const lines = code.split('\n')
  lines.forEach((line, i) => {
    for (const call of FORBIDDEN_CALLS) if (call.re.test(line)) found.push(`line ${i + 1}: calls ${call.name}`)
  })
  return found
}

function tsFiles(dir: string): string[] {
  const out: string[] = []
  for (const name of readdirSync(dir)) {
    const p = join(dir, name)
    if (statSync(p).isDirectory()) out.push(...tsFiles(p))
    else if (name.endsWith('.ts')) out.push(p)
  }
  return out.sort()
}

describe('the Paxos core is pure (no I/O, no clock, no ambient randomness)', () => {
  const files = tsFiles(PAXOS_DIR)

  it('finds the core sources', () => {
    expect(files.map((f) => relative(PAXOS_DIR, f))).toEqual(expect.arrayContaining(['core.ts', 'types.ts', 'config.ts', 'rng.ts', 'image.ts']))
  })

  for (const file of files) {
    it(`${relative(ROOT, file)} imports nothing that does I/O and never reads the clock or Math.random`, () => {
      expect(violations(readFileSync(file, 'utf8'))).toEqual([])
    })
  }

  it('the scanner catches what it must (and ignores comments)', () => {
    expect(violations(`import { readFile } from 'node:fs'`)).toEqual([`imports 'node:fs'`])
    expect(violations(`import fs from "fs"\nimport { request } from 'undici'`)).toEqual([`imports 'fs'`, `imports 'undici'`])
    expect(violations(`import type { FastifyInstance } from 'fastify'`)).toEqual([`imports 'fastify'`])
    expect(violations(`import { ClassicLevel } from 'classic-level'`)).toEqual([`imports 'classic-level'`])
    expect(violations(`import { setTimeout as sleep } from 'timers/promises'`)).toEqual([`imports 'timers/promises'`])
    expect(violations(`export { x } from 'node:net'`)).toEqual([`imports 'node:net'`])
    expect(violations(`const m = await import('http')`)).toEqual([`imports 'http'`])
    expect(violations(`const t = Date.now()`)).toEqual(['line 1: calls Date.now('])
    expect(violations(`\nconst r = Math.random() * 2`)).toEqual(['line 2: calls Math.random('])
    expect(violations(`setTimeout(() => {}, 1)`)).toEqual(['line 1: calls setTimeout('])
    expect(violations(`const h = setInterval(f, 10)`)).toEqual(['line 1: calls setInterval('])
    expect(violations(`const p = performance.now()`)).toEqual(['line 1: calls performance.now('])
    expect(violations(`// never call Date.now() or Math.random() here\n/* setTimeout( */ const ok = 1`)).toEqual([])
    expect(violations(`const msg = 'do not use Date.now() here'`)).toEqual([])
    expect(violations('const s = `at ${Date.now()} ms`')).toEqual(['line 1: calls Date.now('])
    expect(violations('const s = `no Math.random() in text`')).toEqual([])
    expect(violations(`import { quorum } from './config.ts'`)).toEqual([])
  })
})
