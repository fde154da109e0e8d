// Determinism guard (development and test mode).
//
// Every client replays the same ops through the same mutators and must reach the same
// state, so a mutator may depend only on its state, its arguments and its entry context
// (currentEntry(): position and log time). While a mutator runs, the guard makes the
// usual sources of non-determinism throw an error that names the object and mutator:
//
//   Date.now()  new Date() / Date() without arguments  performance.now()
//   Math.random()  crypto.randomUUID()  crypto.getRandomValues()
//   node:crypto randomUUID / randomBytes / randomInt / getRandomValues  process.hrtime(.bigint)
//
// The error is recorded before it is thrown, so a mutator that catches it still fails:
// the object is poisoned at that op (in development, loudly, instead of diverging in
// production). The guard is on when NODE_ENV !== 'production' (override with
// connect({ determinismGuard })). Outside mutators the patched functions cost one flag
// test. It cannot see everything: reading mutable globals, iterating a WeakMap-keyed
// cache, or calling a library that captured Date.now before installation go unnoticed.

import nodeCrypto from 'node:crypto'
import { syncBuiltinESMExports } from 'node:module'
import { ObjectError } from './errors.ts'

interface GuardState {
  active: boolean
  objectName: string
  typeName: string
  mutator: string
  violation: ObjectError | null
}

const guard: GuardState = { active: false, objectName: '', typeName: '', mutator: '', violation: null }
let installed = false

export function determinismGuardDefault(): boolean {
  return process.env['NODE_ENV'] !== 'production'
}

/** Marks the start of a mutator call. Pair with exitMutator() in a finally block. */
export function enterMutator(objectName: string, typeName: string, mutator: string): void {
  guard.active = true
  guard.objectName = objectName
  guard.typeName = typeName
  guard.mutator = mutator
  guard.violation = null
}

/** Ends the mutator call; returns the violation it made, if any (even one it caught). */
export function exitMutator(): ObjectError | null {
  guard.active = false
  const v = guard.violation
  guard.violation = null
  return v
}

function violate(what: string): never {
  const err = new ObjectError(
    'nondeterministic',
    `${what} called inside mutator "${guard.typeName}.${guard.mutator}" of object "${guard.objectName}": mutators must be deterministic ` +
      '(use arguments computed by the caller, or currentEntry().ts / .position for log time and unique ids)',
  )
  guard.violation ??= err
  throw err
}

type Fn = (...args: never[]) => unknown

function wrap<F extends Fn>(what: string, original: F): F {
  const wrapped = function (this: unknown, ...args: Parameters<F>): ReturnType<F> {
    if (guard.active) violate(what)
    return Reflect.apply(original, this, args) as ReturnType<F>
  }
  return wrapped as unknown as F
}

function patch(target: object | undefined, key: string, what: string): void {
  if (target === undefined) return
  const original: unknown = Reflect.get(target, key)
  if (typeof original !== 'function') return
  const wrapped = wrap(what, original as Fn)
  try {
    Object.defineProperty(target, key, { value: wrapped, writable: true, configurable: true, enumerable: false })
  } catch {
    // Non-configurable (node:crypto's getRandomValues): plain assignment if writable, else left unguarded.
    try {
      Reflect.set(target, key, wrapped)
    } catch {
      // left unguarded
    }
  }
}

/** Installs the guard into the process's globals. Idempotent. */
export function installDeterminismGuard(): void {
  if (installed) return
  installed = true
  patch(Date, 'now', 'Date.now()')
  patch(Math, 'random', 'Math.random()')
  patch(globalThis.performance, 'now', 'performance.now()')
  patch(globalThis.crypto, 'randomUUID', 'crypto.randomUUID()')
  patch(globalThis.crypto, 'getRandomValues', 'crypto.getRandomValues()')
  for (const name of ['randomUUID', 'randomBytes', 'randomInt', 'getRandomValues', 'randomFillSync']) {
    patch(nodeCrypto, name, `crypto.${name}()`)
  }
  syncBuiltinESMExports()
  const hrtime = process.hrtime
  const guardedHrtime = wrap('process.hrtime()', hrtime) as typeof process.hrtime
  guardedHrtime.bigint = wrap('process.hrtime.bigint()', hrtime.bigint)
  process.hrtime = guardedHrtime
  // `new Date()` and `Date()` read the clock; `new Date(x)` does not.
  const OriginalDate = globalThis.Date
  globalThis.Date = new Proxy(OriginalDate, {
    construct(target, args: unknown[], newTarget) {
      if (guard.active && args.length === 0) violate('new Date()')
      return Reflect.construct(target, args, newTarget === globalThis.Date ? target : newTarget) as object
    },
    apply(target, thisArg, args: unknown[]) {
      if (guard.active) violate('Date()')
      return Reflect.apply(target, thisArg, args) as unknown
    },
  })
}
