#!/usr/bin/env node
// Health-gate benchmark (issue 16.1): false pauses of a good version (A/A) and
// detection of a broken one (A/B) by the hub's real gate module
// (hub/dist/rollouts/gates.js `judge`, the same call the soak phase makes).
//
// The telemetry is SYNTHETIC, drawn from distributions meant to look like a
// loaded fleet, and shaped exactly as the hub stores it (one row per device
// and 5 s telemetry window: requests, errors, latency histogram, confidence
// bins):
//   - 40 devices of one profile; per-device speed factor lognormal σ 0.15,
//     request rate uniform 0.5-3 req/s, modulated ±50 % over time;
//   - latency lognormal (median 12 ms × device × load, σ 0.4), 1 % stalls
//     ×3-8; machine load shared by every device (AR(1) on log scale, σ 0.35,
//     φ 0.9 per window) plus per-device load (σ 0.2), and a 60 s ×2.5 spike
//     on the whole machine with probability 0.5 % per window;
//   - errors: per-device rate Beta(1, 199) (mean 0.5 %) plus bursts (1 % of
//     device windows fail 10 % of their requests);
//   - confidence: Beta(8, 2) per answer shifted by a per-device offset of
//     ±0.03 (different inputs per site), in the ten EF-2.6.4 bins.
// A rollout: waves 10 %, 50 %, 100 %, 10 min soak each, gates evaluated every
// 10 s as the engine does, on the traffic the engine assembles
// (hub/dist/rollouts/gate-traffic.js, EF-8.5.5): cohort = the wave's devices
// on the candidate since the wave started; baseline = the other devices on
// the old version over the same interval, or in the last wave the devices
// migrated by earlier waves; both also over an interval before the wave (the
// hour before; in the last wave the previous wave's soak), and the gates
// judge the cohort's change minus the baseline's.
// A/A: the candidate is the same version. A/B: a broken head — latency ×1.5,
// error rate +2 points, outputs shifted (confidence Beta(7, 2.6)) — also each
// defect alone. Reported beside the gates as they were before issue 16 (raw
// thresholds on the same values; in the last wave against the cohort's own
// hour before it, as then) for comparison.
// The simulation itself is test/bench/support/gate-sim.mjs (shared with the
// guard test hub/test/rollouts/gates-aa.test.ts); it hands the gates each
// device's rows summed per 2-minute block, which gives them the same clusters
// and sums as raw rows (the guard test checks the decisions are identical) at
// a fraction of the cost.
// Usage: node test/bench/gates.mjs [--rollouts 200] [--devices 40] [--seed 1] [--only A/A]   (after `pnpm build`)
import { parseArgs } from 'node:util'
import { judge } from '../../hub/dist/rollouts/gates.js'
import { waveTrafficOf } from '../../hub/dist/rollouts/gate-traffic.js'
import { defaultGates } from '../../hub/dist/rollouts/spec.js'
import { SIMULATION, behaviour, simulateRollout } from './support/gate-sim.mjs'

const { values: flags } = parseArgs({
  options: {
    rollouts: { type: 'string' },
    devices: { type: 'string' },
    seed: { type: 'string' },
    only: { type: 'string' },
  },
})
const ROLLOUTS = Number(flags.rollouts ?? 200)
const DEVICES = Number(flags.devices ?? 40)
const SEED = Number(flags.seed ?? 1)
const gates = { ...defaultGates }

const quantile = (values, q) => {
  if (!values.length) return null
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]
}

function scenario(name, candidate, seedBase) {
  const started = Date.now()
  let paused = 0
  let pausedFirstWave = 0
  let legacyPaused = 0
  let legacyFirstWave = 0
  const requests = []
  const byGate = {}
  const byWave = {}
  for (let index = 0; index < ROLLOUTS; index++) {
    const outcome = simulateRollout(seedBase + index * 7919, candidate, {
      judge,
      waveTrafficOf,
      gates,
      devices: DEVICES,
    })
    if (outcome.failed) {
      paused++
      if (outcome.failed.wave === 0) {
        pausedFirstWave++
        requests.push(outcome.failed.requests)
      }
      for (const gate of outcome.failed.gates) byGate[gate] = (byGate[gate] ?? 0) + 1
      byWave[outcome.failed.wave] = (byWave[outcome.failed.wave] ?? 0) + 1
    }
    if (outcome.legacy) {
      legacyPaused++
      if (outcome.legacy.wave === 0) legacyFirstWave++
    }
  }
  const pctOf = (count) => `${((100 * count) / ROLLOUTS).toFixed(1)} %`
  const line = {
    scenario: name,
    rollouts: ROLLOUTS,
    paused: pctOf(paused),
    pausedInFirstWave: pctOf(pausedFirstWave),
    requestsToDetect: requests.length
      ? { min: Math.min(...requests), median: quantile(requests, 0.5), max: Math.max(...requests) }
      : null,
    failedGates: byGate,
    pausedByWave: byWave,
    legacyPaused: pctOf(legacyPaused),
    legacyPausedInFirstWave: pctOf(legacyFirstWave),
    seconds: Math.round((Date.now() - started) / 100) / 10,
  }
  console.log(JSON.stringify(line))
  return line
}

const SCENARIOS = [
  ['A/A (same version)', behaviour(false, [])],
  ['A/B broken head (latency ×1.5, errors +2 pts, outputs shifted)', behaviour(true, ['latency', 'errors', 'outputs'])],
  ['A/B latency ×1.5 only', behaviour(true, ['latency'])],
  ['A/B errors +2 pts only', behaviour(true, ['errors'])],
  ['A/B outputs shifted only', behaviour(true, ['outputs'])],
]
console.log(
  JSON.stringify({
    devices: DEVICES,
    waves: SIMULATION.waves,
    soakMs: SIMULATION.soakMs,
    tickMs: SIMULATION.tickMs,
    seed: SEED,
    confidence: gates.confidence,
  }),
)
for (const [index, [name, candidate]] of SCENARIOS.entries()) {
  if (flags.only && !name.startsWith(flags.only)) continue
  scenario(name, candidate, SEED * 1_000_003 + index * 104_729)
}
