// The statistics behind each health gate [EF-8.5]: an effect estimate of the
// cohort against the baseline (each side's change since an earlier interval
// when there is one, EF-8.5.5), its variance (cluster bootstrap over telemetry
// rows, never below what independent requests would give), and an
// always-valid sequential test (mSPRT) at the gate's share of the rollout's
// stated confidence. A gate fails only when the test is confident the cohort
// is worse *and* the estimate is material; below its minimum sample it says
// "not enough data" and neither fails nor guesses [EF-8.5.1 – EF-8.5.4].
import { CONFIDENCE_BUCKETS, LATENCY_BUCKETS_MS } from '@edgefleet/shared'
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

/** What a side's statistics are computed from: one interval's merged telemetry. */
type Totals = Pick<CohortPart, 'requests' | 'errors' | 'latency' | 'confidence'>

/** One resampling unit: a device (or time block) now, and the same device over the earlier interval. */
interface Cluster {
  now: CohortPart
  earlier: CohortPart | null
}

/**
 * One side of a comparison: its telemetry over the wave (`now`) and, for a
 * difference in differences [EF-8.5.5], the same devices over the interval
 * before it (`earlier`); the side's effect is then the change between the two.
 */
export interface Side extends Totals {
  earlier: Totals | null
  clusters: Cluster[]
}

/** Length of the time blocks resampled when the two sides were not measured over the same interval, ms. */
const TIME_BLOCK_MS = 120_000

/**
 * What the bootstrap resamples [EF-8.5.1]. Over the same interval, load on the
 * machine or network moves both sides alike and the devices are what differs:
 * rows are clustered by device, a device's earlier rows with its current ones
 * (so what the device itself brings cancels in its change). Over different
 * intervals (a baseline from before the wave), the load itself differs: rows
 * are clustered by two-minute blocks, so its swings show in the variance
 * instead of passing for a regression. At most MAX_CLUSTERS clusters:
 * neighbours are merged beyond that.
 */
