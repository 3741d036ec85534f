// Simulated rollouts for the health-gate benchmark (test/bench/gates.mjs) and
// its guard test (hub/test/rollouts/gates-aa.test.ts): seeded synthetic
// telemetry, shaped as the hub stores it, judged by the hub's real gate
// module and assembled by the hub's real traffic code (`judge` and
// `waveTrafficOf` are passed in: hub/dist from the benchmark, hub/src from the
// test). The telemetry model is described in gates.mjs's header.
//
// Speed: the gates cluster a side's telemetry rows by device (same interval)
// or by 2-minute block (baseline from before the wave) and sum each cluster
// [EF-8.5.1]. Rows of one device in one block always land in the same
// cluster, so they are summed here as they arrive (`compact`, the default):
// the gate code sees ~24x fewer parts, the same clusters and the same sums,
// and decides identically (the guard test compares both paths tick by tick).
// Re-reading every row at every tick made a 200-rollout run take hours.
import {
  CONFIDENCE_BUCKETS,
  LATENCY_BUCKETS_MS,
  emptyConfidenceCounts,
  emptyLatencyCounts,
} from '../../../shared/dist/index.js'
import { mulberry32 } from '../../support/prng.mjs'

const WINDOW_MS = 5_000
const TICK_MS = 10_000
const SOAK_MS = 10 * 60_000
const HISTORY_MS = 60 * 60_000
/** gate-evidence.ts's TIME_BLOCK_MS: parts are never summed across these blocks. */
const BLOCK_MS = 120_000
const WAVES = [0.1, 0.5, 1]
export const SIMULATION = { windowMs: WINDOW_MS, tickMs: TICK_MS, soakMs: SOAK_MS, waves: WAVES }

/** Seeded draws: uniform, normal, beta, Poisson. */
function randomSource(seed) {
  const next = mulberry32(seed)
  const normal = () => Math.sqrt(-2 * Math.log(next() + 1e-12)) * Math.cos(2 * Math.PI * next())
  const gamma = (shape) => {
    // Marsaglia-Tsang (shape ≥ 1; boosted below 1)
    if (shape < 1) return gamma(shape + 1) * next() ** (1 / shape)
    const offset = shape - 1 / 3
    const scale = 1 / Math.sqrt(9 * offset)
    for (;;) {
      const draw = normal()
      const cube = (1 + scale * draw) ** 3
      if (cube > 0 && Math.log(next()) < 0.5 * draw * draw + offset - offset * cube + offset * Math.log(cube))
        return offset * cube
    }
  }
  const beta = (alpha, betaShape) => {
    const left = gamma(alpha)
    return left / (left + gamma(betaShape))
  }
  const poisson = (lambda) => {
    let count = 0
    let term = Math.exp(-lambda)
    let cumulative = term
    const uniform = next()
    while (uniform > cumulative) {
      count++
      term *= lambda / count
      cumulative += term
    }
    return count
  }
  return { next, normal, beta, poisson }
}

const latencyBin = (ms) => {
  for (let bin = 0; bin < LATENCY_BUCKETS_MS.length; bin++) if (ms <= LATENCY_BUCKETS_MS[bin]) return bin
  return LATENCY_BUCKETS_MS.length
}

/** Version behaviour: good, or the broken head with some `defects` (latency, errors, outputs). */
export function behaviour(broken, defects) {
  if (!broken) return { latency: 1, extraErrors: 0, conf: [8, 2] }
  return {
    latency: defects.includes('latency') ? 1.5 : 1,
    extraErrors: defects.includes('errors') ? 0.02 : 0,
    conf: defects.includes('outputs') ? [7, 2.6] : [8, 2],
  }
}

