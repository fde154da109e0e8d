// Seeded randomness for the core and the simulator. The core never calls Math.random:
// its driver hands it one of these.

export interface Rng {
  /** A float in [0, 1). */
  next(): number
  /** An integer in [lo, hi). */
  int(lo: number, hi: number): number
}

/** mulberry32: small, fast, good enough for timeouts and fault schedules. */
export function seededRng(seed: number): Rng {
  let a = seed >>> 0
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  return {
    next,
    int(lo, hi) {
      return lo + Math.floor(next() * (hi - lo))
    },
  }
}
