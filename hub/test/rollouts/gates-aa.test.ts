// Guard for the health-gate benchmark (test/bench/gates.mjs, issue 16.1): no
// timing, only decisions. The benchmark's shortcut (each device's rows summed
// per 2-minute block before the gates see them) must not change a single
// decision of the real gate code; on a small seeded A/A sample the gates must
// not pause a good version in the first wave more than the target allows
// (≤ 1 %: at most 1 of 40 rollouts) nor in all waves more than they do today,
// and the broken head must still be caught in wave 1.
import { describe, expect, it } from 'vitest'
import { judge } from '../../src/rollouts/gates.js'
import { waveTrafficOf } from '../../src/rollouts/gate-traffic.js'
import { defaultGates } from '../../src/rollouts/spec.js'
import { behaviour, simulateRollout } from '../../../test/bench/support/gate-sim.mjs'

const gates = { ...defaultGates }
const GOOD = behaviour(false, [])
const BROKEN = behaviour(true, ['latency', 'errors', 'outputs'])

describe('gate benchmark simulation [EF-8.5]', () => {
  it('block-summed telemetry gives the gates the same decisions as raw rows, tick by tick', () => {
    for (const [seed, candidate] of [
      [11, GOOD],
      [12, BROKEN],
    ] as const) {
      const raw: string[] = []
      const compact: string[] = []
      simulateRollout(seed, candidate, { judge, waveTrafficOf, gates, devices: 20, compact: false, trace: raw })
      simulateRollout(seed, candidate, { judge, waveTrafficOf, gates, devices: 20, trace: compact })
      expect(raw.length).toBeGreaterThan(100) // every tick of the three waves was judged
      expect(compact).toEqual(raw)
    }
  })

  it('A/A on the benchmark fleet (40 devices, 40 seeded rollouts): first-wave pauses within the 1 % target, all waves guarded', () => {
    let paused = 0
    let pausedFirstWave = 0
    let legacyPaused = 0
    for (let index = 0; index < 40; index++) {
      const outcome = simulateRollout(1_000 + index * 7919, GOOD, { judge, waveTrafficOf, gates, devices: 40 })
      if (outcome.failed) paused++
      if (outcome.failed?.wave === 0) pausedFirstWave++
      if (outcome.legacy) legacyPaused++
    }
    expect(pausedFirstWave).toBeLessThanOrEqual(1)
    // Over all waves the gates miss the target: 7-8 % in the 3 x 200-rollout runs (docs/BENCHMARKS.md), all
    // from the p95 gate, mostly in the last wave, where the baseline is the cohort's own hour before the
    // wave. This bound (15 %) only stops it getting worse; lower it when that gate is fixed.
    expect(paused).toBeLessThanOrEqual(6)
    // The sample is noisy enough to matter: raw thresholds on the same values pause far more often.
    expect(legacyPaused).toBeGreaterThan(paused + 4)
  }, 180_000) // ~15 s of CPU; minutes on a loaded machine

  it('A/B: the broken head is stopped in wave 1 in at least 19 of 20 seeded rollouts', () => {
    let firstWave = 0
    for (let index = 0; index < 20; index++) {
      const outcome = simulateRollout(5_000 + index * 7919, BROKEN, { judge, waveTrafficOf, gates, devices: 20 })
      if (outcome.failed?.wave === 0) firstWave++
    }
    expect(firstWave).toBeGreaterThanOrEqual(19)
  })
})
