// Which telemetry a wave's health gates compare [EF-8.5, EF-8.5.5]: the
// cohort (the wave's devices on the new version since the wave started)
// against a baseline over the same interval, and the same two groups over an
// interval before the wave, so that each gate can take the cohort's change
// minus the baseline's. Kept apart from the store so the gate benchmark
// (test/bench/support/gate-sim.mjs) assembles its traffic with this same code.
import type { CohortStats } from '../store/index.js'
import type { Traffic } from './gates.js'

/** Telemetry of `versions` on the devices `accept` takes, over (from, to], merged. */
export type TrafficReader = (
  versions: readonly string[],
  accept: (deviceId: string) => boolean,
  from: number,
  to: number,
) => CohortStats

export interface WaveGroups {
  /** The version being rolled out. */
  candidate: string
  /** The versions the wave's devices ran before it. */
  previous: readonly string[]
  /** The wave's activated devices. */
  inCohort: (deviceId: string) => boolean
  /** Devices that may serve as baseline: the cohort's profiles, not in the cohort. */
  comparable: (deviceId: string) => boolean
  /** When the wave started, and now, ms. */
  since: number
  now: number
  /** Look-back for the earlier interval, ms (gates.baselineMs). */
  baselineMs: number
  /** Requests each earlier side needs for a difference in differences (gates.minRequests). */
  minRequests: number
  /**
   * When the last device of an earlier wave activated, ms; null in the first
   * wave. Read only when no comparable device is left on a previous version.
   */
  migratedSince: () => number | null
}

/**
 * The wave's traffic [EF-8.5.5], in order of preference:
 * 1. comparable devices still on a previous version, over the same interval,
 *    with both groups' hour before the wave when each has `minRequests` there;
 * 2. in the last wave (none left on a previous version): the devices migrated
 *    by earlier waves, on the new version over the same interval, with both
 *    groups over the interval since those devices all run it: the migrated
 *    devices ran one version throughout, so their change is what the load did;
 * 3. else the cohort's own traffic on the previous version before the wave
 *    (different intervals: the gates resample by time blocks, EF-8.5.1).
 */
export function waveTrafficOf(read: TrafficReader, groups: WaveGroups): Traffic {
  const cohort = read([groups.candidate], groups.inCohort, groups.since, groups.now)
  const earlierOf = (baselineVersions: readonly string[], from: number) => {
    const earlier = {
      cohort: read(groups.previous, groups.inCohort, from, groups.since),
      baseline: read(baselineVersions, groups.comparable, from, groups.since),
    }
    const enough = earlier.cohort.requests >= groups.minRequests && earlier.baseline.requests >= groups.minRequests
    return enough ? earlier : undefined
  }
  const others = read(groups.previous, groups.comparable, groups.since, groups.now)
  if (others.requests > 0)
    return {
      cohort,
      baseline: others,
      concurrent: true,
      earlier: earlierOf(groups.previous, groups.since - groups.baselineMs),
    }
  const migratedSince = groups.migratedSince()
  if (migratedSince !== null && migratedSince < groups.since) {
    // Candidate against candidate says nothing about the version by itself: only with the earlier interval.
    const earlier = earlierOf([groups.candidate], Math.max(groups.since - groups.baselineMs, migratedSince))
    const migrated = () => read([groups.candidate], groups.comparable, groups.since, groups.now)
    if (earlier) return { cohort, baseline: migrated(), concurrent: true, earlier }
  }
  const before = read(groups.previous, groups.inCohort, groups.since - groups.baselineMs, groups.since)
  return { cohort, baseline: before, concurrent: false }
}
