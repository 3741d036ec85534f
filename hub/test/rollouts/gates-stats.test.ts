// Statistically sound gates [EF-8.5]: a small, noisy cohort is "not enough
// data" or passes, never fails on a raw ratio; a real regression fails with
// its numbers; the sequential test keeps its error rate under repeated looks.
import { describe, expect, it } from 'vitest'
import { emptyConfidenceCounts, emptyLatencyCounts } from '@edgefleet/shared'
import { judge, testAlpha, type GateInput } from '../../src/rollouts/gates.js'
import { defaultGates } from '../../src/rollouts/spec.js'
import { msprtHalfWidth, msprtLogEvidence, seededRandom } from '../../src/stats.js'
import type { CohortPart, CohortStats } from '../../src/store/index.js'

/** A device window: requests spread over latency buckets (index → count), errors, confidence bin counts. */
function part(deviceId: string, latency: Record<number, number>, errors = 0, confidenceBin = 8): CohortPart {
  const lat = emptyLatencyCounts()
  for (const [i, c] of Object.entries(latency)) lat[Number(i)] = c
  const requests = lat.reduce((a, b) => a + b, 0)
  const confidence = emptyConfidenceCounts()
  confidence[confidenceBin] = requests
  return { deviceId, ts: 0, requests, errors, latency: lat, confidence }
}

function stats(parts: CohortPart[]): CohortStats {
  const latency = emptyLatencyCounts()
  const confidence = emptyConfidenceCounts()
  for (const p of parts) {
    p.latency.forEach((c, i) => (latency[i] += c))
    p.confidence.forEach((c, i) => (confidence[i] += c))
  }
  const total = (k: 'requests' | 'errors') => parts.reduce((a, p) => a + p[k], 0)
  return {
    devices: new Set(parts.map((p) => p.deviceId)).size,
    requests: total('requests'),
    errors: total('errors'),
    latency,
    confidence,
    parts,
  }
}

const input = (cohort: CohortPart[], baseline: CohortPart[]): GateInput => ({
  traffic: { cohort: stats(cohort), baseline: stats(baseline), concurrent: true },
  shadow: { runs: 0, agree: 0 },
  failedDevices: 0,
})
const opts = { needRequests: true, waves: 3 }
// Latency bucket indices (LATENCY_BUCKETS_MS): 7 = (5, 10] ms, 8 = (10, 20], 9 = (20, 50].
const FAST = 7
const MID = 8
const SLOW = 9

