// The deterministic simulation over many seeds. Every run is one seed; a failure
// prints the seed and the command that replays it.
//
//   npx vitest run test/sim/sim.test.ts             default seeds (20 x 3 replicas, 10 x 5)
//   SIM_SEEDS=500 npx vitest run test/sim/sim.test.ts   seeds 1..500
//   SIM_SEED_START=10000 SIM_SEEDS=500 ...           seeds 10000..10499
//   SEED=1234 npx vitest run test/sim/sim.test.ts   exactly one seed
//   SIM_TRACE=/tmp/trace.txt SEED=1234 ...          and write its full event trace
//   SIM_TICKS=3000 ...                              a longer safety phase (default 1000 ticks)

import { writeFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { Simulation, replicasForSeed } from './simulation.ts'

function envInt(name: string): number | undefined {
  const v = process.env[name]
  if (v === undefined || v === '') return undefined
  const n = Number(v)
  if (!Number.isSafeInteger(n)) throw new Error(`${name} must be an integer, got ${v}`)
  return n
}

function seeds(): number[] {
  const one = envInt('SEED')
  if (one !== undefined) return [one]
  const count = envInt('SIM_SEEDS')
  const start = envInt('SIM_SEED_START') ?? 1
  if (count !== undefined) return Array.from({ length: count }, (_, i) => start + i)
  // Default: seeds 1..30, which are 20 runs of 3 replicas and 10 of 5.
  return Array.from({ length: 30 }, (_, i) => start + i)
}

describe('deterministic simulation', () => {
  const list = seeds()
  const tracePath = process.env.SIM_TRACE
  for (const seed of list) {
    it(`seed ${seed} (${replicasForSeed(seed)} replicas)`, () => {
      const sim = new Simulation({ seed, safetyTicks: envInt('SIM_TICKS'), trace: tracePath !== undefined && tracePath !== '' })
      try {
        const report = sim.run()
        expect(report.slots).toBeGreaterThan(0)
        if (list.length === 1) console.log(JSON.stringify(report, null, 2))
      } finally {
        if (tracePath !== undefined && tracePath !== '') writeFileSync(tracePath, sim.traceLines.join('\n') + '\n')
      }
    })
  }
})
