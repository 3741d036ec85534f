// A rollout's devices: who is enrolled (at creation and as matching devices
// join the fleet [EF-8.9]), in which stable random order [EF-8.3], and how
// deployment progress folds into their rollout status.
import { createHash } from 'node:crypto'
import type { DeviceRow, HubStore, RolloutDeviceRow, RolloutRow } from '../store/index.js'
import { TERMINAL_STATES } from '../store/index.js'
import { decide, type StepContext } from './context.js'
import { matches } from './selector.js'
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
  r: Pick<RolloutRow, 'id' | 'model' | 'version'>,
  devices: DeviceRow[],
  wave: number | null,
  t: number,
): number {
  const rows = devices.map((dev) => {
    const prev = dev.state?.models?.find((m) => m.name === r.model)?.version ?? null
    return {
      deviceId: dev.id,
      ord: drawOrder(r.id, dev.id),
      previousVersion: prev,
      status: prev === r.version ? ('skipped' as const) : ('pending' as const),
      wave: prev === r.version ? null : wave,
    }
  })
  store.rollouts.addDevices(r.id, rows, t)
  return rows.length
}

/** Devices that joined the fleet later and match are included [EF-8.9]. */
export function enrollJoiners(ctx: StepContext, r: RolloutRow): void {
  const { store } = ctx.deps
  const spec = r.spec as RolloutSpec
  // Only devices provisioned or re-enabled since the last look, never the whole fleet; they are all active [EF-1.3.3].
  const matching = ctx.candidates(r.id).filter((dev) => matches(spec.selector, dev))
  if (matching.length === 0) return
  const known = store.rollouts.enrolled(
    r.id,
    matching.map((d) => d.id),
  )
  const joiners = matching.filter((dev) => !known.has(dev.id))
  if (joiners.length === 0) return
  // A rollout that has drawn waves takes joiners into the current one; a rolling-back one only records them.
  const wave = r.state === 'running' || r.state === 'paused' || r.state === 'awaiting_approval' ? r.wave : null
  enroll(store, r, joiners, wave, ctx.t)
  decide(store, r, ctx.t, 'enroll', 'joined', {
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
export function track(store: HubStore, r: RolloutRow, devices: RolloutDeviceRow[], t: number): void {
  const cache = new Map<string, Map<string, { state: string; code: string | null }>>()
  const stateOf = (dep: string, dev: string) => {
    let m = cache.get(dep)
    if (!m) cache.set(dep, (m = store.deployments.finished(dep)))
    return m.get(dev)
  }
  store.rollouts.tx(() => {
    for (const x of devices) {
      if (x.status === 'deploying' && x.deploymentId) {
        const s = stateOf(x.deploymentId, x.deviceId)
        if (s?.state === 'activated')
          store.rollouts.updateDevice(r.id, x.deviceId, { status: 'activated', activatedAt: t }, t)
        else if (s && TERMINAL_STATES.has(s.state))
          store.rollouts.updateDevice(r.id, x.deviceId, { status: 'failed', code: s.code ?? s.state }, t)
      } else if (x.status === 'rolling_back' && x.rollbackDeploymentId) {
        const s = stateOf(x.rollbackDeploymentId, x.deviceId)
        if (s?.state === 'activated' || s?.state === 'rolled_back')
          store.rollouts.updateDevice(r.id, x.deviceId, { status: 'rolled_back' }, t)
        else if (s && TERMINAL_STATES.has(s.state))
          store.rollouts.updateDevice(r.id, x.deviceId, { status: 'failed', code: s.code ?? s.state }, t)
      }
    }
  })
}
