#!/usr/bin/env node
// Health-gate benchmark (issue 16.1): false pauses of a good version (A/A) and
// detection of a broken one (A/B) by the hub's real gate module
// (hub/dist/rollouts/gates.js `judge`, the same call the soak phase makes).
//
// The telemetry is SYNTHETIC, drawn from distributions meant to look like a
// loaded fleet, and shaped exactly as the hub stores it (one row per device
// and 5 s telemetry window: requests, errors, latency histogram, confidence
// bins):
//   - 40 devices of one profile; per-device speed factor lognormal σ 0.15,
//     request rate uniform 0.5-3 req/s, modulated ±50 % over time;
//   - latency lognormal (median 12 ms × device × load, σ 0.4), 1 % stalls
//     ×3-8; machine load shared by every device (AR(1) on log scale, σ 0.35,
//     φ 0.9 per window) plus per-device load (σ 0.2), and a 60 s ×2.5 spike
//     on the whole machine with probability 0.5 % per window;
//   - errors: per-device rate Beta(1, 199) (mean 0.5 %) plus bursts (1 % of
//     device windows fail 10 % of their requests);
//   - confidence: Beta(8, 2) per answer shifted by a per-device offset of
//     ±0.03 (different inputs per site), in the ten EF-2.6.4 bins.
// A rollout: waves 10 %, 50 %, 100 %, 10 min soak each, gates evaluated every
// 10 s as the engine does (cohort = the wave's devices on the candidate since
// the wave started; baseline = the other devices on the old version over the
// same interval, or the cohort's own previous hour in the last wave).
// A/A: the candidate is the same version. A/B: a broken head — latency ×1.5,
// error rate +2 points, outputs shifted (confidence Beta(7, 2.6)) — also each
// defect alone. Reported beside the gates as they were before issue 16 (raw
// thresholds on the same values) for comparison.
// Usage: node test/bench/gates.mjs [--rollouts 200] [--devices 40] [--seed 1]   (after `pnpm build`)
import { parseArgs } from 'node:util'
import {
  CONFIDENCE_BUCKETS,
  LATENCY_BUCKETS_MS,
  emptyConfidenceCounts,
  emptyLatencyCounts,
} from '../../shared/dist/index.js'
import { judge } from '../../hub/dist/rollouts/gates.js'
import { mulberry32 } from '../support/prng.mjs'
import { defaultGates } from '../../hub/dist/rollouts/spec.js'

const { values: o } = parseArgs({
  options: {
    rollouts: { type: 'string' },
    devices: { type: 'string' },
    seed: { type: 'string' },
    only: { type: 'string' },
  },
})
const ROLLOUTS = Number(o.rollouts ?? 200)
const DEVICES = Number(o.devices ?? 40)
const SEED = Number(o.seed ?? 1)
const WINDOW_MS = 5_000
const TICK_MS = 10_000
const SOAK_MS = 10 * 60_000
const HISTORY_MS = 60 * 60_000
const WAVES = [0.1, 0.5, 1]
const gates = { ...defaultGates }

// --- randomness -------------------------------------------------------------
function rng(seed) {
  const next = mulberry32(seed)
  const normal = () => Math.sqrt(-2 * Math.log(next() + 1e-12)) * Math.cos(2 * Math.PI * next())
  const gamma = (k) => {
    // Marsaglia-Tsang (k ≥ 1; boosted below 1)
    if (k < 1) return gamma(k + 1) * next() ** (1 / k)
    const d = k - 1 / 3
    const c = 1 / Math.sqrt(9 * d)
    for (;;) {
      const x = normal()
      const v = (1 + c * x) ** 3
      if (v > 0 && Math.log(next()) < 0.5 * x * x + d - d * v + d * Math.log(v)) return d * v
    }
  }
  const beta = (a2, b2) => {
    const x = gamma(a2)
    return x / (x + gamma(b2))
  }
  const poisson = (lambda) => {
    let k = 0
    let p = Math.exp(-lambda)
    let s = p
    const u = next()
    while (u > s) {
      k++
      p *= lambda / k
      s += p
    }
    return k
  }
  return { next, normal, beta, poisson }
}

const latencyBin = (ms) => {
  for (let i = 0; i < LATENCY_BUCKETS_MS.length; i++) if (ms <= LATENCY_BUCKETS_MS[i]) return i
  return LATENCY_BUCKETS_MS.length
}
const confidenceBin = (c) => Math.min(CONFIDENCE_BUCKETS.length - 1, Math.floor(c * 10))

// --- one fleet's telemetry ---------------------------------------------------
/** Version behaviour: `good` or the broken head (`defects`: latency, errors, outputs). */
function behaviour(broken, defects) {
  if (!broken) return { latency: 1, extraErrors: 0, conf: [8, 2] }
  return {
    latency: defects.includes('latency') ? 1.5 : 1,
    extraErrors: defects.includes('errors') ? 0.02 : 0,
    conf: defects.includes('outputs') ? [7, 2.6] : [8, 2],
  }
}

