// A rollout's devices: who is enrolled (at creation and as matching devices
// join the fleet [EF-8.9]), in which stable random order [EF-8.3], and how
// deployment progress folds into their rollout status.
import { createHash } from 'node:crypto'
import type { DeviceRow, HubStore, RolloutDeviceRow, RolloutRow } from '../store/index.js'
import { TERMINAL_STATES } from '../store/index.js'
import { decide, type StepContext } from './context.js'
import { matches } from './selector.js'
import { finished, liveVersion } from './subject.js'
import type { RolloutSpec } from './spec.js'

/** A device's place in the rollout's draw order: random, but the same on every tick and hub. */
const drawOrder = (rolloutId: string, deviceId: string) =>
  createHash('sha256').update(`${rolloutId}\u0000${deviceId}`).digest('hex')

/**
 * Adds devices to a rollout; one already on the version is 'skipped'. `wave`
 * puts them straight into a wave already drawn (null: wait for a draw).
 */
export function enroll(
  store: HubStore,
  rollout: Pick<RolloutRow, 'id' | 'model' | 'version' | 'spec'>,
  devices: DeviceRow[],
  wave: number | null,
  nowMs: number,
): number {
  const rows = devices.map((dev) => {
    const prev = liveVersion(rollout, dev)
    return {
      deviceId: dev.id,
      ord: drawOrder(rollout.id, dev.id),
      previousVersion: prev,
      status: prev === rollout.version ? ('skipped' as const) : ('pending' as const),
      wave: prev === rollout.version ? null : wave,
    }
  })
  store.rollouts.addDevices(rollout.id, rows, nowMs)
  return rows.length
}

/** Devices that joined the fleet later and match are included [EF-8.9]. */
export function enrollJoiners(ctx: StepContext, rollout: RolloutRow): void {
  const { store } = ctx.deps
  const spec = rollout.spec as RolloutSpec
  // Only devices provisioned or re-enabled since the last look, never the whole fleet; they are all active [EF-1.3.3].
  const matching = ctx.candidates(rollout.id).filter((dev) => matches(spec.selector, dev))
  if (matching.length === 0) return
  const known = store.rollouts.enrolled(
    rollout.id,
    matching.map((d) => d.id),
  )
  const joiners = matching.filter((dev) => !known.has(dev.id))
  if (joiners.length === 0) return
  // A rollout that has drawn waves takes joiners into the current one; a rolling-back one only records them.
  const wave =
    rollout.state === 'running' || rollout.state === 'paused' || rollout.state === 'awaiting_approval'
      ? rollout.wave
      : null
  enroll(store, rollout, joiners, wave, ctx.t)
  decide(store, rollout, ctx.t, 'enroll', 'joined', {
    devices: joiners.map((x) => x.id).slice(0, 50),
    count: joiners.length,
  })
}

/** Rollout device statuses whose deployment progress `track` folds in. */
export const TRACKED = ['deploying', 'rolling_back'] as const

/**
 * Folds deployment progress (deploys and rollback deploys) into device
 * statuses. Only finished assignments are read: one still in flight changes nothing here.
 */
export function track(ctx: Pick<StepContext, 'deps' | 't'>, rollout: RolloutRow, devices: RolloutDeviceRow[]): void {
  const { store } = ctx.deps
  const nowMs = ctx.t
  const cache = new Map<string, Map<string, { state: string; code: string | null }>>()
  const stateOf = (dep: string, dev: string) => {
    let m = cache.get(dep)
    if (!m) cache.set(dep, (m = finished(ctx, rollout, dep)))
    return m.get(dev)
  }
  store.rollouts.tx(() => {
    for (const member of devices) {
      if (member.status === 'deploying' && member.deploymentId) {
        const s = stateOf(member.deploymentId, member.deviceId)
        if (s?.state === 'activated')
          store.rollouts.updateDevice(rollout.id, member.deviceId, { status: 'activated', activatedAt: nowMs }, nowMs)
        else if (s && TERMINAL_STATES.has(s.state))
          store.rollouts.updateDevice(rollout.id, member.deviceId, { status: 'failed', code: s.code ?? s.state }, nowMs)
      } else if (member.status === 'rolling_back' && member.rollbackDeploymentId) {
        const s = stateOf(member.rollbackDeploymentId, member.deviceId)
        if (s?.state === 'activated' || s?.state === 'rolled_back')
          store.rollouts.updateDevice(rollout.id, member.deviceId, { status: 'rolled_back' }, nowMs)
        else if (s && TERMINAL_STATES.has(s.state))
          store.rollouts.updateDevice(rollout.id, member.deviceId, { status: 'failed', code: s.code ?? s.state }, nowMs)
      }
    }
  })
}