function makeFleet(random, deviceCount) {
  return Array.from({ length: deviceCount }, (_, index) => ({
    id: `d${String(index).padStart(3, '0')}`,
    speed: Math.exp(0.15 * random.normal()),
    rate: 0.5 + 2.5 * random.next(),
    errorRate: random.beta(1, 199),
    confOffset: 0.03 * (2 * random.next() - 1),
    load: 0,
    rows: [],
    blocks: new Map(),
  }))
}

/** Beta(alpha, beta) CDF on a grid of 4,000 steps (trapezoids over the density), cached per shape. */
const betaCdfs = new Map()
function betaCdf(alpha, betaShape) {
  const key = `${alpha}/${betaShape}`
  let grid = betaCdfs.get(key)
  if (grid) return grid
  const steps = 4000
  const density = (x) => (x <= 0 || x >= 1 ? 0 : x ** (alpha - 1) * (1 - x) ** (betaShape - 1))
  grid = new Float64Array(steps + 1)
  for (let step = 1; step <= steps; step++)
    grid[step] = grid[step - 1] + (density((step - 1) / steps) + density(step / steps)) / 2
  const total = grid[steps]
  for (let step = 0; step <= steps; step++) grid[step] /= total
  betaCdfs.set(key, grid)
  return grid
}

/**
 * Cumulative bin probabilities of a device's confidences on a version: Beta plus the device's offset,
 * clipped to [0, 0.999], in the ten bins (exact up to the grid; cached per device and version).
 */
function confidenceTable(device, version) {
  device.tables ??= {}
  if (device.tables[version.name]) return device.tables[version.name]
  const grid = betaCdf(version.b.conf[0], version.b.conf[1])
  const cdfAt = (x) => grid[Math.min(grid.length - 1, Math.max(0, Math.round(x * (grid.length - 1))))]
  // P(confidence < upper edge of bin k) = P(beta < edge - offset); the last bin takes the rest.
  device.tables[version.name] = CONFIDENCE_BUCKETS.map((_, bin) =>
    bin === CONFIDENCE_BUCKETS.length - 1 ? 1 : cdfAt((bin + 1) / 10 - device.confOffset),
  )
  return device.tables[version.name]
}

const pickBin = (cdf, uniform) => {
  for (let bin = 0; bin < cdf.length; bin++) if (uniform < cdf[bin]) return bin
  return cdf.length - 1
}

/** One window of every device at time `t` (ms): appends a telemetry row per device. */
function stepWindow(random, fleet, machine, windowEnd, versionOf) {
  machine.load = 0.9 * machine.load + Math.sqrt(1 - 0.81) * 0.35 * random.normal()
  if (machine.spikeLeft > 0) machine.spikeLeft--
  else if (random.next() < 0.005) machine.spikeLeft = 12
  const shared = Math.exp(machine.load) * (machine.spikeLeft > 0 ? 2.5 : 1)
  const traffic = 1 + 0.5 * Math.sin((2 * Math.PI * windowEnd) / (45 * 60_000))
  for (const device of fleet) {
    device.load = 0.9 * device.load + Math.sqrt(1 - 0.81) * 0.2 * random.normal()
    const version = versionOf(device)
    const requests = random.poisson((device.rate * traffic * WINDOW_MS) / 1000)
    const burst = random.next() < 0.01 ? 0.1 : 0
    const latency = emptyLatencyCounts()
    const confidence = emptyConfidenceCounts()
    let errors = 0
    for (let request = 0; request < requests; request++) {
      if (random.next() < device.errorRate + burst + version.b.extraErrors) errors++
      let ms = 12 * device.speed * shared * Math.exp(device.load) * version.b.latency * Math.exp(0.4 * random.normal())
      if (random.next() < 0.01) ms *= 3 + 5 * random.next()
      latency[latencyBin(ms)]++
      confidence[pickBin(confidenceTable(device, version), random.next())]++
    }
    // Stamped 1 ms before the window's end, so a window ending at a wave start is before it, in the block before.
    const ts = windowEnd - 1
    const part = { deviceId: device.id, ts, requests, errors, latency, confidence }
    if (fleet.keepRows) device.rows.push({ t: ts, version: version.name, part })
    addToBlock(device, version.name, part)
  }
}

