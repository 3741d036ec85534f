// Guard for the health-gate benchmark (test/bench/gates.mjs, issue 16.1): no
// timing, only decisions. The benchmark's shortcut (each device's rows summed
// per 2-minute block before the gates see them) must not change a single
// decision of the real gate code; on a small seeded A/A sample the gates must
// not pause a good version more than the target allows (≤ 1 %: at most 1 of
// 24 rollouts), in the first wave or in all of them,
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
  it(
    'block-summed telemetry gives the gates the same decisions as raw rows, tick by tick',
    { timeout: 300_000 },
    () => {
      for (const [seed, candidate] of [
        [11, GOOD],
        [12, BROKEN],
      ] as const) {
        const raw: string[] = []
        const compact: string[] = []
        // 10 devices (waves of 1, 5 and 10): the raw-row path re-reads every row at every tick.
        simulateRollout(seed, candidate, { judge, waveTrafficOf, gates, devices: 10, compact: false, trace: raw })
        simulateRollout(seed, candidate, { judge, waveTrafficOf, gates, devices: 10, trace: compact })
        expect(raw.length).toBeGreaterThan(100) // every tick of the three waves was judged
        expect(compact).toEqual(raw)
      }
    },
  )

  it('A/A on the benchmark fleet (40 devices, 24 seeded rollouts): first-wave pauses within the 1 % target, all waves guarded', () => {
    let paused = 0
    let pausedFirstWave = 0
    let legacyPaused = 0
    for (let index = 0; index < 24; index++) {
      const outcome = simulateRollout(1_000 + index * 7919, GOOD, { judge, waveTrafficOf, gates, devices: 40 })
      if (outcome.failed) paused++
      if (outcome.failed?.wave === 0) pausedFirstWave++
      if (outcome.legacy) legacyPaused++
    }
    expect(pausedFirstWave).toBeLessThanOrEqual(1)
    // All waves: the target is ≤ 1 % (docs/BENCHMARKS.md, 3 x 200 rollouts). Before the interval-matched
    // comparisons of EF-8.5.5 the last wave's p95 gate paused 7-8 %: a load swing
    // between the cohort's hour before the wave and the wave passed for a regression.
    expect(paused).toBeLessThanOrEqual(1)
    // The sample is noisy enough to matter: raw thresholds on the same values pause far more often.
    expect(legacyPaused).toBeGreaterThan(paused + 4)
  }, 600_000) // ~1.3 s of CPU per rollout (all three waves judged every 10 s); minutes on a loaded machine

  it('A/B: the broken head is stopped in wave 1 in at least 19 of 20 seeded rollouts', () => {
    let firstWave = 0
    for (let index = 0; index < 20; index++) {
      const outcome = simulateRollout(5_000 + index * 7919, BROKEN, { judge, waveTrafficOf, gates, devices: 20 })
      if (outcome.failed?.wave === 0) firstWave++
    }
    expect(firstWave).toBeGreaterThanOrEqual(19)
  })
})
