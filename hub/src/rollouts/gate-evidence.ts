// The statistics behind each health gate [EF-8.5]: an effect estimate of the
// cohort against the baseline, its variance (cluster bootstrap over telemetry
// rows, never below what independent requests would give), and an
// always-valid sequential test (mSPRT) at the gate's share of the rollout's
// stated confidence. A gate fails only when the test is confident the cohort
// is worse *and* the estimate is material; below its minimum sample it says
// "not enough data" and neither fails nor guesses [EF-8.5.1 – EF-8.5.4].
import { CONFIDENCE_BUCKETS } from '@edgefleet/shared'
import {
  addCounts,
  bootstrapVariance,
  histogramQuantile,
  msprtHalfWidth,
  msprtLogEvidence,
  psi,
  seededRandom,
} from '../stats.js'
import type { CohortPart, CohortStats, ShadowStats } from '../store/index.js'

type CheckStatus = 'pass' | 'fail' | 'not enough data' | 'off'

/** One gate's decision with the numbers that caused it (kept in the decision records). */
export interface GateCheck {
  gate: string
  status: CheckStatus
  /** The gate's own value: cohort error rate, p95 ratio, confidence PSI or shadow agreement. */
  value: number | null
  threshold: number | null
  /** Effect on the test's scale (positive: the cohort is worse) and its always-valid interval at `alpha`. */
  estimate: number | null
  interval: [number, number] | null
  /** Log evidence of the sequential test against "no worse"; it fails at log(1/alpha). */
  evidence: number | null
  alpha: number
  reason: string
}

/** Clusters resampled by the bootstrap at most; more rows are merged, a device's rows together. */
const MAX_CLUSTERS = 64
/** Width of one confidence bin: the rounding the bins add to a mean's variance (Sheppard). */
const CONFIDENCE_BIN = 0.1

export interface Side {
  requests: number
  errors: number
  latency: number[]
  confidence: number[]
  clusters: CohortPart[]
}

/** Length of the time blocks resampled when the two sides were not measured over the same interval, ms. */
const TIME_BLOCK_MS = 120_000

/**
 * What the bootstrap resamples [EF-8.5]. Over the same interval, load on the
 * machine or network moves both sides alike and the devices are what differs:
 * rows are clustered by device. Over different intervals (a baseline from
 * before the wave), the load itself differs: rows are clustered by two-minute blocks, so
 * its swings show in the variance instead of passing for a regression.
 * At most MAX_CLUSTERS clusters: neighbours are merged beyond that.
 */
// [EF-8.5.1]
export function side(stats: CohortStats, by: 'device' | 'time'): Side {
  const key = (p: CohortPart) =>
    by === 'device' ? p.deviceId : String(Math.floor(p.ts / TIME_BLOCK_MS)).padStart(16, '0')
  const groups = new Map<string, CohortPart[]>()
  for (const p of stats.parts) {
    const group = groups.get(key(p))
    if (group) group.push(p)
    else groups.set(key(p), [p])
  }
  const units = [...groups.keys()].sort().map((k) => merge(groups.get(k) ?? []))
  const size = Math.max(1, Math.ceil(units.length / MAX_CLUSTERS))
  const clusters: CohortPart[] = []
  for (let i = 0; i < units.length; i += size) clusters.push(merge(units.slice(i, i + size)))
  return { ...stats, clusters }
}

function merge(rows: readonly CohortPart[]): CohortPart {
  const out: CohortPart = {
    deviceId: rows[0]?.deviceId ?? '',
    ts: rows[0]?.ts ?? 0,
    requests: 0,
    errors: 0,
    latency: [],
    confidence: [],
  }
  for (const r of rows) {
    out.requests += r.requests
    out.errors += r.errors
    out.latency = out.latency.length ? addCounts(out.latency, r.latency) : [...r.latency]
    out.confidence = out.confidence.length ? addCounts(out.confidence, r.confidence) : [...r.confidence]
  }
  return out
}

