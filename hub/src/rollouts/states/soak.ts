// Phase 'soak' of a running wave [EF-8.5]: the wave's gates are evaluated on
// every tick (one gate sample each); a failure acts at once, a pass only when
// the soak is over, and without enough data the wave waits for it.
import { emptyConfidenceCounts, emptyLatencyCounts } from '@edgefleet/shared'
import { addCounts } from '../../stats.js'
import type { CohortStats, RolloutDeviceRow, RolloutRow } from '../../store/index.js'
import { decide, failedGates, type StepContext } from '../context.js'
import { gateSample, judge, type GateVerdict, type Traffic } from '../gates.js'
import type { RolloutSpec } from '../spec.js'
import { nextWave } from '../waves.js'

const WAITING_FOR_DATA = 'waiting for data'

export function stepSoak(ctx: StepContext, r: RolloutRow, wave: RolloutDeviceRow[]): void {
  const { store } = ctx.deps
  const { t } = ctx
  const spec = r.spec as RolloutSpec
  const v = evaluate(ctx, r, wave)
  if (v.verdict === 'fail') return fail(ctx, r, v)
  if (t < (r.soakUntil ?? 0)) return
  if (v.verdict === 'pass') {
    store.rollouts.tx(() => {
      decide(store, r, t, 'gate', 'pass', { ...v.values, checks: v.checks })
      nextWave(store, r, t)
    })
    return
  }
  // Recorded once per wait, not on every tick of it.
  if (r.reason === WAITING_FOR_DATA) return
  store.rollouts.tx(() => {
    store.rollouts.update(r.id, { reason: WAITING_FOR_DATA }, t)
    decide(store, r, t, 'gate', 'wait', { ...v.values, minRequests: spec.gates.minRequests, checks: v.checks })
  })
}

/** Gate values for the current wave, stored as one sample of the time series [EF-8.5]. */
function evaluate(ctx: StepContext, r: RolloutRow, wave: RolloutDeviceRow[]): GateVerdict {
  const { store } = ctx.deps
  const spec = r.spec as RolloutSpec
  const failedDevices = wave.filter((x) => x.status === 'failed').length
  const cohortIds = new Set(wave.filter((x) => x.status === 'activated').map((x) => x.deviceId))
  const traffic = waveTraffic(ctx, r, wave, cohortIds)
  const since = r.phaseStartedAt ?? r.createdAt
  const shadow = store.rolloutTelemetry.shadow(r.model, r.version, (id) => cohortIds.has(id), since, ctx.t)
  const verdict = judge({ traffic, shadow, failedDevices }, spec.gates, {
    needRequests: true,
    waves: spec.waves.length,
  })
  store.rollouts.addGateSample(r.id, { ts: ctx.t, wave: r.wave, values: gateSample(verdict.values) })
  return verdict
}

/**
 * The wave's activated devices (`cohortIds`) on the new version since the phase started,
 * against devices of the same profiles still on a previous version over the
 * same time; without such devices, the cohort itself before the phase.
 */
function waveTraffic(ctx: StepContext, r: RolloutRow, wave: RolloutDeviceRow[], cohortIds: Set<string>): Traffic {
  const { rolloutTelemetry } = ctx.deps.store
  const spec = r.spec as RolloutSpec
  const { t, byId } = ctx
  const profiles = new Set([...cohortIds].map((id) => byId.get(id)?.profile))
  const prevs = new Set(wave.map((x) => x.previousVersion).filter((v): v is string => v !== null && v !== r.version))
  const since = r.phaseStartedAt ?? r.createdAt
  const cohort = rolloutTelemetry.cohort(r.model, r.version, (id) => cohortIds.has(id), since, t)
  const previous = (accept: (id: string) => boolean, from: number, to: number) =>
    sumStats([...prevs].map((v) => rolloutTelemetry.cohort(r.model, v, accept, from, to)))
  const baseline = previous((id) => !cohortIds.has(id) && profiles.has(byId.get(id)?.profile), since, t)
  if (baseline.requests > 0) return { cohort, baseline, concurrent: true }
  const before = previous((id) => cohortIds.has(id), since - spec.gates.baselineMs, since)
  return { cohort, baseline: before, concurrent: false }
}

/** The sum of several cohorts' stats (devices counted per cohort). */
function sumStats(parts: CohortStats[]): CohortStats {
  const out: CohortStats = {
    devices: 0,
    requests: 0,
    errors: 0,
    latency: emptyLatencyCounts(),
    confidence: emptyConfidenceCounts(),
    parts: [],
  }
  for (const p of parts) {
    out.parts.push(...p.parts)
    out.devices += p.devices
    out.requests += p.requests
    out.errors += p.errors
    addCounts(out.latency, p.latency)
    addCounts(out.confidence, p.confidence)
  }
  return out
}

/** A failed gate: the spec's onFail, a rollback of the activated devices or a pause [EF-8.6]. */
function fail(ctx: StepContext, r: RolloutRow, v: GateVerdict): void {
  const { store, log } = ctx.deps
  const { t } = ctx
  const spec = r.spec as RolloutSpec
  const reason = `gate failed: ${failedGates(v)}`
  store.rollouts.tx(() => {
    decide(store, r, t, 'gate', 'fail', { failed: v.failed, values: v.values, checks: v.checks, action: spec.onFail })
    if (spec.onFail === 'rollback')
      store.rollouts.update(r.id, { state: 'rolling_back', phase: 'rollback', phaseStartedAt: t, reason }, t)
    else store.rollouts.update(r.id, { state: 'paused', pausedFrom: 'running', pausedAt: t, reason }, t)
  })
  log.warn({ rollout: r.id, wave: r.wave + 1, failed: v.failed }, `rollout gate failed → ${spec.onFail}`)
}