/**
 * Sums a row into its device's part for (version, 2-minute block): the clusters the gates build
 * [EF-8.5.1] never split such a part, so handing it over instead of its rows changes nothing.
 */
function addToBlock(device, version, part) {
  const key = `${version}|${Math.floor(part.ts / BLOCK_MS)}`
  const into = device.blocks.get(key)
  if (!into) {
    // A copy: with rows kept (the reference path) the row's own part must stay as it is.
    device.blocks.set(key, { ...part, latency: [...part.latency], confidence: [...part.confidence] })
    return
  }
  into.requests += part.requests
  into.errors += part.errors
  for (let bin = 0; bin < part.latency.length; bin++) into.latency[bin] += part.latency[bin]
  for (let bin = 0; bin < part.confidence.length; bin++) into.confidence[bin] += part.confidence[bin]
}

/** Block parts of `devices` on `version` over (from, to] (block-aligned `from`: wave starts are). */
function blocksOf(devices, version, from, to) {
  const out = emptyStats()
  const first = Math.floor(from / BLOCK_MS)
  const last = Math.floor((to - 1) / BLOCK_MS)
  for (const device of devices) {
    let seen = false
    for (let block = first; block <= last; block++) {
      const part = device.blocks.get(`${version}|${block}`)
      if (!part) continue
      seen = true
      out.parts.push(part)
      addTotals(out, part)
    }
    if (seen) out.devices++
  }
  return out
}

const emptyStats = () => ({
  devices: 0,
  requests: 0,
  errors: 0,
  latency: emptyLatencyCounts(),
  confidence: emptyConfidenceCounts(),
  parts: [],
})

/** Several reads summed, as the hub sums its reads of several previous versions. */
function sumStats(all) {
  const out = emptyStats()
  for (const stats of all) {
    out.devices += stats.devices
    out.parts.push(...stats.parts)
    addTotals(out, stats)
  }
  return out
}

/** Adds one telemetry row to the side's totals (its part is added by the caller). */
function addTotals(stats, part) {
  stats.requests += part.requests
  stats.errors += part.errors
  part.latency.forEach((count, bin) => (stats.latency[bin] += count))
  part.confidence.forEach((count, bin) => (stats.confidence[bin] += count))
}

/** Merged stats of the rows matching (device, version, (from, to]), one part per row, as the hub's store returns them. */
function rowsOf(devices, version, from, to) {
  const out = emptyStats()
  for (const device of devices) {
    let seen = false
    for (const row of device.rows) {
      if (row.t <= from || row.t > to || row.version !== version) continue
      seen = true
      out.parts.push(row.part)
      addTotals(out, row.part)
    }
    if (seen) out.devices++
  }
  return out
}

/** The gates as they were before issue 16: raw thresholds on the same values, no uncertainty. */
function legacyFails(values, gates) {
  if (values.cohortRequests < gates.minRequests) return false
  if (values.errorRate !== null && values.errorRate > (values.baselineErrorRate ?? 0) + gates.maxErrorRateDelta)
    return true
  if (values.p95Ratio !== null && values.p95Ratio > gates.maxP95Ratio) return true
  return (
    values.confidencePsi !== null && values.confidencePsi > gates.maxConfidencePsi && (values.confidenceShift ?? -1) < 0
  )
}

/**
 * One rollout of `candidate` over a fresh fleet of `devices`; returns where the gates (and the
 * legacy ones) first failed, or null fields when it completed. `judge`, `waveTrafficOf` and `gates` are the hub's.
 * `compact: false` hands the gates one part per row (slow; the guard test's reference), and
 * `trace` collects every tick's verdict.
 */