// [EF-8.5.1]
export function side(stats: CohortStats, by: 'device' | 'time', earlier: CohortStats | null = null): Side {
  const key = (p: CohortPart) =>
    by === 'device' ? p.deviceId : String(Math.floor(p.ts / TIME_BLOCK_MS)).padStart(16, '0')
  const groups = new Map<string, { now: CohortPart[]; earlier: CohortPart[] }>()
  const add = (p: CohortPart, when: 'now' | 'earlier') => {
    let group = groups.get(key(p))
    if (!group) groups.set(key(p), (group = { now: [], earlier: [] }))
    group[when].push(p)
  }
  for (const p of stats.parts) add(p, 'now')
  for (const p of earlier?.parts ?? []) add(p, 'earlier')
  const units = [...groups.keys()].sort().map((k) => groups.get(k) ?? { now: [], earlier: [] })
  const size = Math.max(1, Math.ceil(units.length / MAX_CLUSTERS))
  const clusters: Cluster[] = []
  for (let i = 0; i < units.length; i += size) {
    const chunk = units.slice(i, i + size)
    clusters.push({
      now: merge(chunk.flatMap((u) => u.now)),
      earlier: earlier ? merge(chunk.flatMap((u) => u.earlier)) : null,
    })
  }
  return { ...stats, earlier, clusters }
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

/**
 * A side's effect under `statistic`: its value now, minus its value over the
 * earlier interval when there is one [EF-8.5.5]; null when either is undefined.
 */
function effect(s: Pick<Side, 'earlier'> & Totals, statistic: (t: Totals) => number | null): number | null {
  const now = statistic(s)
  if (now === null || !s.earlier) return now
  const before = statistic(s.earlier)
  return before === null ? null : now - before
}

/** The parts of Totals a statistic reads: only those are summed in each bootstrap round (the hot loop). */
type Field = 'counts' | 'latency' | 'confidence'

/**
 * A reusable sum of `field` over the rows `get` picks (the other fields stay
 * 0): one bootstrap round's merge. It runs ~10^5 times per evaluation, so it
 * zeroes and refills one buffer instead of allocating.
 */
function summer<T>(field: Field, get: (x: T) => CohortPart | null): (rows: readonly T[]) => Totals {
  const out: Totals = { requests: 0, errors: 0, latency: [], confidence: [] }
  return (rows) => {
    out.requests = 0
    out.errors = 0
    if (field !== 'counts') out[field].fill(0)
    for (const row of rows) {
      const r = get(row)
      if (!r) continue
      if (field === 'counts') {
        out.requests += r.requests
        out.errors += r.errors
      } else {
        if (out[field].length < r[field].length) out[field] = new Array<number>(r[field].length).fill(0)
        addCounts(out[field], r[field])
      }
    }
    return out
  }
}

/** Bootstrap variance of a side's effect: clusters resampled with their earlier rows. */
function bootEffect(s: Side, statistic: (t: Totals) => number | null, field: Field, random: () => number) {
  const sumNow = summer<Cluster>(field, (x) => x.now)
  const sumEarlier = summer<Cluster>(field, (x) => x.earlier)
  return bootstrapVariance(
    s.clusters,
    (xs) => effect({ ...sumNow(xs), earlier: s.earlier ? sumEarlier(xs) : null }, statistic),
    random,
  )
}

/** A side's floor variance: the independent-requests one of each interval, added. */
function floorOf(s: Side, floor: (t: Totals) => number): number {
  return floor(s) + (s.earlier ? floor(s.earlier) : 0)
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
  const binomial = (t: Totals) => {
    const smoothed = (t.errors + 0.5) / (t.requests + 1)
    return (smoothed * (1 - smoothed)) / Math.max(1, t.requests)
  }
  return { floor: floorOf(s, binomial), boot: bootEffect(s, errorRate, 'counts', random) }
}

const rate = (errors: number, requests: number) => (requests > 0 ? errors / requests : null)
const errorRate = (t: Totals) => rate(t.errors, t.requests)

/** How a check's sides were compared, for its reason sentence [EF-8.5.5]. */
const basis = (s: Side) => (s.earlier ? ' (change since the interval before the wave, each side)' : '')

export interface CheckContext {
  alpha: number
  minRequests: number
  random: () => number
}

/** Error rate: cohort minus baseline (or their changes, EF-8.5.5), material at half of maxErrorRateDelta. */
export function errorRateCheck(
  candidate: Side,
  baseline: Side,
  delta: number | null,
  context: CheckContext,
): GateCheck {
  const gate = 'maxErrorRateDelta'
  const base = { gate, value: errorRate(candidate), threshold: delta, alpha: context.alpha }
  if (delta === null) return { ...base, ...none, status: 'off', reason: 'off' }
  // A difference in differences needs every side it compares; a plain comparison only the cohort.
  const n = candidate.earlier ? fewest(candidate, baseline) : candidate.requests
  if (n < context.minRequests) return notEnough(base, n, context.minRequests)
  const pc = candidate.errors / candidate.requests
  // Without baseline traffic the cohort is held to an error rate of 0 plus the delta.
  const pb = errorRate(baseline) ?? 0
  const variance = difference(
    candidate,
    rateVariance(candidate, context.random),
    baseline,
    baseline.requests > 0 ? rateVariance(baseline, context.random) : null,
  )
  const estimate =
    (effect(candidate, errorRate) ?? pc) - (baseline.requests > 0 ? (effect(baseline, errorRate) ?? pb) : 0)
  const t = sequential(estimate, variance, Math.max(delta, 0.005), context.alpha)
  const fail = t.worse && t.estimate >= delta / 2
  const reason =
    `error rate ${pct(pc)} vs baseline ${pct(pb)} (${signed(t.estimate * 100)} points${basis(candidate)}, ` +
    `${level(context.alpha)} interval ${signed(t.interval[0] * 100)}..${signed(t.interval[1] * 100)}) ` +
    `over ${candidate.requests} vs ${baseline.requests} requests; fails when surely worse by ≥ ${pct(delta / 2)}`
  return { ...base, ...t, status: fail ? 'fail' : 'pass', reason }
}

/** Log of the p95 (each at least floorMs), null without requests. */
function logP95(latency: readonly number[], floorMs: number, q = 0.95): number | null {
  const p = histogramQuantile(latency, q)
  return p === null ? null : Math.log(Math.max(p, floorMs, 1e-3))
}

/** Share of the requests slower than `ms`, the bucket holding it split linearly (histogramQuantile's inverse). */
function slowerShare(latency: readonly number[], ms: number): number | null {
  const total = sum(latency)
  if (total === 0) return null
  let slower = 0
  latency.forEach((count, i) => {
    const lo = i === 0 ? 0 : LATENCY_BUCKETS_MS[i - 1]
    const hi = i < LATENCY_BUCKETS_MS.length ? LATENCY_BUCKETS_MS[i] : Infinity
    if (lo >= ms) slower += count
    else if (hi > ms) slower += Number.isFinite(hi) ? (count * (hi - ms)) / (hi - lo) : count
  })
  return slower / total
}

type Interval = 'now' | 'earlier'
const intervalsOf = (s: Side): Interval[] => (s.earlier ? ['now', 'earlier'] : ['now'])
const totalsOf = (s: Side, i: Interval): Totals | null => (i === 'now' ? s : s.earlier)
const partsOf = (s: Side, i: Interval): CohortPart[] =>
  s.clusters.flatMap((x) => (i === 'now' ? [x.now] : x.earlier ? [x.earlier] : []))

/**
 * Cluster-bootstrap variance of the share of an interval's requests slower
 * than its p95: the rank the p95 sits at. A share is a mean over clusters, so
 * unlike the p95 itself its variance scales with the cluster count.
 */
function rankVariance(s: Side, i: Interval, random: () => number): number | null {
  const t = totalsOf(s, i)
  const p95 = t ? histogramQuantile(t.latency, 0.95) : null
  if (p95 === null) return null
  const sumRows = summer<CohortPart>('latency', (x) => x)
  return bootstrapVariance(partsOf(s, i), (xs) => slowerShare(sumRows(xs).latency, p95), random)
}

/** Ranks either side of 0.95 the log p95 is read at (Woodruff): two standard errors, halved back. */
const WOODRUFF_Z = 2

/**
 * Variance of log p95 from the variance of its rank (Woodruff): the
 * histogram's own quantiles WOODRUFF_Z standard errors either side of 0.95.
 * Where a sparse coarse bucket lies just above the p95, a small change of rank
 * moves the interpolated p95 a lot, and this says so; at least the binomial rank variance.
 */
function woodruff(t: Totals, rank: number, floorMs: number): number {
  const se = Math.sqrt(Math.max(rank, (0.95 * 0.05) / Math.max(1, t.requests)))
  const lo = logP95(t.latency, floorMs, Math.max(0.5, 0.95 - WOODRUFF_Z * se)) ?? 0
  const hi = logP95(t.latency, floorMs, Math.min(0.9999, 0.95 + WOODRUFF_Z * se)) ?? 0
  return ((hi - lo) / (2 * WOODRUFF_Z)) ** 2
}

/**
 * Variance of the log p95 difference (or difference in differences): the
 * effect's cluster bootstrap, at least Woodruff's per interval, where the
 * cohort's rank variance is at least the baseline's scaled to the cohort's
 * cluster count (as for every gate, EF-8.5.1: a few devices cannot show by
 * themselves how much devices differ).
 */
function p95Variance(cohort: Side, baseline: Side, floorMs: number, random: () => number): number {
  let floorCohort = 0
  let floorBaseline = 0
  for (const i of intervalsOf(cohort)) {
    const tc = totalsOf(cohort, i)
    const tb = totalsOf(baseline, i)
    const rankB = tb ? rankVariance(baseline, i, random) : null
    const scale = cohort.clusters.length > 0 ? baseline.clusters.length / cohort.clusters.length : 0
    const pooled = rankB !== null ? rankB * scale : 0
    if (tc) floorCohort += woodruff(tc, Math.max(rankVariance(cohort, i, random) ?? 0, pooled), floorMs)
    if (tb) floorBaseline += woodruff(tb, rankB ?? 0, floorMs)
  }
  const lp95 = (t: Totals) => logP95(t.latency, floorMs)
  const cohortSpread = { floor: floorCohort, boot: bootEffect(cohort, lp95, 'latency', random) }
  return difference(cohort, cohortSpread, baseline, {
    floor: floorBaseline,
    boot: bootEffect(baseline, lp95, 'latency', random),
  })
}

/** Fewest requests on any side a check compares (both intervals in a difference in differences). */
function fewest(candidate: Side, baseline: Side): number {
  return Math.min(
    candidate.requests,
    baseline.requests,
    ...(candidate.earlier ? [candidate.earlier.requests] : []),
    ...(baseline.earlier ? [baseline.earlier.requests] : []),
  )
}

/** p95 latency: log ratio cohort / baseline (or of their changes, EF-8.5.5), material at the square root of maxP95Ratio. */
export function p95Check(
  candidate: Side,
  baseline: Side,
  maxRatio: number | null,
  floorMs: number,
  context: CheckContext,
): GateCheck {
  const gate = 'maxP95Ratio'
  const lp95 = (t: Totals) => logP95(t.latency, floorMs)
  const lc = lp95(candidate)
  const lb = lp95(baseline)
  const estimate = lc !== null && lb !== null ? diff(effect(candidate, lp95), effect(baseline, lp95)) : null
  const base = {
    gate,
    // With an earlier interval: the ratio adjusted for what the baseline's own p95 did meanwhile.
    value: estimate !== null ? Math.exp(estimate) : null,
    threshold: maxRatio,
    alpha: context.alpha,
  }
  if (maxRatio === null) return { ...base, ...none, status: 'off', reason: 'off' }
  const n = fewest(candidate, baseline)
  if (n < context.minRequests || lc === null || lb === null || estimate === null)
    return notEnough(base, n, context.minRequests)
  const tau = Math.max(Math.log(maxRatio), 0.05)
  const variance = p95Variance(candidate, baseline, floorMs, context.random)
  const t = sequential(estimate, variance, tau, context.alpha)
  const fail = t.worse && t.estimate >= tau / 2
  const reason =
    `p95 ${ms(Math.exp(lc))} vs baseline ${ms(Math.exp(lb))} (ratio ${fix(Math.exp(t.estimate))}${basis(candidate)}, ` +
    `${level(context.alpha)} interval ${fix(Math.exp(t.interval[0]))}..${fix(Math.exp(t.interval[1]))}) ` +
    `over ${candidate.requests} vs ${baseline.requests} requests; fails when surely slower by ≥ ×${fix(Math.exp(tau / 2))}`
  return { ...base, ...t, status: fail ? 'fail' : 'pass', reason }
}

const diff = (a: number | null, b: number | null) => (a !== null && b !== null ? a - b : null)

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
  const binned = (t: Totals) => {
    const total = sum(t.confidence)
    const mean = meanConfidence(t.confidence) ?? 0
    const spread =
      sum(
        t.confidence.map(
          (count, i) => count * (((i > 0 ? CONFIDENCE_BUCKETS[i - 1] : 0) + CONFIDENCE_BUCKETS[i]) / 2 - mean) ** 2,
        ),
      ) / Math.max(1, total)
    return (spread + CONFIDENCE_BIN ** 2 / 12) / Math.max(1, total)
  }
  const boot = bootEffect(sideStats, (t) => meanConfidence(t.confidence), 'confidence', random)
  return { floor: floorOf(sideStats, binned), boot }
}

