// The traffic a wave's gates compare [EF-8.5.5], read from a real store: in
// the last wave (no device left on the previous version) a load step at the
// wave's start used to pass for a regression, because the baseline was the
// cohort's own hour before the wave. Now the devices migrated by earlier waves
// show what the load did over the same intervals, and only the rest counts.
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { LATENCY_BUCKETS_MS, emptyConfidenceCounts, telemetryCodec, type TelemetryBatch } from '@edgefleet/shared'
import { waveTrafficOf, type TrafficReader, type WaveGroups } from '../../src/rollouts/gate-traffic.js'
import { judge } from '../../src/rollouts/gates.js'
import { defaultGates } from '../../src/rollouts/spec.js'
import { seededRandom } from '../../src/stats.js'
import { HubStore, type CohortStats } from '../../src/store/index.js'
import { tempDir } from '../fixtures/hub.js'

const MODEL = 'm'
const WINDOW_MS = 10_000
/** The last wave starts here (ms); the earlier waves' devices were migrated 20 and 10 minutes before. */
const SINCE = 100_000_000
const MIGRATED = ['a0', 'a1', 'a2', 'a3', 'a4', 'a5']
const COHORT = ['c0', 'c1', 'c2', 'c3', 'c4', 'c5']
const opts = { needRequests: true, waves: 3 }

/** A lognormal latency histogram of `requests` around `medianMs` (σ 0.3), drawn with `random`. */
function latencies(requests: number, medianMs: number, random: () => number): number[] {
  const counts = new Array<number>(LATENCY_BUCKETS_MS.length + 1).fill(0)
  for (let i = 0; i < requests; i++) {
    const normal = Math.sqrt(-2 * Math.log(random() + 1e-12)) * Math.cos(2 * Math.PI * random())
    const ms = medianMs * Math.exp(0.3 * normal)
    const bucket = LATENCY_BUCKETS_MS.findIndex((bound) => ms <= bound)
    counts[bucket === -1 ? LATENCY_BUCKETS_MS.length : bucket]++
  }
  return counts
}

/**
 * 70 minutes of telemetry, one batch per device and 10 s window: the machine's
 * load doubles every latency from SINCE on; the candidate multiplies them by
 * `candidateSlowdown`. Devices in MIGRATED ran 2.0.0 from 20 / 10 minutes before SINCE.
 */
function fill(store: HubStore, candidateSlowdown: number, until: number): void {
  const random = seededRandom(42)
  const batches: TelemetryBatch[] = []
  const migratedAt = (id: string) => (MIGRATED.indexOf(id) < 3 ? SINCE - 20 * 60_000 : SINCE - 10 * 60_000)
  for (let to = SINCE - 60 * 60_000 + WINDOW_MS; to <= until; to += WINDOW_MS) {
    const load = to > SINCE ? 2 : 1
    for (const deviceId of [...MIGRATED, ...COHORT]) {
      const onCandidate = COHORT.includes(deviceId) ? to > SINCE : to > migratedAt(deviceId)
      const requests = 30
      const latency = latencies(requests, 8 * load * (onCandidate ? candidateSlowdown : 1), random)
      const confidence = emptyConfidenceCounts()
      confidence[8] = requests
      batches.push({
        v: 1,
        deviceId,
        batchId: `${deviceId}-${to}`,
        from: to - WINDOW_MS,
        to,
        models: [
          {
            model: MODEL,
            version: onCandidate ? '2.0.0' : '1.0.0',
            requests,
            errors: 0,
            latency,
            latencySumMs: requests * 8,
            confidence,
          },
        ],
      })
    }
  }
  // One transaction for the 70 minutes: the rows are what matters, not how they arrived.
  store.telemetry.ingestMany(
    batches.map((b) => telemetryCodec.check(b)),
    [],
    until,
  )
}