export function simulateRollout(seed, candidate, { judge, waveTrafficOf, gates, devices = 40, compact = true, trace }) {
  const random = randomSource(seed)
  const fleet = makeFleet(random, devices)
  fleet.keepRows = !compact
  const machine = { load: 0, spikeLeft: 0 }
  const previous = { name: '1.0.0', b: behaviour(false, []) }
  const next = { name: '2.0.0', b: candidate }
  const onCandidate = new Set()
  const versionOf = (device) => (onCandidate.has(device.id) ? next : previous)
  let now = -HISTORY_MS
  for (; now < 0; now += WINDOW_MS) stepWindow(random, fleet, machine, now + WINDOW_MS, versionOf)
  const result = { failed: null, legacy: null }
  let enrolled = 0
  for (let waveIndex = 0; waveIndex < WAVES.length; waveIndex++) {
    const upTo = Math.round(WAVES[waveIndex] * devices)
    const wave = fleet.slice(enrolled, Math.max(upTo, enrolled + 1))
    enrolled += wave.length
    for (const device of wave) onCandidate.add(device.id)
    const start = now
    if (start % BLOCK_MS !== 0) throw new Error('waves must start on a 2-minute block (soak and history are multiples)')
    const inWave = new Set(wave.map((device) => device.id))
    const read = compact ? blocksOf : rowsOf
    // The hub's reader: telemetry of some versions on the devices `accept` takes, over (from, to].
    const reader = (versions, accept, from, to) =>
      sumStats(
        versions.map((version) =>
          read(
            fleet.filter((device) => accept(device.id)),
            version,
            from,
            to,
          ),
        ),
      )
    // The legacy gates compared the last wave with the cohort's own hour before it (fixed: read once).
    const noneLeft = fleet.every((device) => onCandidate.has(device.id))
    const before = noneLeft ? read(wave, '1.0.0', start - gates.baselineMs, start) : null
    const off = { ...gates, maxErrorRateDelta: null, maxP95Ratio: null, maxConfidencePsi: null }
    for (; now < start + SOAK_MS;) {
      for (let window = 0; window < TICK_MS / WINDOW_MS; window++, now += WINDOW_MS)
        stepWindow(random, fleet, machine, now + WINDOW_MS, versionOf)
      // The same assembly as the soak phase's (hub/src/rollouts/gate-traffic.ts): the previous wave's
      // devices activated at its start.
      const traffic = waveTrafficOf(reader, {
        candidate: '2.0.0',
        previous: ['1.0.0'],
        inCohort: (id) => inWave.has(id),
        comparable: (id) => !inWave.has(id),
        since: start,
        now,
        baselineMs: gates.baselineMs,
        minRequests: gates.minRequests,
        migratedSince: () => (waveIndex === 0 ? null : start - SOAK_MS),
      })
      const cohort = traffic.cohort
      const verdict = judge({ traffic, shadow: { runs: 0, agree: 0 }, failedDevices: 0 }, gates, {
        needRequests: true,
        waves: WAVES.length,
      })
      trace?.push(`${waveIndex}:${now}:${verdict.verdict}:${verdict.failed.map((f) => f.gate).join(',')}`)
      const at = { wave: waveIndex, requests: cohort.requests, ms: now - start }
      const legacyValues = before
        ? judge(
            {
              traffic: { cohort, baseline: before, concurrent: false },
              shadow: { runs: 0, agree: 0 },
              failedDevices: 0,
            },
            off,
            {
              needRequests: true,
              waves: WAVES.length,
            },
          ).values
        : verdict.values
      if (!result.legacy && legacyFails(legacyValues, gates)) result.legacy = at
      if (verdict.verdict === 'fail' && !result.failed)
        result.failed = { ...at, gates: verdict.failed.map((f) => f.gate) }
      if (result.failed && result.legacy && !trace) return result
    }
    // Rows older than the look-back are dropped to keep memory flat.
    for (const device of fleet) device.rows = device.rows.filter((row) => row.t > now - HISTORY_MS - SOAK_MS)
  }
  return result
}
