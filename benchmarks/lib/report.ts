// Shared benchmark plumbing: medians, a printed table, and RESULTS.md sections.
// Each benchmark owns one section of RESULTS.md between markers, so running one
// benchmark never erases another's figures.
import { cpus, totalmem, platform, release } from 'node:os'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { dirname, join } from 'node:path'

export const RESULTS_PATH = join(dirname(fileURLToPath(import.meta.url)), '..', 'RESULTS.md')

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  return sorted[i]!
}

export function machine(): string {
  const c = cpus()
  return `${c.length} × ${c[0]?.model ?? 'unknown CPU'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM, ${platform()} ${release()}, Node ${process.version}`
}

export function fmt(n: number, digits = 0): string {
  if (!Number.isFinite(n)) return String(n)
  return n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits })
}

export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)))
  const line = (cells: readonly string[]): string => '| ' + cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ') + ' |'
  return [line(header), '|' + widths.map((w) => '-'.repeat(w + 2)).join('|') + '|', ...rows.map(line)].join('\n')
}

/** Replace (or add) the section `name` of RESULTS.md. */
export function writeSection(name: string, title: string, body: string, command: string): void {
  const begin = `<!-- bench:${name}:begin -->`
  const end = `<!-- bench:${name}:end -->`
  const section = [
    begin,
    `## ${title}`,
    '',
    `- Date: ${new Date().toISOString()}`,
    `- Machine: ${machine()}`,
    `- Command: \`${command}\``,
    '',
    body.trim(),
    end,
  ].join('\n')
  let doc = existsSync(RESULTS_PATH)
    ? readFileSync(RESULTS_PATH, 'utf8')
    : '# quipu benchmark results\n\nEach section is rewritten by the benchmark named in it. Figures are medians of several runs on a shared, noisy machine: compare ratios within one run, not absolute numbers across runs.\n'
  const a = doc.indexOf(begin)
  const b = doc.indexOf(end)
  if (a >= 0 && b > a) doc = doc.slice(0, a) + section + doc.slice(b + end.length)
  else doc = doc.trimEnd() + '\n\n' + section + '\n'
  writeFileSync(RESULTS_PATH, doc)
}

export interface BenchArgs {
  readonly quick: boolean
  readonly rest: readonly string[]
}
