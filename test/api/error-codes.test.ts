// Every error code of the catalog is documented in docs/http-api.md, with its status, in
// the errors table — and the table documents nothing the catalog does not have (as
// fastify's own errors test does for its codes).

import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { ERROR_CODES } from '../../log-server/errors.ts'
import { DEFAULT_HTTP_LIMITS } from '../../log-server/api/limits.ts'

const doc = readFileSync(new URL('../../docs/http-api.md', import.meta.url), 'utf8')

/** Rows of the errors table: `| \`code\` | status | meaning |`. */
function documentedCodes(): Map<string, number> {
  const rows = new Map<string, number>()
  for (const m of doc.matchAll(/^\| `([a-z_]+)` \| (\d{3}) \| .+ \|$/gm)) rows.set(m[1]!, Number(m[2]))
  return rows
}

describe('docs/http-api.md', () => {
  it.each(Object.keys(ERROR_CODES))('documents %s', (code) => {
    expect(doc).toContain(code)
  })

  it.each(Object.entries(ERROR_CODES))('the errors table says %s is %i', (code, status) => {
    expect(documentedCodes().get(code)).toBe(status)
  })

  it('the errors table has no code the catalog lacks', () => {
    expect([...documentedCodes().keys()].sort()).toEqual(Object.keys(ERROR_CODES).sort())
  })

  it.each(Object.keys(DEFAULT_HTTP_LIMITS))('documents the limit %s', (limit) => {
    expect(doc).toContain(`| \`${limit}\` |`)
  })

  it.each(['/v1/append', '/v1/tail', '/v1/log', '/v1/streams/:name', '/v1/streams/:name/trim', '/v1/status', '/v1/subscribe'])(
    'documents the route %s',
    (route) => {
      expect(doc).toContain(route)
    },
  )
})
