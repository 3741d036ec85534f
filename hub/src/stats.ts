// The hub's statistics over fixed-bin histograms, one definition for the
// rollout gates, drift detection, the telemetry summary and the console:
// population stability index [EF-2.6.5], latency quantiles [EF-2.6.2] and
// bin-wise sums. Pure functions over count arrays; no I/O.
import { LATENCY_BUCKETS_MS } from '@edgefleet/shared'

/** Upper bound (ms) of the last finite latency bucket; slower requests land in the open-ended one. */
export const LAST_LATENCY_BOUND_MS = LATENCY_BUCKETS_MS[LATENCY_BUCKETS_MS.length - 1]

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
