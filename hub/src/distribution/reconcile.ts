// Reconciliation of deployment rows with what devices report [EF-2.1.4]: a
// lost event (a broker that acknowledged it and then died, a hub that was not
// subscribed yet) delays a deployment's status but never freezes it. Each
// state message is applied to the device's open assignments as if its events
// had arrived, and a periodic pass resends the command of every open
// assignment of an online device that has not moved for a while and is not
// in a broadcast (the agent runs it, or reports the outcome it stored
// [EF-2.3.2]).
import { PROTOCOL_VERSION, type DeviceEvent, type DeviceState } from '@edgefleet/shared'
import type { DeploymentDeviceRow, HubStore } from '../store/index.js'

/**
 * Applies a device's state to its open assignments: an assignment whose
 * build the device serves is `activated`; one whose outcome the state lists
 * takes that outcome. Returns the assignments changed.
 */
export function reconcileState(store: HubStore, deviceId: string, state: DeviceState, now: number): number {
  if (!state.online) return 0
  const serving = new Set((state.models ?? []).map((m) => m.artifact))
  const known = new Map((state.outcomes ?? []).map((o) => [o.deploymentId, o]))
  let changed = 0
  for (const assignment of store.deployments.openForDevice(deviceId)) {
    const outcome = known.get(assignment.deploymentId)
    const build = assignment.buildId !== null ? store.registry.getBuildById(assignment.buildId) : undefined
    let ev: DeviceEvent | undefined
    if (outcome)
      ev = {
        v: PROTOCOL_VERSION,
        deviceId,
        ts: now,
        kind: outcome.kind,
        deploymentId: assignment.deploymentId,
        ...(outcome.code ? { code: outcome.code } : {}),
        message: 'reconciled from the device state (the event was lost)',
      }
    else if (build?.artifact && serving.has(build.artifact))
      ev = {
        v: PROTOCOL_VERSION,
        deviceId,
        ts: now,
        kind: 'activated',
        deploymentId: assignment.deploymentId,
        model: build.model,
        version: build.version,
        artifact: build.artifact,
        message: 'reconciled from the device state: it serves this build',
      }
    if (ev && store.deployments.applyEvent(ev, now)) {
      store.deployments.insertEvent(ev, now)
      changed++
    }
  }
  return changed
}

export interface ReconcilerDeps {
  store: HubStore
  now: () => number
  /** Resends an assignment's command with its original id. */
  resend: (a: DeploymentDeviceRow) => Promise<void>
  /**
   * Whether the device is in a broadcast now (gathering, or confirming chunks): no event comes
   * from it meanwhile, and a resend would only make it join again.
   */
  receiving?: (deviceId: string) => boolean
  onError: (err: Error) => void
}

/** The periodic pass: resends open assignments of online devices idle for `idleMs` [EF-2.1.4]. */
export class Reconciler {
  private timer?: NodeJS.Timeout
  /** Commands resent since start (for /metrics and tests). */
  resent = 0

  constructor(
    private readonly d: ReconcilerDeps,
    /** 30 seconds by default: a lost event is repaired within about twice this. */
    private readonly idleMs = 30_000,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.tick(), Math.max(1000, this.idleMs / 2))
    this.timer.unref()
  }

  async tick(): Promise<void> {
    for (const a of this.d.store.deployments.idleOpen(this.d.now() - this.idleMs)) {
      if (this.d.receiving?.(a.deviceId)) continue
      this.resent++
      await this.d.resend(a).catch(this.d.onError)
    }
  }

  close(): void {
    clearInterval(this.timer)
  }
}
