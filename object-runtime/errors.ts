// Errors raised by the object runtime (log-client errors are LogError, in log-client.ts).
// Stable codes, one catalog; callers branch on `err.code`.

export const OBJECT_ERROR_CODES = Object.freeze({
  object_poisoned:
    'An op of an unknown kind, or a mutator that threw, was met during playback: the object stops there and every later call rejects (ObjectPoisonedError).',
  bad_argument: 'Mutator or accessor arguments are not plain data, or do not fit the definition.',
  bad_definition: 'defineObject was given something unusable (reserved or duplicate names, bad version).',
  type_mismatch: 'An object name was opened with two different definitions in one runtime.',
  nondeterministic: 'A mutator called a source of non-determinism (Date.now, Math.random, ...) in development mode.',
  runtime_closed: 'The runtime has been closed.',
  not_implemented: 'The feature is declared but not built yet.',
  transaction_aborted:
    'A transaction lost to conflicting writes on every attempt (TransactionAborted: names the object, key and log position of the last conflict). Nothing of it entered the log.',
  history_trimmed:
    "The object's stream was trimmed below what it needs and no complete checkpoint covers that point (or an op's result was covered by a checkpoint loaded meanwhile).",
} as const)

export type ObjectErrorCode = keyof typeof OBJECT_ERROR_CODES

export class ObjectError extends Error {
  override name = 'ObjectError'
  readonly code: ObjectErrorCode

  constructor(code: ObjectErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.code = code
  }
}

/** The op that poisoned an object, as far as it could be decoded. */
export interface PoisonedOp {
  readonly type?: string
  readonly version?: number
  readonly mutator?: string
}

/**
 * An object met an op it cannot apply, at `position`. Deterministic: every client that
 * plays the same log poisons the same object at the same position with the same message,
 * and the state stays as it was just before that entry.
 */
export class ObjectPoisonedError extends ObjectError {
  override name = 'ObjectPoisoned'
  readonly objectName: string
  readonly position: number
  readonly op: PoisonedOp
  /** Why: the error thrown by the mutator, or the decoding problem. */
  readonly reason: string

  constructor(objectName: string, position: number, op: PoisonedOp, reason: string, cause?: unknown) {
    const opText = op.mutator === undefined ? 'an undecodable entry' : `op ${op.type ?? '?'}.${op.mutator} (format v${op.version ?? '?'})`
    super(
      'object_poisoned',
      `object "${objectName}" is poisoned: ${opText} at log position ${position} could not be applied: ${reason}`,
      cause === undefined ? undefined : { cause },
    )
    this.objectName = objectName
    this.position = position
    this.op = op
    this.reason = reason
  }
}

export function errorText(err: unknown): string {
  if (err instanceof Error) return `${err.name}: ${err.message}`
  return String(err)
}
