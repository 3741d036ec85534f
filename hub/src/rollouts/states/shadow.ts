// Phase 'shadow' of a running wave [EF-8.8]: the candidate is sent to the
// wave's devices first, runs beside the live version without answering, and
// its agreement is gated before anything is deployed.
import { defined, type EdgeFleetError } from '@edgefleet/shared'
import type { RolloutDeviceRow, RolloutRow } from '../../store/index.js'
import type { RolloutEngineDeps } from '../context.js'
import { WAITING, decide, failedGates, type StepContext } from '../context.js'
import { gateSample, judge, type GateVerdict } from '../gates.js'
import type { RolloutSpec } from '../spec.js'

export async function stepShadow(ctx: StepContext, r: RolloutRow, wave: RolloutDeviceRow[]): Promise<void> {
  const fresh = wave.filter((x) => WAITING.has(x.status))
  if (fresh.length && ctx.deps.commands) return sendCandidates(ctx, ctx.deps.commands, r, fresh)
  const shadowing = new Set(wave.filter((x) => x.status === 'shadowing').map((x) => x.deviceId))
  const v = judgeShadow(ctx, r, wave, shadowing)
  // A failure ends the stage at once; a pass only once the shadow soak is over.
  if (v.verdict === 'fail' || (v.verdict === 'pass' && ctx.t >= (r.soakUntil ?? Infinity)))
    return endShadow(ctx, r, shadowing, v)
}

/** Sends the candidate to devices not yet shadowing; the shadow soak starts with the first ones. */
async function sendCandidates(
  ctx: StepContext,
  commands: NonNullable<RolloutEngineDeps['commands']>,
  rollout: RolloutRow,
  fresh: RolloutDeviceRow[],
): Promise<void> {
  const { store } = ctx.deps
  const { t: nowMs } = ctx
  // A rollout is in phase 'shadow' only when its spec has a shadow stage.
  const cfg = defined((rollout.spec as RolloutSpec).shadow, `shadow stage of rollout ${rollout.id}`)
  for (const x of fresh) {
    try {
      await commands.shadow(x.deviceId, rollout.model, rollout.version, cfg.fraction)
      store.rollouts.updateDevice(rollout.id, x.deviceId, { status: 'shadowing' }, nowMs)
    } catch (err) {
      const code = (err as EdgeFleetError).code ?? 'EF_ERR_INTERNAL'
      store.rollouts.updateDevice(rollout.id, x.deviceId, { status: 'failed', code }, nowMs)
    }
  }
  if (rollout.soakUntil === null) store.rollouts.update(rollout.id, { soakUntil: nowMs + cfg.soakMs }, nowMs)
}

/** The agreement gate on the shadowing devices' reports, kept as one gate sample. */
function judgeShadow(
  ctx: StepContext,
  rollout: RolloutRow,
  wave: RolloutDeviceRow[],
  shadowing: Set<string>,
): GateVerdict {
  const { store } = ctx.deps
  const since = rollout.phaseStartedAt ?? rollout.createdAt
  const sh = store.rolloutTelemetry.shadow(rollout.model, rollout.version, (id) => shadowing.has(id), since, ctx.t)
  const failed = wave.filter((x) => x.status === 'failed').length
  const spec = rollout.spec as RolloutSpec
  const v = judge({ traffic: null, shadow: sh, failedDevices: failed }, spec.gates, {
    needRequests: false,
    needShadow: true,
    waves: spec.waves.length,
  })
  store.rollouts.addGateSample(rollout.id, { ts: ctx.t, wave: rollout.wave, values: gateSample(v.values) })
  return v
}

/**
 * Ends the shadow stage either way: candidates discarded, devices back to
 * pending, then the deploy on a pass, or the failure's action.
 */
async function endShadow(
  ctx: StepContext,
  rollout: RolloutRow,
  shadowing: Set<string>,
  verdict: GateVerdict,
): Promise<void> {
  const { store, commands } = ctx.deps
  const { t: nowMs } = ctx
  const spec = rollout.spec as RolloutSpec
  for (const id of shadowing) await commands?.discard(id, rollout.model, rollout.version).catch(() => undefined)
  store.rollouts.tx(() => {
    for (const id of shadowing) store.rollouts.updateDevice(rollout.id, id, { status: 'pending' }, nowMs)
    if (verdict.verdict === 'pass') {
      decide(store, rollout, nowMs, 'gate', 'pass', { stage: 'shadow', ...verdict.values, checks: verdict.checks })
      store.rollouts.update(rollout.id, { phase: 'deploy', phaseStartedAt: nowMs, soakUntil: null }, nowMs)
      return
    }
    decide(store, rollout, nowMs, 'gate', 'fail', {
      stage: 'shadow',
      failed: verdict.failed,
      values: verdict.values,
      checks: verdict.checks,
      action: spec.onFail,
    })
    const reason = `shadow gate failed: ${failedGates(verdict)}`
    // Nothing was activated: a rollback here is the discard itself [EF-8.6].
    if (spec.onFail === 'rollback') store.rollouts.update(rollout.id, { state: 'rolled_back', reason }, nowMs)
    else store.rollouts.update(rollout.id, { state: 'paused', pausedFrom: 'running', pausedAt: nowMs, reason }, nowMs)
  })
}
