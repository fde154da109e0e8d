// One catalog of the errors the world can cause. Callers branch on `code`, never on
// the message; each code has exactly one HTTP status, and docs/http-api.md documents
// every code (a test checks that).

export const ERROR_CODES = {
  bad_request: 400,
  not_found: 404,
  conflict: 409,
  trimmed: 410,
  too_large: 413,
  not_leader: 421,
  overloaded: 429,
  internal: 500,
  unavailable: 503,
  corrupt: 503,
} as const

export type ErrorCode = keyof typeof ERROR_CODES

export class QuipuError extends Error {
  readonly code: ErrorCode
  readonly status: number
  /** Extra fields for the error body (e.g. `leader` URL for not_leader). */
  readonly details: Readonly<Record<string, unknown>>

  constructor(code: ErrorCode, message: string, details: Readonly<Record<string, unknown>> = {}) {
    super(message)
    this.name = 'QuipuError'
    this.code = code
    this.status = ERROR_CODES[code]
    this.details = details
  }

  toBody(): { error: { code: ErrorCode; message: string } & Record<string, unknown> } {
    return { error: { code: this.code, message: this.message, ...this.details } }
  }
}

export function isQuipuError(e: unknown): e is QuipuError {
  return e instanceof QuipuError
}