function makeFleet(r) {
  return Array.from({ length: DEVICES }, (_, i) => ({
    id: `d${String(i).padStart(3, '0')}`,
    speed: Math.exp(0.15 * r.normal()),
    rate: 0.5 + 2.5 * r.next(),
    errorRate: r.beta(1, 199),
    confOffset: 0.03 * (2 * r.next() - 1),
    load: 0,
    rows: [],
  }))
}

/** Cumulative bin probabilities of a device's confidences on a version (Beta + offset, 4,000 draws, cached). */
function confidenceTable(r, d, v) {
  d.tables ??= {}
  if (d.tables[v.name]) return d.tables[v.name]
  const counts = new Array(CONFIDENCE_BUCKETS.length).fill(0)
  for (let k = 0; k < 4000; k++)
    counts[confidenceBin(Math.min(0.999, Math.max(0, r.beta(v.b.conf[0], v.b.conf[1]) + d.confOffset)))]++
  let acc = 0
  d.tables[v.name] = counts.map((c) => (acc += c / 4000))
  return d.tables[v.name]
}

const pickBin = (cdf, u) => {
  for (let i = 0; i < cdf.length; i++) if (u < cdf[i]) return i
  return cdf.length - 1
}

/** One window of every device at time t (ms): appends a telemetry row per device. */
function stepWindow(r, fleet, machine, t, versionOf) {
  machine.load = 0.9 * machine.load + Math.sqrt(1 - 0.81) * 0.35 * r.normal()
  if (machine.spikeLeft > 0) machine.spikeLeft--
  else if (r.next() < 0.005) machine.spikeLeft = 12
  const shared = Math.exp(machine.load) * (machine.spikeLeft > 0 ? 2.5 : 1)
  const traffic = 1 + 0.5 * Math.sin((2 * Math.PI * t) / (45 * 60_000))
  for (const d of fleet) {
    d.load = 0.9 * d.load + Math.sqrt(1 - 0.81) * 0.2 * r.normal()
    const v = versionOf(d)
    const n = r.poisson((d.rate * traffic * WINDOW_MS) / 1000)
    const burst = r.next() < 0.01 ? 0.1 : 0
    const latency = emptyLatencyCounts()
    const confidence = emptyConfidenceCounts()
    let errors = 0
    for (let k = 0; k < n; k++) {
      if (r.next() < d.errorRate + burst + v.b.extraErrors) errors++
      let ms = 12 * d.speed * shared * Math.exp(d.load) * v.b.latency * Math.exp(0.4 * r.normal())
      if (r.next() < 0.01) ms *= 3 + 5 * r.next()
      latency[latencyBin(ms)]++
      confidence[pickBin(confidenceTable(r, d, v), r.next())]++
    }
    d.rows.push({ t, version: v.name, part: { deviceId: d.id, ts: t, requests: n, errors, latency, confidence } })
  }
}

/** Merged stats of rows matching (device, version, (from, to]), as RolloutTelemetry.cohort returns them. */
function cohortOf(devices, version, from, to) {
  const out = {
    devices: 0,
    requests: 0,
    errors: 0,
    latency: emptyLatencyCounts(),
    confidence: emptyConfidenceCounts(),
    parts: [],
  }
  for (const d of devices) {
    let seen = false
    // Rows are in time order: start at the first one after `from`.
    let lo = 0
    let hi = d.rows.length
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if (d.rows[mid].t <= from) lo = mid + 1
      else hi = mid
    }
    for (let j = lo; j < d.rows.length && d.rows[j].t <= to; j++) {
      const row = d.rows[j]
      if (row.version !== version) continue
      seen = true
      out.parts.push(row.part)
      out.requests += row.part.requests
      out.errors += row.part.errors
      row.part.latency.forEach((c, i) => (out.latency[i] += c))
      row.part.confidence.forEach((c, i) => (out.confidence[i] += c))
    }
    if (seen) out.devices++
  }
  return out
}

/** The gates as they were before issue 16: raw thresholds on the same values, no uncertainty. */
function legacyFails(v) {
  if (v.cohortRequests < gates.minRequests) return false
  if (v.errorRate !== null && v.errorRate > (v.baselineErrorRate ?? 0) + gates.maxErrorRateDelta) return true
  if (v.p95Ratio !== null && v.p95Ratio > gates.maxP95Ratio) return true
  return v.confidencePsi !== null && v.confidencePsi > gates.maxConfidencePsi && (v.confidenceShift ?? -1) < 0
}

/**
 * One rollout of `candidate` over a fresh fleet; returns where the gates
 * (and the legacy ones) first failed, or null when it completed.
 */
