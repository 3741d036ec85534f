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
  r: RolloutRow,
  fresh: RolloutDeviceRow[],
): Promise<void> {
  const { store } = ctx.deps
  const { t } = ctx
  // A rollout is in phase 'shadow' only when its spec has a shadow stage.
  const cfg = defined((r.spec as RolloutSpec).shadow, `shadow stage of rollout ${r.id}`)
  for (const x of fresh) {
    try {
      await commands.shadow(x.deviceId, r.model, r.version, cfg.fraction)
      store.rollouts.updateDevice(r.id, x.deviceId, { status: 'shadowing' }, t)
    } catch (err) {
      const code = (err as EdgeFleetError).code ?? 'EF_ERR_INTERNAL'
      store.rollouts.updateDevice(r.id, x.deviceId, { status: 'failed', code }, t)
    }
  }
  if (r.soakUntil === null) store.rollouts.update(r.id, { soakUntil: t + cfg.soakMs }, t)
}

/** The agreement gate on the shadowing devices' reports, kept as one gate sample. */
function judgeShadow(ctx: StepContext, r: RolloutRow, wave: RolloutDeviceRow[], shadowing: Set<string>): GateVerdict {
  const { store } = ctx.deps
  const since = r.phaseStartedAt ?? r.createdAt
  const sh = store.rolloutTelemetry.shadow(r.model, r.version, (id) => shadowing.has(id), since, ctx.t)
  const failed = wave.filter((x) => x.status === 'failed').length
  const spec = r.spec as RolloutSpec
  const v = judge({ traffic: null, shadow: sh, failedDevices: failed }, spec.gates, {
    needRequests: false,
    needShadow: true,
    waves: spec.waves.length,
  })
  store.rollouts.addGateSample(r.id, { ts: ctx.t, wave: r.wave, values: gateSample(v.values) })
  return v
}

/**
 * Ends the shadow stage either way: candidates discarded, devices back to
 * pending, then the deploy on a pass, or the failure's action.
 */
async function endShadow(ctx: StepContext, r: RolloutRow, shadowing: Set<string>, v: GateVerdict): Promise<void> {
  const { store, commands } = ctx.deps
  const { t } = ctx
  const spec = r.spec as RolloutSpec
  for (const id of shadowing) await commands?.discard(id, r.model, r.version).catch(() => undefined)
  store.rollouts.tx(() => {
    for (const id of shadowing) store.rollouts.updateDevice(r.id, id, { status: 'pending' }, t)
    if (v.verdict === 'pass') {
      decide(store, r, t, 'gate', 'pass', { stage: 'shadow', ...v.values, checks: v.checks })
      store.rollouts.update(r.id, { phase: 'deploy', phaseStartedAt: t, soakUntil: null }, t)
      return
    }
    decide(store, r, t, 'gate', 'fail', {
      stage: 'shadow',
      failed: v.failed,
      values: v.values,
      checks: v.checks,
      action: spec.onFail,
    })
    const reason = `shadow gate failed: ${failedGates(v)}`
    // Nothing was activated: a rollback here is the discard itself [EF-8.6].
    if (spec.onFail === 'rollback') store.rollouts.update(r.id, { state: 'rolled_back', reason }, t)
    else store.rollouts.update(r.id, { state: 'paused', pausedFrom: 'running', pausedAt: t, reason }, t)
  })
}