/**
 * Output confidence: fails when the cohort is surely less confident and the
 * PSI is above maxConfidencePsi. The PSI is against the cohort's own earlier
 * answers when there are some (EF-8.5.5: the same devices, the same inputs),
 * else against the baseline's.
 */
export function confidenceCheck(
  candidate: Side,
  baseline: Side,
  maxPsi: number | null,
  context: CheckContext,
): GateCheck {
  const gate = 'maxConfidencePsi'
  const distance = psi(candidate.earlier?.confidence ?? baseline.confidence, candidate.confidence)
  const base = { gate, value: distance, threshold: maxPsi, alpha: context.alpha }
  if (maxPsi === null) return { ...base, ...none, status: 'off', reason: 'off' }
  const mean = (t: Totals) => meanConfidence(t.confidence)
  const count = (t: Totals | null) => (t ? sum(t.confidence) : Infinity)
  const n = Math.min(count(candidate), count(baseline), count(candidate.earlier), count(baseline.earlier))
  const mc = mean(candidate)
  const mb = mean(baseline)
  const drop = diff(effect(baseline, mean), effect(candidate, mean))
  if (n < context.minRequests || mc === null || mb === null || drop === null || distance === null)
    return notEnough(base, n, context.minRequests)
  // One-sided: a version that answers with *more* confidence (a retrained one, usually) is not held back.
  const variance = difference(
    candidate,
    meanVariance(candidate, context.random),
    baseline,
    meanVariance(baseline, context.random),
  )
  const t = sequential(drop, variance, CONFIDENCE_BIN, context.alpha)
  const fail = t.worse && distance > maxPsi
  const reason =
    `mean confidence ${fix(mc)} vs baseline ${fix(mb)} (${level(context.alpha)} interval of the drop${basis(candidate)} ` +
    `${fix(t.interval[0])}..${fix(t.interval[1])}), PSI ${fix(distance)} over ${count(candidate)} vs ${count(baseline)} answers; ` +
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
