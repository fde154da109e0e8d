// Structural equality of plain data (what ops carry: null, booleans, numbers, strings,
// Uint8Array, Date, arrays, plain objects). Used by mutators that compare values
// (Register.compareAndSet), so it must be deterministic: no identity, no key order.

export function plainEqual(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) {
    // 0 and -0 are the same value once they went through the log.
    return typeof a === 'number' && typeof b === 'number' && a === b
  }
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false
    for (let i = 0; i < a.length; i++) if (!plainEqual(a[i], b[i])) return false
    return true
  }
  if (Array.isArray(b)) return false
  if (a instanceof Uint8Array || b instanceof Uint8Array) {
    if (!(a instanceof Uint8Array) || !(b instanceof Uint8Array) || a.length !== b.length) return false
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
    return true
  }
  if (a instanceof Date || b instanceof Date) {
    return a instanceof Date && b instanceof Date && Object.is(a.getTime(), b.getTime())
  }
  const ka = Object.keys(a)
  const kb = Object.keys(b)
  if (ka.length !== kb.length) return false
  for (const k of ka) {
    if (!Object.hasOwn(b, k)) return false
    if (!plainEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k])) return false
  }
  return true
}

/**
 * Normalises an index the way Array.prototype.splice does (negative counts from the
 * end, then clamped to [0, length]); non-numbers count as 0. Built-in mutators never
 * throw on bad input, since a throwing mutator poisons the object for everyone.
 */
export function clampIndex(index: unknown, length: number): number {
  const n = typeof index === 'number' && Number.isFinite(index) ? Math.trunc(index) : 0
  if (n < 0) return Math.max(0, length + n)
  return Math.min(n, length)
}
