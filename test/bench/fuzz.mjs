#!/usr/bin/env node
// Long fuzzing run: the property suites of hub/test/fuzz, agent/test/fuzz and
// shared/test/fuzz (the same properties the unit suite runs with a fixed seed
// and a few thousand cases), here with a random seed, case counts scaled far
// up and a wall-clock budget per property (test/support/fuzz.mjs reads the
// environment this sets). Needs `pnpm build` first (the hub suites load the
// built compile worker).
//   node test/bench/fuzz.mjs [--minutes N] [--seed S] [--only hub|agent|shared]
// A failure prints the property, its seed and the shrunk counterexample with
// fast-check's replay path; rerun with --seed S to reproduce it.
import { spawnSync } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { randomInt } from 'node:crypto'

const root = join(dirname(fileURLToPath(import.meta.url)), '../..')
const args = process.argv.slice(2)
const opt = (name, fallback) => {
  const i = args.indexOf(`--${name}`)
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1] : fallback
}
const minutes = Number(opt('minutes', '2'))
const seed = Number(opt('seed', String(randomInt(2 ** 31 - 1))))
const only = opt('only', '')
if (!(minutes > 0) || !Number.isSafeInteger(seed)) {
  console.error('usage: node test/bench/fuzz.mjs [--minutes N > 0] [--seed INTEGER] [--only hub|agent|shared]')
  process.exit(2)
}
const suites = ['hub', 'agent', 'shared'].filter((s) => !only || s === only).map((s) => `${s}/test/fuzz`)
/** Properties with a time budget (fuzzParams calls) in the suites; each gets an equal share of the run. */
const PROPERTIES = { hub: 6, agent: 2, shared: 2 }
const count = suites.reduce((n, s) => n + PROPERTIES[s.split('/')[0]], 0)
const budgetMs = Math.floor((minutes * 60_000) / count)

console.log(
  `[fuzz] seed=${seed} minutes=${minutes} properties=${count} budget/property=${budgetMs} ms (${new Date().toISOString()})`,
)
const vitestRun = spawnSync(
  'npx',
  [
    'vitest',
    'run',
    ...suites,
    '--no-file-parallelism', // one property at a time, so the budgets add up to the run
    `--testTimeout=${budgetMs + 180_000}`,
    '--hookTimeout=180000',
  ],
  {
    cwd: root,
    stdio: 'inherit',
    env: { ...process.env, EF_FUZZ_SEED: String(seed), EF_FUZZ_SCALE: '100000', EF_FUZZ_MS: String(budgetMs) },
  },
)
console.log(`[fuzz] seed=${seed} ${vitestRun.status === 0 ? 'no failure' : 'FAILED (rerun with --seed ' + seed + ')'}`)
process.exit(vitestRun.status ?? 1)