const sum = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0)

/** A test's outcome [EF-8.5.2]: estimate, interval and evidence at α for mixture scale tau. */
function sequential(estimate: number, variance: number, tau: number, alpha: number) {
  const half = msprtHalfWidth(variance, tau, alpha)
  return {
    estimate,
    interval: [estimate - half, estimate + half] as [number, number],
    evidence: msprtLogEvidence(estimate, variance, tau),
    worse: estimate - half > 0,
  }
}

/** A side's variance of a statistic: what independent requests would give (floor) and the cluster bootstrap's. */
interface Spread {
  floor: number
  boot: number | null
}

/**
 * Variance of cohort minus baseline. Under "no worse" the clusters of both
 * sides come from one population, so the baseline's clusters (usually many)
 * also bound the cohort's (pooled, scaled by the cluster counts): a wave of
 * four devices cannot show by itself how much devices differ.
 */
function difference(c: Side, cs: Spread, b: Side, bs: Spread | null): number {
  const pooled = bs?.boot != null && c.clusters.length > 0 ? (bs.boot * b.clusters.length) / c.clusters.length : 0
  const vc = Math.max(cs.floor, cs.boot ?? 0, pooled)
  const vb = bs ? Math.max(bs.floor, bs.boot ?? 0) : 0
  return vc + vb
}

/** Variance of a rate: bootstrap over clusters, at least the binomial one (Jeffreys-smoothed, so 0 errors is not certainty). */
function rateVariance(s: Side, random: () => number): Spread {
  const smoothed = (s.errors + 0.5) / (s.requests + 1)
  const binomial = (smoothed * (1 - smoothed)) / Math.max(1, s.requests)
  const boot = bootstrapVariance(
    s.clusters,
    (xs) => rate(sum(xs.map((x) => x.errors)), sum(xs.map((x) => x.requests))),
    random,
  )
  return { floor: binomial, boot }
}

const rate = (errors: number, requests: number) => (requests > 0 ? errors / requests : null)

export interface CheckContext {
  alpha: number
  minRequests: number
  random: () => number
}

/** Error rate: cohort minus baseline, material at half of maxErrorRateDelta. */
export function errorRateCheck(
  candidate: Side,
  baseline: Side,
  delta: number | null,
  context: CheckContext,
): GateCheck {
  const gate = 'maxErrorRateDelta'
  const base = { gate, value: rate(candidate.errors, candidate.requests), threshold: delta, alpha: context.alpha }
  if (delta === null) return { ...base, ...none, status: 'off', reason: 'off' }
  if (candidate.requests < context.minRequests) return notEnough(base, candidate.requests, context.minRequests)
  const pc = candidate.errors / candidate.requests
  // Without baseline traffic the cohort is held to an error rate of 0 plus the delta.
  const pb = baseline.requests > 0 ? baseline.errors / baseline.requests : 0
  const variance = difference(
    candidate,
    rateVariance(candidate, context.random),
    baseline,
    baseline.requests > 0 ? rateVariance(baseline, context.random) : null,
  )
  const t = sequential(pc - pb, variance, Math.max(delta, 0.005), context.alpha)
  const fail = t.worse && t.estimate >= delta / 2
  const reason =
    `error rate ${pct(pc)} vs baseline ${pct(pb)} (${signed(t.estimate * 100)} points, ` +
    `${level(context.alpha)} interval ${signed(t.interval[0] * 100)}..${signed(t.interval[1] * 100)}) ` +
    `over ${candidate.requests} vs ${baseline.requests} requests; fails when surely worse by ≥ ${pct(delta / 2)}`
  return { ...base, ...t, status: fail ? 'fail' : 'pass', reason }
}

/** Log of the p95 (each at least floorMs), null without requests. */
function logP95(latency: readonly number[], floorMs: number, q = 0.95): number | null {
  const p = histogramQuantile(latency, q)
  return p === null ? null : Math.log(Math.max(p, floorMs, 1e-3))
}

