// State 'rolling_back' [EF-8.6]: every device the rollout reached gets a
// signed rollback deploy (an agent rollout: agent update) of its own previous version; a device without one is
// failed with EF_ERR_NO_ROLLBACK_TARGET. Rolled back once none is still going.
import type { DeviceRow, RolloutDeviceRow, RolloutRow } from '../../store/index.js'
import { WAITING, counts, decide, type StepContext } from '../context.js'
import { enrollJoiners, track } from '../devices.js'
import { install } from '../subject.js'

export async function stepRollingBack(ctx: StepContext, rollout: RolloutRow): Promise<void> {
  const { store } = ctx.deps
  enrollJoiners(ctx, rollout)
  track(ctx, rollout, store.rollouts.devices(rollout.id))
  const fresh = store.rollouts
    .devices(rollout.id)
    .filter((x) => (x.status === 'activated' || x.status === 'deploying') && x.rollbackDeploymentId === null)
  const byVersion = new Map<string, RolloutDeviceRow[]>()
  const noTarget: string[] = []
  for (const x of fresh) {
    if (x.previousVersion === null || x.previousVersion === rollout.version) noTarget.push(x.deviceId)
    else byVersion.set(x.previousVersion, [...(byVersion.get(x.previousVersion) ?? []), x])
  }
  await sendRollbacks(ctx, rollout, byVersion)
  if (noTarget.length) failWithoutTarget(ctx, rollout, noTarget)
  if (byVersion.size) {
    decide(store, rollout, ctx.t, 'rollback', 'sent', Object.fromEntries([...byVersion].map(([v, l]) => [v, l.length])))
    return
  }
  finishIfDone(ctx, rollout)
}

/** One signed rollback deploy per previous version. */
async function sendRollbacks(
  ctx: StepContext,
  rollout: RolloutRow,
  byVersion: Map<string, RolloutDeviceRow[]>,
): Promise<void> {
  const { store } = ctx.deps
  for (const [version, list] of byVersion) {
    const devs = list.map((x) => ctx.byId.get(x.deviceId)).filter((x): x is DeviceRow => x !== undefined)
    // Models: a signed rollback deploy; the agent: a signed agent-update rollback [EF-11.5].
    const sent = await install(ctx, rollout, devs, {
      version,
      target: `rollout:${rollout.id}#rollback`,
      rollback: true,
    })
    const failed = new Map(sent.failed.map((x) => [x.device, x.code]))
    store.rollouts.tx(() => {
      for (const x of list) {
        const code = failed.get(x.deviceId)
        store.rollouts.updateDevice(
          rollout.id,
          x.deviceId,
          code ? { status: 'failed', code } : { status: 'rolling_back', rollbackDeploymentId: sent.id },
          ctx.t,
        )
      }
    })
  }
}

function failWithoutTarget(ctx: StepContext, r: RolloutRow, noTarget: string[]): void {
  const { store } = ctx.deps
  store.rollouts.tx(() => {
    for (const id of noTarget)
      store.rollouts.updateDevice(r.id, id, { status: 'failed', code: 'EF_ERR_NO_ROLLBACK_TARGET' }, ctx.t)
    decide(store, r, ctx.t, 'rollback', 'no_target', { devices: noTarget.slice(0, 50), count: noTarget.length })
  })
}

/** Rolled back once no rollback deploy is still going. */
function finishIfDone(ctx: StepContext, rollout: RolloutRow): void {
  const { store } = ctx.deps
  const after = store.rollouts.devices(rollout.id)
  if (!after.every((x) => x.status !== 'rolling_back')) return
  store.rollouts.tx(() => {
    // Devices never reached by the rollout keep waiting forever otherwise.
    for (const x of after)
      if (WAITING.has(x.status) || x.status === 'shadowing')
        store.rollouts.updateDevice(rollout.id, x.deviceId, { status: 'pending', dueAt: null }, ctx.t)
    store.rollouts.update(rollout.id, { state: 'rolled_back' }, ctx.t)
    decide(store, rollout, ctx.t, 'rollback', 'done', counts(after))
  })
}
