// The hub's statistics over fixed-bin histograms, one definition for the
// rollout gates, drift detection, the telemetry summary and the console:
// population stability index [EF-2.6.5], latency quantiles [EF-2.6.2] and
// bin-wise sums. Pure functions over count arrays; no I/O.
import { LATENCY_BUCKETS_MS } from '@edgefleet/shared'

/** Upper bound (ms) of the last finite latency bucket; slower requests land in the open-ended one. */
const LAST_LATENCY_BOUND_MS = LATENCY_BUCKETS_MS[LATENCY_BUCKETS_MS.length - 1]

/** Adds `from` into `into` bin by bin (in place); bins missing from `from` count 0. */
export function addCounts(into: number[], from: readonly number[]): number[] {
  for (let i = 0; i < into.length; i++) into[i] += from[i] ?? 0
  return into
}

/**
 * Population stability index between two binned distributions (counts); bins
 * empty on one side get a small floor so the index stays finite [EF-2.6.5].
 */
export function psi(expected: readonly number[], actual: readonly number[], floor = 1e-4): number | null {
  const te = expected.reduce((a, b) => a + b, 0)
  const ta = actual.reduce((a, b) => a + b, 0)
  if (te === 0 || ta === 0) return null
  let sum = 0
  for (let i = 0; i < expected.length; i++) {
    const e = Math.max(floor, expected[i] / te)
    const a = Math.max(floor, (actual[i] ?? 0) / ta)
    sum += (a - e) * Math.log(a / e)
  }
  return sum
}

/**
 * Quantile from merged latency bucket counts, interpolated linearly inside the
 * bucket holding the q-th request; null without requests. A rank in the
 * open-ended bucket reads LAST_LATENCY_BOUND_MS, a lower bound of the true
 * value (always finite, so JSON answers and ratios stay defined); callers say
 * how many requests were beyond it with `overflowCount` [EF-2.6.2].
 */
export function histogramQuantile(counts: readonly number[], q: number): number | null {
  const total = counts.reduce((a, b) => a + b, 0)
  if (total === 0) return null
  const rank = Math.max(1, Math.ceil(q * total))
  let seen = 0
  for (let i = 0; i < counts.length; i++) {
    seen += counts[i]
    if (seen >= rank) {
      if (i >= LATENCY_BUCKETS_MS.length) return LAST_LATENCY_BOUND_MS
      // Interpolate linearly inside the bucket: better than its bound for coarse buckets.
      const lo = i === 0 ? 0 : LATENCY_BUCKETS_MS[i - 1]
      const hi = LATENCY_BUCKETS_MS[i]
      const before = seen - counts[i]
      return lo + ((hi - lo) * (rank - before)) / counts[i]
    }
  }
  return null
}

/** Requests in the open-ended latency bucket (slower than LAST_LATENCY_BOUND_MS). */
export function overflowCount(counts: readonly number[]): number {
  return counts[LATENCY_BUCKETS_MS.length] ?? 0
}

/**
 * Log evidence of the mixture sequential probability ratio test (mSPRT) for
 * H0: θ = 0, given an estimate θ̂ ~ N(θ, variance) and a normal mixture of
 * scale `tau` over the alternatives (Johari, Pekelis, Walsh: "Always valid
 * inference", 2017). Under H0 the chance that it *ever* reaches log(1/α),
 * however often it is looked at, is at most α: the gates evaluate on every
 * tick, so a fixed-sample test would cry wolf on repeated looks.
 */
export function msprtLogEvidence(estimate: number, variance: number, tau: number): number {
  const v = Math.max(variance, MIN_VARIANCE)
  const t2 = tau * tau
  return 0.5 * Math.log(v / (v + t2)) + (estimate * estimate * t2) / (2 * v * (v + t2))
}

/**
 * Half-width of the always-valid confidence interval that goes with
 * msprtLogEvidence at level α: θ̂ ± this holds θ with probability ≥ 1 − α at
 * every look at once (the set of θ0 the test would not reject).
 */
export function msprtHalfWidth(variance: number, tau: number, alpha: number): number {
  const v = Math.max(variance, MIN_VARIANCE)
  const t2 = tau * tau
  return Math.sqrt(((2 * v * (v + t2)) / t2) * (Math.log(1 / alpha) + 0.5 * Math.log((v + t2) / v)))
}

/** Variances below this are rounding, not certainty. */
const MIN_VARIANCE = 1e-12

/** Deterministic PRNG (mulberry32): the same telemetry always gives the same gate decision. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/**
 * Bootstrap variance of `statistic` over clusters (resampled with
 * replacement, `rounds` times): telemetry rows of one device and window are
 * not independent requests, so the cluster is the unit that is resampled.
 * Replicates where the statistic is undefined (null) are skipped; null when
 * fewer than two clusters or defined replicates.
 */
export function bootstrapVariance<T>(
  clusters: readonly T[],
  statistic: (sample: readonly T[]) => number | null,
  random: () => number,
  rounds = 100,
): number | null {
  if (clusters.length < 2) return null
  const values: number[] = []
  const sample: T[] = new Array<T>(clusters.length)
  for (let round = 0; round < rounds; round++) {
    for (let i = 0; i < clusters.length; i++) sample[i] = clusters[Math.floor(random() * clusters.length)]
    const value = statistic(sample)
    if (value !== null && Number.isFinite(value)) values.push(value)
  }
  if (values.length < 2) return null
  const mean = values.reduce((a, b) => a + b, 0) / values.length
  return values.reduce((a, b) => a + (b - mean) ** 2, 0) / (values.length - 1)
}