/** Variance of log p95: bootstrap, at least the spread of the quantiles one binomial standard error around it. */
function p95Variance(s: Side, floorMs: number, random: () => number): Spread {
  const se = Math.sqrt((0.95 * 0.05) / Math.max(1, s.requests))
  const lo = logP95(s.latency, floorMs, Math.max(0.5, 0.95 - se)) ?? 0
  const hi = logP95(s.latency, floorMs, Math.min(0.9999, 0.95 + se)) ?? 0
  const order = ((hi - lo) / 2) ** 2
  const boot = bootstrapVariance(s.clusters, (xs) => logP95(merge(xs).latency, floorMs), random)
  return { floor: order, boot }
}

/** p95 latency: log ratio cohort / baseline, material at the square root of maxP95Ratio. */
export function p95Check(
  candidate: Side,
  baseline: Side,
  maxRatio: number | null,
  floorMs: number,
  context: CheckContext,
): GateCheck {
  const gate = 'maxP95Ratio'
  const lc = logP95(candidate.latency, floorMs)
  const lb = logP95(baseline.latency, floorMs)
  const base = {
    gate,
    value: lc !== null && lb !== null ? Math.exp(lc - lb) : null,
    threshold: maxRatio,
    alpha: context.alpha,
  }
  if (maxRatio === null) return { ...base, ...none, status: 'off', reason: 'off' }
  if (candidate.requests < context.minRequests || baseline.requests < context.minRequests || lc === null || lb === null)
    return notEnough(base, Math.min(candidate.requests, baseline.requests), context.minRequests)
  const tau = Math.max(Math.log(maxRatio), 0.05)
  const variance = difference(
    candidate,
    p95Variance(candidate, floorMs, context.random),
    baseline,
    p95Variance(baseline, floorMs, context.random),
  )
  const t = sequential(lc - lb, variance, tau, context.alpha)
  const fail = t.worse && t.estimate >= tau / 2
  const reason =
    `p95 ${ms(Math.exp(lc))} vs baseline ${ms(Math.exp(lb))} (ratio ${fix(Math.exp(t.estimate))}, ` +
    `${level(context.alpha)} interval ${fix(Math.exp(t.interval[0]))}..${fix(Math.exp(t.interval[1]))}) ` +
    `over ${candidate.requests} vs ${baseline.requests} requests; fails when surely slower by ≥ ×${fix(Math.exp(tau / 2))}`
  return { ...base, ...t, status: fail ? 'fail' : 'pass', reason }
}

/** Mean of binned confidences (bin centres of CONFIDENCE_BUCKETS), null without counts. */
export function meanConfidence(bins: readonly number[] | null): number | null {
  if (!bins) return null
  const n = sum(bins)
  if (n === 0) return null
  return (
    sum(bins.map((count, i) => (count * ((i > 0 ? CONFIDENCE_BUCKETS[i - 1] : 0) + CONFIDENCE_BUCKETS[i])) / 2)) / n
  )
}

/** Variance of the mean confidence: bootstrap, at least the binned variance / n plus the bins' rounding. */
function meanVariance(sideStats: Side, random: () => number): Spread {
  const total = sum(sideStats.confidence)
  const mean = meanConfidence(sideStats.confidence) ?? 0
  const spread =
    sum(
      sideStats.confidence.map(
        (count, i) => count * (((i > 0 ? CONFIDENCE_BUCKETS[i - 1] : 0) + CONFIDENCE_BUCKETS[i]) / 2 - mean) ** 2,
      ),
    ) / Math.max(1, total)
  const boot = bootstrapVariance(sideStats.clusters, (xs) => meanConfidence(merge(xs).confidence), random)
  return { floor: (spread + CONFIDENCE_BIN ** 2 / 12) / Math.max(1, total), boot }
}

