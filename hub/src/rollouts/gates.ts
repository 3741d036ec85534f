// Health gates [EF-8.5]: the wave's devices on the new version (cohort)
// against comparable devices still on the previous version (baseline), on
// the telemetry the devices themselves measured.
import { CONFIDENCE_BUCKETS } from '@edgefleet/shared'
import { histogramQuantile, psi } from '../stats.js'
import type { CohortStats, ShadowStats } from '../store/index.js'
import type { Gates } from './spec.js'

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

/** Mean of binned confidences (bin centres of CONFIDENCE_BUCKETS), null without counts. */
export function meanConfidence(bins: readonly number[] | null): number | null {
  if (!bins) return null
  let n = 0
  let sum = 0
  bins.forEach((c, i) => {
    n += c
    sum += (c * ((i > 0 ? CONFIDENCE_BUCKETS[i - 1] : 0) + CONFIDENCE_BUCKETS[i])) / 2
  })
  return n > 0 ? sum / n : null
}

export interface GateVerdict {
  /** 'fail': some gate failed; 'pass': enough data and no failure; 'wait': not enough data yet. */
  verdict: 'pass' | 'fail' | 'wait'
  failed: { gate: string; value: number; threshold: number }[]
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
}

export function gateValues(
  traffic: Traffic | null,
  shadow: ShadowStats,
  failedDevices: number,
  p95FloorMs = 0,
): GateValues {
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

/** Applies the thresholds; a value without data never fails [EF-8.5]. */
export function judge(v: GateValues, g: Gates, opts: { needRequests: boolean; needShadow?: boolean }): GateVerdict {
  const failed: GateVerdict['failed'] = []
  if (v.failedDevices > g.maxFailedDevices)
    failed.push({ gate: 'maxFailedDevices', value: v.failedDevices, threshold: g.maxFailedDevices })
  if (g.maxErrorRateDelta !== null && v.errorRate !== null && v.cohortRequests >= g.minRequests) {
    const limit = (v.baselineErrorRate ?? 0) + g.maxErrorRateDelta
    if (v.errorRate > limit) failed.push({ gate: 'maxErrorRateDelta', value: v.errorRate, threshold: limit })
  }
  if (g.maxP95Ratio !== null && v.p95Ratio !== null && v.cohortRequests >= g.minRequests && v.p95Ratio > g.maxP95Ratio)
    failed.push({ gate: 'maxP95Ratio', value: v.p95Ratio, threshold: g.maxP95Ratio })
  if (
    g.minShadowAgreement !== null &&
    v.shadowAgreement !== null &&
    v.shadowRuns >= Math.max(1, g.minRequests) &&
    v.shadowAgreement < g.minShadowAgreement
  )
    failed.push({ gate: 'minShadowAgreement', value: v.shadowAgreement, threshold: g.minShadowAgreement })
  // One-sided: a version that answers with more confidence (a retrained one, usually) is not held back for it.
  if (
    g.maxConfidencePsi !== null &&
    v.confidencePsi !== null &&
    v.cohortRequests >= g.minRequests &&
    v.confidencePsi > g.maxConfidencePsi &&
    (v.confidenceShift ?? -1) < 0
  )
    failed.push({ gate: 'maxConfidencePsi', value: v.confidencePsi, threshold: g.maxConfidencePsi })
  if (failed.length) return { verdict: 'fail', failed, values: v }
  const enough =
    (!opts.needRequests || v.cohortRequests >= g.minRequests) &&
    (!opts.needShadow || v.shadowRuns >= Math.max(1, g.minRequests))
  return { verdict: enough ? 'pass' : 'wait', failed, values: v }
}
