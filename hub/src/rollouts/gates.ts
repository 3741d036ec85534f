// Health gates [EF-8.5]: the wave's devices on the new version (cohort)
// against comparable devices still on the previous version (baseline), on
// the telemetry the devices themselves measured.
import { histogramQuantile, psi } from '../stats.js'
import type { CohortStats, ShadowStats } from '../store/index.js'
import {
  confidenceCheck,
  errorRateCheck,
  meanConfidence,
  p95Check,
  seedFor,
  shadowCheck,
  side,
  type GateCheck,
} from './gate-evidence.js'
import { defaultGates, type Gates } from './spec.js'

export interface GateValues {
  cohortDevices: number
  cohortRequests: number
  baselineDevices: number
  baselineRequests: number
  errorRate: number | null
  baselineErrorRate: number | null
  p95Ms: number | null
  baselineP95Ms: number | null
  p95Ratio: number | null
  shadowRuns: number
  shadowAgreement: number | null
  confidencePsi: number | null
  /** Cohort's mean confidence minus the baseline's (bin centres, EF-2.6.4); < 0: less confident. */
  confidenceShift: number | null
  failedDevices: number
}

export interface GateVerdict {
  /** 'fail': some gate failed; 'pass': enough data and no failure; 'wait': not enough data yet. */
  verdict: 'pass' | 'fail' | 'wait'
  failed: { gate: string; value: number; threshold: number; reason: string }[]
  /** Every gate's test with its numbers, failed or not [EF-8.5]. */
  checks: GateCheck[]
  values: GateValues
}

/**
 * The new version's traffic on the wave's devices (cohort) and the comparable
 * traffic of the previous version (baseline). A shadow stage has none: nothing
 * of the new version serves yet [EF-8.8].
 */
export interface Traffic {
  cohort: CohortStats
  baseline: CohortStats
  /** The baseline was measured over the same interval as the cohort (false: before the wave). */
  concurrent: boolean
  /**
   * The same two groups over one interval before the wave [EF-8.5.5]: each
   * gate then judges the cohort's change between the two intervals minus the
   * baseline's (a difference in differences), so neither what the cohort's
   * devices are nor what the load did meanwhile passes for the version.
   */
  earlier?: { cohort: CohortStats; baseline: CohortStats }
}

function gateValues(traffic: Traffic | null, shadow: ShadowStats, failedDevices: number, p95FloorMs = 0): GateValues {
  const cohort = traffic?.cohort
  const baseline = traffic?.baseline
  const errorRate = cohort?.requests ? cohort.errors / cohort.requests : null
  const baselineErrorRate = baseline?.requests ? baseline.errors / baseline.requests : null
  const finite = (x: number | null | undefined) => (x !== null && x !== undefined && Number.isFinite(x) ? x : null)
  const p95Ms = cohort ? histogramQuantile(cohort.latency, 0.95) : null
  const baselineP95Ms = baseline ? histogramQuantile(baseline.latency, 0.95) : null
  const cohortConfidence = meanConfidence(cohort?.confidence ?? null)
  const baselineConfidence = meanConfidence(baseline?.confidence ?? null)
  return {
    cohortDevices: cohort?.devices ?? 0,
    cohortRequests: cohort?.requests ?? 0,
    baselineDevices: baseline?.devices ?? 0,
    baselineRequests: baseline?.requests ?? 0,
    errorRate,
    baselineErrorRate,
    p95Ms: finite(p95Ms),
    baselineP95Ms: finite(baselineP95Ms),
    p95Ratio:
      p95Ms !== null && baselineP95Ms !== null && Math.max(baselineP95Ms, p95FloorMs) > 0
        ? finite(Math.max(p95Ms, p95FloorMs) / Math.max(baselineP95Ms, p95FloorMs))
        : null,
    shadowRuns: shadow.runs,
    shadowAgreement: shadow.runs ? shadow.agree / shadow.runs : null,
    confidencePsi: traffic ? finite(psi(traffic.baseline.confidence, traffic.cohort.confidence)) : null,
    confidenceShift:
      cohortConfidence !== null && baselineConfidence !== null ? cohortConfidence - baselineConfidence : null,
    failedDevices,
  }
}