describe('wave traffic from the store [EF-8.5.5]', () => {
  const t = tempDir()
  let store: HubStore
  beforeEach(() => {
    store = HubStore.open(join(t.dir, `hub-${Math.random().toString(36).slice(2)}.db`))
  })
  afterEach(() => store.close())

  const read: TrafficReader = (versions, accept, from, to) => {
    const all = versions.map((v) => store.rolloutTelemetry.cohort(MODEL, v, accept, from, to))
    const out: CohortStats = { ...all[0], parts: all.flatMap((s) => s.parts) }
    for (const s of all.slice(1)) {
      out.requests += s.requests
      out.errors += s.errors
      s.latency.forEach((c, i) => (out.latency[i] += c))
      s.confidence.forEach((c, i) => (out.confidence[i] += c))
    }
    return out
  }
  const lastWave = (now: number, migratedSince: number | null): WaveGroups => ({
    candidate: '2.0.0',
    previous: ['1.0.0'],
    inCohort: (id) => COHORT.includes(id),
    comparable: (id) => !COHORT.includes(id),
    since: SINCE,
    now,
    baselineMs: defaultGates.baselineMs,
    minRequests: defaultGates.minRequests,
    migratedSince: () => migratedSince,
  })

  it('last wave, good version, load doubles at the wave start: the old comparison pauses, the new one passes', () => {
    const now = SINCE + 5 * 60_000
    fill(store, 1, now)
    const traffic = waveTrafficOf(read, lastWave(now, SINCE - 10 * 60_000))
    expect(traffic.concurrent).toBe(true)
    expect(traffic.baseline.devices).toBe(MIGRATED.length) // the migrated devices, on the candidate
    expect(traffic.earlier?.cohort.requests).toBe(COHORT.length * 60 * 30) // their 10 shared minutes before
    expect(traffic.earlier?.baseline.requests).toBe(MIGRATED.length * 60 * 30)
    const verdict = judge({ traffic, shadow: { runs: 0, agree: 0 }, failedDevices: 0 }, defaultGates, opts)
    const p95 = verdict.checks.find((c) => c.gate === 'maxP95Ratio')
    expect(p95?.status).toBe('pass')
    expect(p95?.value).toBeGreaterThan(0.8) // load-adjusted ratio near 1
    expect(p95?.value).toBeLessThan(1.25)
    expect(p95?.reason).toMatch(/change since the interval before the wave/)
    expect(verdict.verdict).toBe('pass')

    // What the gates compared before: the cohort against its own hour before the wave.
    const before = read(['1.0.0'], (id) => COHORT.includes(id), SINCE - defaultGates.baselineMs, SINCE)
    const old = judge(
      {
        traffic: { cohort: traffic.cohort, baseline: before, concurrent: false },
        shadow: { runs: 0, agree: 0 },
        failedDevices: 0,
      },
      defaultGates,
      opts,
    )
    expect(old.verdict).toBe('fail')
    expect(old.failed.map((f) => f.gate)).toEqual(['maxP95Ratio'])
  })

  it('last wave, a candidate twice as slow under the same load step: still fails the p95 gate', () => {
    const now = SINCE + 5 * 60_000
    fill(store, 2, now)
    const traffic = waveTrafficOf(read, lastWave(now, SINCE - 10 * 60_000))
    expect(traffic.earlier).toBeDefined()
    const verdict = judge({ traffic, shadow: { runs: 0, agree: 0 }, failedDevices: 0 }, defaultGates, opts)
    expect(verdict.verdict).toBe('fail')
    const p95 = verdict.failed.find((f) => f.gate === 'maxP95Ratio')
    expect(p95?.value).toBeGreaterThan(1.6) // ×2 once the load step is taken out
  })

  it('without an earlier wave to compare (a one-wave rollout) the cohort is held to its own hour before', () => {
    const now = SINCE + 60_000
    fill(store, 1, now)
    const traffic = waveTrafficOf(read, lastWave(now, null))
    expect(traffic.concurrent).toBe(false)
    expect(traffic.earlier).toBeUndefined()
    expect(traffic.baseline.requests).toBeGreaterThan(0)
  })

  it('an earlier interval below minRequests is no difference in differences', () => {
    const now = SINCE + 60_000
    fill(store, 1, now)
    // The previous wave ended 10 s before this one: one window (180 requests a side) below a minimum of 1,000.
    const few = waveTrafficOf(read, { ...lastWave(now, SINCE - WINDOW_MS), minRequests: 1_000 })
    expect(few.earlier).toBeUndefined()
    expect(few.concurrent).toBe(false)
  })
})
