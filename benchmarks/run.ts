// `npm run bench -- [name ...] [--quick]`: runs the named benchmarks (all by default),
// prints tables and rewrites their sections of benchmarks/RESULTS.md.
import { benchAppend } from './append.ts'
import { benchCheckpoint } from './checkpoint.ts'
import { benchObjects } from './objects.ts'
import { benchPaxos } from './paxos.ts'
import { benchTx } from './tx.ts'
import type { BenchArgs } from './lib/report.ts'

const BENCHES: Record<string, (args: BenchArgs) => Promise<void>> = {
  paxos: benchPaxos,
  append: benchAppend,
  checkpoint: benchCheckpoint,
  tx: benchTx,
  objects: benchObjects,
}

const argv = process.argv.slice(2)
const quick = argv.includes('--quick')
const names = argv.filter((a) => !a.startsWith('--'))
const unknown = names.filter((n) => !(n in BENCHES))
if (unknown.length > 0) {
  console.error(`unknown benchmark(s): ${unknown.join(', ')}; available: ${Object.keys(BENCHES).join(', ')}`)
  process.exit(2)
}
for (const name of names.length > 0 ? names : Object.keys(BENCHES)) {
  console.log(`== ${name}${quick ? ' (quick)' : ''}`)
  await BENCHES[name]!({ quick, rest: argv })
}