/** The values kept as one point of a rollout's gate time series [EF-8.5]. */
const SAMPLED = [
  'errorRate',
  'baselineErrorRate',
  'p95Ms',
  'baselineP95Ms',
  'p95Ratio',
  'shadowAgreement',
  'confidencePsi',
  'confidenceShift',
  'cohortRequests',
  'baselineRequests',
] as const satisfies readonly (keyof GateValues)[]

export function gateSample(v: GateValues): Record<string, number | null> {
  return Object.fromEntries(SAMPLED.map((k) => [k, v[k]]))
}

/** What one evaluation judges: the wave's traffic (none in a shadow stage), shadow runs, failed installs. */
export interface GateInput {
  traffic: Traffic | null
  shadow: ShadowStats
  failedDevices: number
}

export interface JudgeOptions {
  /** The cohort must reach minRequests before the wave can pass (not in a shadow stage). */
  needRequests: boolean
  /** Shadow runs must reach minRequests before the stage can pass. */
  needShadow?: boolean
  /** Waves of the rollout: the rollout's error budget is shared by every wave. */
  waves: number
}

/**
 * The share of the rollout's error budget (1 − confidence) one test gets:
 * split over the gates that are on and over the waves (Bonferroni), so a good
 * version is paused with probability at most 1 − confidence over the whole
 * rollout [EF-8.5].
 */
export function testAlpha(g: Gates, waves: number): number {
  const on = [g.maxErrorRateDelta, g.maxP95Ratio, g.maxConfidencePsi, g.minShadowAgreement].filter((x) => x !== null)
  const confidence = g.confidence ?? defaultGates.confidence
  return (1 - confidence) / (Math.max(1, on.length) * Math.max(1, waves))
}

/**
 * Judges a wave [EF-8.5]: install failures by count, every other gate by its
 * sequential test (gate-evidence.ts). A gate below its minimum sample says
 * "not enough data" and neither fails nor passes the wave.
 */
export function judge(input: GateInput, gates: Gates, opts: JudgeOptions): GateVerdict {
  const values = gateValues(input.traffic, input.shadow, input.failedDevices, gates.p95FloorMs)
  const empty: CohortStats = { devices: 0, requests: 0, errors: 0, latency: [], confidence: [], parts: [] }
  const by = input.traffic?.concurrent === false ? 'time' : 'device'
  const earlier = input.traffic?.earlier
  const cohort = side(input.traffic?.cohort ?? empty, by, earlier?.cohort)
  const baseline = side(input.traffic?.baseline ?? empty, by, earlier?.baseline)
  const context = {
    alpha: testAlpha(gates, opts.waves),
    minRequests: gates.minRequests,
    random: seedFor(cohort.requests, cohort.errors, baseline.requests, baseline.errors, input.shadow.runs),
  }
  const checks: GateCheck[] = [
    ...(input.traffic
      ? [
          errorRateCheck(cohort, baseline, gates.maxErrorRateDelta, context),
          p95Check(cohort, baseline, gates.maxP95Ratio, gates.p95FloorMs, context),
          confidenceCheck(cohort, baseline, gates.maxConfidencePsi, context),
        ]
      : []),
    ...(opts.needShadow ? [shadowCheck(input.shadow, gates.minShadowAgreement, context)] : []),
  ]
  const failed: GateVerdict['failed'] = []
  if (values.failedDevices > gates.maxFailedDevices)
    failed.push({
      gate: 'maxFailedDevices',
      value: values.failedDevices,
      threshold: gates.maxFailedDevices,
      reason: `${values.failedDevices} devices failed to install, ${gates.maxFailedDevices} tolerated`,
    })
  for (const c of checks)
    if (c.status === 'fail')
      failed.push({ gate: c.gate, value: c.value ?? 0, threshold: c.threshold ?? 0, reason: c.reason })
  if (failed.length) return { verdict: 'fail', failed, checks, values }
  const enough =
    (!opts.needRequests || values.cohortRequests >= gates.minRequests) &&
    (!opts.needShadow || values.shadowRuns >= Math.max(1, gates.minRequests))
  return { verdict: enough ? 'pass' : 'wait', failed, checks, values }
}