/** Output confidence: fails when the cohort is surely less confident and the PSI is above maxConfidencePsi. */
export function confidenceCheck(
  candidate: Side,
  baseline: Side,
  maxPsi: number | null,
  context: CheckContext,
): GateCheck {
  const gate = 'maxConfidencePsi'
  const distance = psi(baseline.confidence, candidate.confidence)
  const base = { gate, value: distance, threshold: maxPsi, alpha: context.alpha }
  if (maxPsi === null) return { ...base, ...none, status: 'off', reason: 'off' }
  const nc = sum(candidate.confidence)
  const nb = sum(baseline.confidence)
  const mc = meanConfidence(candidate.confidence)
  const mb = meanConfidence(baseline.confidence)
  if (nc < context.minRequests || nb < context.minRequests || mc === null || mb === null || distance === null)
    return notEnough(base, Math.min(nc, nb), context.minRequests)
  // One-sided: a version that answers with *more* confidence (a retrained one, usually) is not held back.
  const variance = difference(
    candidate,
    meanVariance(candidate, context.random),
    baseline,
    meanVariance(baseline, context.random),
  )
  const t = sequential(mb - mc, variance, CONFIDENCE_BIN, context.alpha)
  const fail = t.worse && distance > maxPsi
  const reason =
    `mean confidence ${fix(mc)} vs baseline ${fix(mb)} (${level(context.alpha)} interval of the drop ` +
    `${fix(t.interval[0])}..${fix(t.interval[1])}), PSI ${fix(distance)} over ${nc} vs ${nb} answers; ` +
    `fails when surely lower and PSI > ${fix(maxPsi)}`
  return { ...base, ...t, status: fail ? 'fail' : 'pass', reason }
}

/** Shadow agreement against the absolute minimum: fails when surely below it. */
export function shadowCheck(shadow: ShadowStats, min: number | null, context: CheckContext): GateCheck {
  const gate = 'minShadowAgreement'
  const base = { gate, value: shadow.runs ? shadow.agree / shadow.runs : null, threshold: min, alpha: context.alpha }
  if (min === null) return { ...base, ...none, status: 'off', reason: 'off' }
  const need = Math.max(1, context.minRequests)
  if (shadow.runs < need) return notEnough(base, shadow.runs, need)
  const smoothed = (shadow.agree + 0.5) / (shadow.runs + 1)
  const t = sequential(min - shadow.agree / shadow.runs, (smoothed * (1 - smoothed)) / shadow.runs, 0.1, context.alpha)
  const reason =
    `agreement ${pct(shadow.agree / shadow.runs)} over ${shadow.runs} shadow runs (${level(context.alpha)} interval ` +
    `${pct(min - t.interval[1])}..${pct(min - t.interval[0])}); fails when surely below ${pct(min)}`
  return { ...base, ...t, status: t.worse ? 'fail' : 'pass', reason }
}

const none = { estimate: null, interval: null, evidence: null }

/** Below the minimum sample a gate neither fails nor passes [EF-8.5.3]. */
function notEnough(
  base: Omit<GateCheck, 'status' | 'reason' | 'estimate' | 'interval' | 'evidence'>,
  n: number,
  need: number,
): GateCheck {
  return { ...base, ...none, status: 'not enough data', reason: `not enough data: ${n} of ${need} requests` }
}

/** A reproducible seed from the counts judged: the same telemetry gives the same bootstrap. */
export function seedFor(...parts: number[]): () => number {
  let h = 2166136261
  for (const p of parts) h = Math.imul(h ^ (p >>> 0), 16777619)
  return seededRandom(h)
}

const pct = (x: number) => `${(x * 100).toFixed(2)}%`
const signed = (x: number) => `${x >= 0 ? '+' : ''}${x.toFixed(2)}`
const fix = (x: number) => x.toFixed(3)
const ms = (x: number) => `${x.toFixed(1)} ms`
const level = (alpha: number) => `${((1 - alpha) * 100).toFixed(2)}%`