function rollout(seed, candidate) {
  const r = rng(seed)
  const fleet = makeFleet(r)
  const machine = { load: 0, spikeLeft: 0 }
  const old = { name: '1.0.0', b: behaviour(false, []) }
  const cand = { name: '2.0.0', b: candidate }
  const onCandidate = new Set()
  const versionOf = (d) => (onCandidate.has(d.id) ? cand : old)
  let t = -HISTORY_MS
  for (; t < 0; t += WINDOW_MS) stepWindow(r, fleet, machine, t + WINDOW_MS, versionOf)
  const result = { failed: null, legacy: null }
  let enrolled = 0
  for (let w = 0; w < WAVES.length; w++) {
    const upTo = Math.round(WAVES[w] * DEVICES)
    const wave = fleet.slice(enrolled, Math.max(upTo, enrolled + 1))
    enrolled += wave.length
    for (const d of wave) onCandidate.add(d.id)
    const start = t
    const others = fleet.filter((d) => !onCandidate.has(d.id))
    for (; t < start + SOAK_MS;) {
      for (let k = 0; k < TICK_MS / WINDOW_MS; k++, t += WINDOW_MS)
        stepWindow(r, fleet, machine, t + WINDOW_MS, versionOf)
      const cohort = cohortOf(wave, '2.0.0', start, t)
      let baseline = cohortOf(others, '1.0.0', start, t)
      const concurrent = baseline.requests > 0
      if (!concurrent) baseline = cohortOf(wave, '1.0.0', start - gates.baselineMs, start)
      const v = judge(
        { traffic: { cohort, baseline, concurrent }, shadow: { runs: 0, agree: 0 }, failedDevices: 0 },
        gates,
        {
          needRequests: true,
          waves: WAVES.length,
        },
      )
      const at = { wave: w, requests: cohort.requests, ms: t - start }
      if (!result.legacy && legacyFails(v.values)) result.legacy = at
      if (v.verdict === 'fail' && !result.failed) result.failed = { ...at, gates: v.failed.map((f) => f.gate) }
      if (result.failed && result.legacy) return result
    }
    // Trim rows older than the look-back to keep memory flat.
    for (const d of fleet) d.rows = d.rows.filter((row) => row.t > t - HISTORY_MS - SOAK_MS)
  }
  return result
}

const quantile = (xs, q) => {
  if (!xs.length) return null
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]
}

function scenario(name, candidate, seedBase) {
  const started = Date.now()
  let paused = 0
  let pausedFirstWave = 0
  let legacyPaused = 0
  let legacyFirstWave = 0
  const requests = []
  const byGate = {}
  const byWave = {}
  for (let i = 0; i < ROLLOUTS; i++) {
    const res = rollout(seedBase + i * 7919, candidate)
    if (res.failed) {
      paused++
      if (res.failed.wave === 0) {
        pausedFirstWave++
        requests.push(res.failed.requests)
      }
      for (const g of res.failed.gates) byGate[g] = (byGate[g] ?? 0) + 1
      byWave[res.failed.wave] = (byWave[res.failed.wave] ?? 0) + 1
    }
    if (res.legacy) {
      legacyPaused++
      if (res.legacy.wave === 0) legacyFirstWave++
    }
  }
  const pctOf = (n) => `${((100 * n) / ROLLOUTS).toFixed(1)} %`
  const line = {
    scenario: name,
    rollouts: ROLLOUTS,
    paused: pctOf(paused),
    pausedInFirstWave: pctOf(pausedFirstWave),
    requestsToDetect: requests.length
      ? { min: Math.min(...requests), median: quantile(requests, 0.5), max: Math.max(...requests) }
      : null,
    failedGates: byGate,
    pausedByWave: byWave,
    legacyPaused: pctOf(legacyPaused),
    legacyPausedInFirstWave: pctOf(legacyFirstWave),
    seconds: Math.round((Date.now() - started) / 100) / 10,
  }
  console.log(JSON.stringify(line))
  return line
}

const SCENARIOS = [
  ['A/A (same version)', behaviour(false, [])],
  ['A/B broken head (latency ×1.5, errors +2 pts, outputs shifted)', behaviour(true, ['latency', 'errors', 'outputs'])],
  ['A/B latency ×1.5 only', behaviour(true, ['latency'])],
  ['A/B errors +2 pts only', behaviour(true, ['errors'])],
  ['A/B outputs shifted only', behaviour(true, ['outputs'])],
]
console.log(
  JSON.stringify({
    devices: DEVICES,
    waves: WAVES,
    soakMs: SOAK_MS,
    tickMs: TICK_MS,
    seed: SEED,
    confidence: gates.confidence,
  }),
)
for (const [i, [name, b]] of SCENARIOS.entries()) {
  if (o.only && !name.startsWith(o.only)) continue
  scenario(name, b, SEED * 1_000_003 + i * 104_729)
}