describe('statistically sound gates [EF-8.5]', () => {
  it('27 requests with two slow ones: the raw p95 ratio is over 1.5 but the gate does not fail on it', () => {
    // The e2e symptom: one loaded device in the cohort, three calm ones in the baseline.
    const cohort = [part('c', { [FAST]: 25, [SLOW]: 2 })]
    const baseline = ['b1', 'b2', 'b3'].map((id) => part(id, { [FAST]: 95, [MID]: 5 }))
    const v = judge(input(cohort, baseline), defaultGates, opts)
    expect(v.values.p95Ratio).toBeGreaterThan(1.5) // what the old gate failed on
    expect(v.verdict).toBe('pass')
    const p95 = v.checks.find((c) => c.gate === 'maxP95Ratio')
    expect(p95?.status).toBe('pass')
    // The interval is wide and says so: it spans "no change".
    expect(p95?.interval?.[0]).toBeLessThan(0)
    expect(p95?.reason).toMatch(/p95 .* ms vs baseline .* ms \(ratio [\d.]+, 99\.\d+% interval/)
  })

  it('below minRequests every relative gate says "not enough data" and the wave waits', () => {
    const cohort = [part('c', { [SLOW]: 12 }, 12, 1)] // all slow, all errors, unsure: still only 12 requests
    const baseline = ['b1', 'b2'].map((id) => part(id, { [FAST]: 100 }))
    const verdict = judge(input(cohort, baseline), defaultGates, opts)
    expect(verdict.verdict).toBe('wait')
    expect(verdict.failed).toEqual([])
    const statuses = Object.fromEntries(verdict.checks.map((c) => [c.gate, c.status]))
    expect(statuses).toEqual({
      maxErrorRateDelta: 'not enough data',
      maxP95Ratio: 'not enough data',
      maxConfidencePsi: 'not enough data',
    })
    expect(verdict.checks[0].reason).toBe('not enough data: 12 of 20 requests')
  })

  it('a real regression fails each gate with its numbers in the reason', () => {
    const cohort = ['c1', 'c2', 'c3', 'c4'].map((id) => part(id, { [SLOW]: 200 }, 20, 3))
    const baseline = ['b1', 'b2', 'b3', 'b4', 'b5', 'b6'].map((id) => part(id, { [FAST]: 190, [MID]: 10 }, 1, 8))
    const v = judge(input(cohort, baseline), defaultGates, opts)
    expect(v.verdict).toBe('fail')
    expect(v.failed.map((f) => f.gate).sort()).toEqual(['maxConfidencePsi', 'maxErrorRateDelta', 'maxP95Ratio'])
    const error = v.failed.find((f) => f.gate === 'maxErrorRateDelta')
    expect(error?.value).toBeCloseTo(0.1, 5)
    expect(error?.reason).toMatch(
      /^error rate 10\.00% vs baseline 0\.50% \(\+9\.50 points, 99\.\d+% interval \+[\d.]+\.\.\+[\d.]+\) over 800 vs 1200 requests/,
    )
    const check = v.checks.find((c) => c.gate === 'maxErrorRateDelta')
    expect(check?.interval?.[0]).toBeGreaterThan(0)
    expect(check?.evidence).toBeGreaterThan(Math.log(1 / check!.alpha))
  })

  it('a more confident version passes the one-sided confidence gate however large the PSI', () => {
    const cohort = ['c1', 'c2'].map((id) => part(id, { [FAST]: 200 }, 0, 9))
    const baseline = ['b1', 'b2'].map((id) => part(id, { [FAST]: 200 }, 0, 4))
    const v = judge(input(cohort, baseline), defaultGates, opts)
    const check = v.checks.find((c) => c.gate === 'maxConfidencePsi')
    expect(check?.value).toBeGreaterThan(5)
    expect(check?.status).toBe('pass')
  })

  it('the same telemetry gives the same decision (the bootstrap is seeded by the data)', () => {
    const cohort = ['c1', 'c2', 'c3'].map((id, i) => part(id, { [FAST]: 90 + i, [MID]: 8, [SLOW]: 2 + i }, i))
    const baseline = ['b1', 'b2', 'b3', 'b4'].map((id, i) => part(id, { [FAST]: 95 - i, [MID]: 5 + i }, 1))
    const a = judge(input(cohort, baseline), defaultGates, opts)
    const b = judge(input(cohort, baseline), defaultGates, opts)
    expect(a.checks).toEqual(b.checks)
  })

  it('the rollout error budget is shared by the gates that are on and the waves', () => {
    expect(testAlpha(defaultGates, 3)).toBeCloseTo(0.01 / 9, 10)
    expect(testAlpha({ ...defaultGates, maxP95Ratio: null, confidence: 0.95 }, 2)).toBeCloseTo(0.05 / 4, 10)
  })
})

describe('mixture sequential test', () => {
  it('keeps its error rate under a look after every observation (no effect)', () => {
    const random = seededRandom(7)
    const normal = () => Math.sqrt(-2 * Math.log(random() + 1e-12)) * Math.cos(2 * Math.PI * random())
    const alpha = 0.05
    let rejected = 0
    const paths = 1000
    for (let p = 0; p < paths; p++) {
      let sum = 0
      for (let n = 1; n <= 300; n++) {
        sum += normal()
        // Estimate of the mean after n unit-variance observations.
        if (msprtLogEvidence(sum / n, 1 / n, 0.3) >= Math.log(1 / alpha)) {
          rejected++
          break
        }
      }
    }
    // A fixed-sample z test looked at 300 times would reject far more often (about 30 %).
    expect(rejected / paths).toBeLessThanOrEqual(alpha)
  })

  it('its interval excludes 0 exactly when the evidence passes the level', () => {
    for (const [estimate, variance] of [
      [0.3, 0.01],
      [0.1, 0.01],
      [0.05, 0.0001],
    ] as const) {
      const half = msprtHalfWidth(variance, 0.2, 0.01)
      const rejects = msprtLogEvidence(estimate, variance, 0.2) >= Math.log(100)
      expect(estimate - half > 0).toBe(rejects)
    }
  })
})
