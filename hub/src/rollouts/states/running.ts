// State 'running': the current wave is drawn and its devices tracked, then
// the wave's phase decides the step: shadow candidates [EF-8.8], deploys as
// devices become due [EF-8.4], or the soak behind the health gates [EF-8.5].
import { defined } from '@edgefleet/shared'
import type { DeviceRow, RolloutDeviceRow, RolloutRow } from '../../store/index.js'
import { DONE_DEVICE, WAITING, counts, decide, type StepContext } from '../context.js'
import { TRACKED, enrollJoiners, track } from '../devices.js'
import { unmetConditions } from '../schedule.js'
import type { Condition, RolloutSpec } from '../spec.js'
import { draw } from '../waves.js'
import { install } from '../subject.js'
import { stepShadow } from './shadow.js'
import { stepSoak } from './soak.js'

export async function stepRunning(ctx: StepContext, rollout: RolloutRow): Promise<void> {
  const { store } = ctx.deps
  enrollJoiners(ctx, rollout)
  draw(store, rollout, ctx.t)
  // Only devices with a deployment in flight are tracked, and only the current wave is read [EF-8.9].
  track(ctx, rollout, store.rollouts.devicesWithStatus(rollout.id, TRACKED))
  const wave = store.rollouts.waveDevices(rollout.id, rollout.wave)
  if (rollout.phase === 'shadow') return stepShadow(ctx, rollout, wave)
  // Devices that become due during the soak (a window opens, a jitter ends) are deployed then.
  await dispatch(ctx, rollout, wave)
  const current = store.rollouts.waveDevices(rollout.id, rollout.wave)
  if (rollout.phase === 'deploy') {
    endDeploy(ctx, rollout, current)
    return
  }
  if (rollout.phase !== 'soak') return
  stepSoak(ctx, rollout, current)
  // A wave that passed starts the next one's deploys in this same tick rather than the next one.
  const next = defined(store.rollouts.get(rollout.id), `rollout ${rollout.id}`)
  if (next.state === 'running' && next.wave !== rollout.wave) return stepRunning(ctx, next)
}

/** The wave's deploys are all done (activated, skipped or failed): its soak starts. */
function endDeploy(ctx: StepContext, r: RolloutRow, wave: RolloutDeviceRow[]): void {
  if (!wave.every((x) => DONE_DEVICE.has(x.status))) return
  const { store } = ctx.deps
  const spec = r.spec as RolloutSpec
  const soakMs = spec.waves[r.wave].soakMs ?? spec.soakMs
  store.rollouts.tx(() => {
    store.rollouts.update(r.id, { phase: 'soak', soakUntil: ctx.t + soakMs }, ctx.t)
    decide(store, r, ctx.t, 'wave', 'deployed', counts(wave))
  })
}

/** Sends deploys to the wave's devices that are due: in their window, showing the conditions, past their jitter [EF-8.4]. */
async function dispatch(ctx: StepContext, rollout: RolloutRow, wave: RolloutDeviceRow[]): Promise<void> {
  const { store } = ctx.deps
  const { t: nowMs } = ctx
  const due: DeviceRow[] = []
  store.rollouts.tx(() => {
    for (const x of wave) {
      const dev = WAITING.has(x.status) ? ctx.byId.get(x.deviceId) : undefined
      if (!dev) continue
      const next = readiness(ctx, rollout.spec as RolloutSpec, x, dev)
      if (next.status !== x.status || next.dueAt !== x.dueAt)
        store.rollouts.updateDevice(rollout.id, x.deviceId, { status: next.status, dueAt: next.dueAt }, nowMs)
      if (next.due) due.push(dev)
    }
  })
  if (due.length === 0) return
  const sent = await install(ctx, rollout, due, {
    version: rollout.version,
    target: `rollout:${rollout.id}#${rollout.wave + 1}`,
    // A rollout created as a rollback installs an older version: signed rollback deploys [EF-8.13, EF-4.6].
    rollback: (rollout.spec as RolloutSpec).rollback,
  })
  const failed = new Map(sent.failed.map((x) => [x.device, x.code]))
  store.rollouts.tx(() => {
    for (const dev of due) {
      const code = failed.get(dev.id)
      store.rollouts.updateDevice(
        rollout.id,
        dev.id,
        code ? { status: 'failed', code } : { status: 'deploying', deploymentId: sent.id },
        nowMs,
      )
    }
  })
}

interface Readiness {
  status: RolloutDeviceRow['status']
  dueAt: number | null
  /** Deploy it in this tick. */
  due: boolean
}

/**
 * The conditions a device must show before its deploy: the rollout's own, and, when the rollout
 * honours maintenance windows, those its profile's window lists, as a plain deploy waits for [EF-8.4, EF-8.16].
 */
function conditionsFor(ctx: StepContext, schedule: RolloutSpec['schedule'], dev: DeviceRow): readonly Condition[] {
  const profile = schedule.maintenanceWindows ? ctx.deps.profiles.get(dev.profile) : undefined
  const fromProfile = profile?.maintenanceWindow.conditions ?? []
  return fromProfile.length ? [...new Set([...schedule.conditions, ...fromProfile])] : schedule.conditions
}

/**
 * Where a waiting device stands: outside its window, missing a condition, jittered, or due [EF-8.4].
 * A held device stays waiting (never failed): its wave waits for it, and gates count only outcomes.
 */
function readiness(ctx: StepContext, spec: RolloutSpec, member: RolloutDeviceRow, dev: DeviceRow): Readiness {
  const { schedule } = spec
  if (schedule.maintenanceWindows && !ctx.windows.open(dev.profile))
    return { status: 'waiting_window', dueAt: member.dueAt, due: false }
  if (unmetConditions(conditionsFor(ctx, schedule, dev), dev.state).length)
    return { status: 'waiting_conditions', dueAt: member.dueAt, due: false }
  if (schedule.jitterMs > 0 && member.dueAt === null) {
    const dueAt = ctx.t + Math.floor(ctx.deps.random() * schedule.jitterMs)
    return { status: 'scheduled', dueAt, due: dueAt <= ctx.t }
  }
  // Past its jitter (or none): deployed now, its stored status left as it is.
  if (member.dueAt === null || member.dueAt <= ctx.t) return { status: member.status, dueAt: member.dueAt, due: true }
  return { status: member.status, dueAt: member.dueAt, due: false }
}
