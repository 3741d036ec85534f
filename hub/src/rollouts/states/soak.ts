// Phase 'soak' of a running wave [EF-8.5]: the wave's gates are evaluated on
// every tick (one gate sample each; an agent rollout's wave: its devices'
// confirmations, agent-gates.ts); a failure acts at once, a pass only when
// the soak is over, and without enough data the wave waits for it.
import { addCounts } from '../../stats.js'
import { emptyCohortStats, type CohortStats, type RolloutDeviceRow, type RolloutRow } from '../../store/index.js'
import { decide, failedGates, type StepContext } from '../context.js'
import { gateSample, judge, type GateVerdict, type Traffic } from '../gates.js'
import type { RolloutSpec } from '../spec.js'
import { nextWave } from '../waves.js'
import { isAgentRollout } from '../subject.js'
import { judgeAgentWave } from '../agent-gates.js'
import { waveTrafficOf, type TrafficReader } from '../gate-traffic.js'

const WAITING_FOR_DATA = 'waiting for data'

export function stepSoak(ctx: StepContext, rollout: RolloutRow, wave: RolloutDeviceRow[]): void {
  const { store } = ctx.deps
  const { t: nowMs } = ctx
  const spec = rollout.spec as RolloutSpec
  const verdict = evaluate(ctx, rollout, wave)
  if (verdict.verdict === 'fail') return fail(ctx, rollout, verdict)
  if (nowMs < (rollout.soakUntil ?? 0)) return
  if (verdict.verdict === 'pass') {
    store.rollouts.tx(() => {
      decide(store, rollout, nowMs, 'gate', 'pass', { ...verdict.values, checks: verdict.checks })
      nextWave(store, rollout, nowMs)
    })
    return
  }
  // Recorded once per wait, not on every tick of it.
  if (rollout.reason === WAITING_FOR_DATA) return
  store.rollouts.tx(() => {
    store.rollouts.update(rollout.id, { reason: WAITING_FOR_DATA }, nowMs)
    decide(store, rollout, nowMs, 'gate', 'wait', {
      ...verdict.values,
      minRequests: spec.gates.minRequests,
      checks: verdict.checks,
    })
  })
}

/** Gate values for the current wave, stored as one sample of the time series [EF-8.5]. */
function evaluate(ctx: StepContext, rollout: RolloutRow, wave: RolloutDeviceRow[]): GateVerdict {
  if (isAgentRollout(rollout)) return judgeAgentWave(ctx, rollout, wave)
  const { store } = ctx.deps
  const spec = rollout.spec as RolloutSpec
  const failedDevices = wave.filter((x) => x.status === 'failed').length
  const cohortIds = new Set(wave.filter((x) => x.status === 'activated').map((x) => x.deviceId))
  const traffic = waveTraffic(ctx, rollout, wave, cohortIds)
  const since = rollout.phaseStartedAt ?? rollout.createdAt
  const shadow = store.rolloutTelemetry.shadow(rollout.model, rollout.version, (id) => cohortIds.has(id), since, ctx.t)
  const verdict = judge({ traffic, shadow, failedDevices }, spec.gates, {
    needRequests: true,
    waves: spec.waves.length,
  })
  store.rollouts.addGateSample(rollout.id, { ts: ctx.t, wave: rollout.wave, values: gateSample(verdict.values) })
  return verdict
}

/**
 * The wave's activated devices (`cohortIds`) on the new version since the
 * phase started against a baseline of the same profiles over the same time,
 * each with its earlier interval (gate-traffic.ts) [EF-8.5.5].
 */
function waveTraffic(ctx: StepContext, rollout: RolloutRow, wave: RolloutDeviceRow[], cohortIds: Set<string>): Traffic {
  const { store } = ctx.deps
  const spec = rollout.spec as RolloutSpec
  const { byId } = ctx
  const profiles = new Set([...cohortIds].map((id) => byId.get(id)?.profile))
  const read: TrafficReader = (versions, accept, from, to) =>
    sumStats(versions.map((v) => store.rolloutTelemetry.cohort(rollout.model, v, accept, from, to)))
  return waveTrafficOf(read, {
    candidate: rollout.version,
    previous: [
      ...new Set(wave.map((x) => x.previousVersion).filter((v): v is string => v !== null && v !== rollout.version)),
    ],
    inCohort: (id) => cohortIds.has(id),
    comparable: (id) => !cohortIds.has(id) && profiles.has(byId.get(id)?.profile),
    since: rollout.phaseStartedAt ?? rollout.createdAt,
    now: ctx.t,
    baselineMs: spec.gates.baselineMs,
    minRequests: spec.gates.minRequests,
    // The previous wave's devices activated last of all the migrated ones.
    migratedSince: () => {
      if (rollout.wave === 0) return null
      const times = store.rollouts.waveDevices(rollout.id, rollout.wave - 1).flatMap((x) => x.activatedAt ?? [])
      return times.length ? Math.max(...times) : null
    },
  })
}

/** The sum of several cohorts' stats (devices counted per cohort). */
function sumStats(parts: CohortStats[]): CohortStats {
  const out = emptyCohortStats()
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
function fail(ctx: StepContext, rollout: RolloutRow, verdict: GateVerdict): void {
  const { store, log } = ctx.deps
  const { t: nowMs } = ctx
  const spec = rollout.spec as RolloutSpec
  const reason = `gate failed: ${failedGates(verdict)}`
  store.rollouts.tx(() => {
    decide(store, rollout, nowMs, 'gate', 'fail', {
      failed: verdict.failed,
      values: verdict.values,
      checks: verdict.checks,
      action: spec.onFail,
    })
    if (spec.onFail === 'rollback')
      store.rollouts.update(
        rollout.id,
        { state: 'rolling_back', phase: 'rollback', phaseStartedAt: nowMs, reason },
        nowMs,
      )
    else store.rollouts.update(rollout.id, { state: 'paused', pausedFrom: 'running', pausedAt: nowMs, reason }, nowMs)
  })
  log.warn(
    { rollout: rollout.id, wave: rollout.wave + 1, failed: verdict.failed },
    `rollout gate failed → ${spec.onFail}`,
  )
}
