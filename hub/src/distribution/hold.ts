// Maintenance windows and device conditions for plain deployments [EF-8.16]:
// whether a device gets its deploy now or has it held (`waiting_window`,
// `waiting_conditions`), and the scheduler tick that releases held
// assignments once the window is open and the conditions hold. The hold is an
// assignment state in SQLite, so a hub restart loses nothing: the first tick
// after it carries on. Rollouts never come through here: their wave dispatch
// applies the same window and the same profile conditions itself [EF-8.4].
import type { FirmwareProfile } from '@edgefleet/shared'
import type { DeploymentDeviceRow, DeviceRow, HoldState, HubStore } from '../store/index.js'
import { inMaintenanceWindow, nextWindowStart, unmetConditions } from '../rollouts/schedule.js'

/** Why a device's deploy waits, in words for operators (stored as the assignment's message). */
export interface Hold {
  state: HoldState
  message: string
}

/** Next window starts by window, kept until that start passes (a scan costs up to ~0.3 s for a weekly window). */
const nextStarts = new Map<string, { computedAt: number; opensAt: number | null }>()
const HOUR = 3_600_000

/** When the profile's next maintenance window opens after `nowMs` (ms), null when not within 8 days [EF-5.5]. */
export function windowOpensAt(profile: FirmwareProfile, nowMs: number): number | null {
  const w = profile.maintenanceWindow
  const key = `${w.cron}\u0000${w.timezone}`
  const cached = nextStarts.get(key)
  if (cached && cached.computedAt <= nowMs && nowMs < (cached.opensAt ?? cached.computedAt + HOUR))
    return cached.opensAt
  const opensAt = nextWindowStart(w, nowMs)
  nextStarts.set(key, { computedAt: nowMs, opensAt })
  return opensAt
}

/** What a state shows of one condition, for the hold's message. */
function shown(state: DeviceRow['state']): string {
  return `network ${state?.network ?? 'unknown'}, power ${state?.power ?? 'unknown'}, idle ${state?.idle ?? 'unknown'}`
}

/** Hold decisions at one moment: window answers are cached per profile (profiles are few, devices many). */
export class HoldClock {
  private readonly open = new Map<string, boolean>()

  constructor(
    private readonly profiles: ReadonlyMap<string, FirmwareProfile>,
    readonly nowMs: number,
  ) {}

  private windowOpen(profile: FirmwareProfile): boolean {
    let isOpen = this.open.get(profile.id)
    if (isOpen === undefined) {
      isOpen = inMaintenanceWindow(profile.maintenanceWindow, this.nowMs)
      this.open.set(profile.id, isOpen)
    }
    return isOpen
  }

  /**
   * Why the device must wait, or null when it gets its deploy now: outside its profile's window,
   * or its last state does not show the profile's conditions (unknown counts as not shown) [EF-8.16].
   */
  holdFor(device: DeviceRow): Hold | null {
    const profile = this.profiles.get(device.profile)
    if (!profile) return null // no profile, no window to honour (its build would have failed first)
    const window = profile.maintenanceWindow
    if (!this.windowOpen(profile)) {
      const opensAt = windowOpensAt(profile, this.nowMs)
      const when = opensAt === null ? 'not within 8 days' : `opens ${new Date(opensAt).toISOString()}`
      return {
        state: 'waiting_window',
        message: `outside the maintenance window of ${profile.id} ("${window.cron}" ${window.timezone}, ${window.durationMinutes} min); ${when}`,
      }
    }
    const unmet = unmetConditions(window.conditions ?? [], device.state)
    if (unmet.length)
      return {
        state: 'waiting_conditions',
        message: `waiting for ${unmet.join(', ')} (${profile.id}); last state: ${shown(device.state)}`,
      }
    return null
  }
}

export interface HoldSchedulerDeps {
  store: HubStore
  profiles: ReadonlyMap<string, FirmwareProfile>
  now: () => number
  /** Sends a released assignment's deploy command. */
  release: (a: DeploymentDeviceRow) => Promise<void>
  onError: (err: Error) => void
}

/** The tick that releases held assignments whose window opened and conditions hold [EF-8.16]. */
export class HoldScheduler {
  private timer?: NodeJS.Timeout
  private ticking = false
  /** Assignments released since start (for tests and logs). */
  released = 0

  constructor(private readonly d: HoldSchedulerDeps) {}

  /** Ticks every `tickMs` (the hub's default 10 s: windows start on whole minutes, conditions change slowly). */
  start(tickMs: number): void {
    this.timer = setInterval(() => void this.tick(), tickMs)
    this.timer.unref()
  }

  /** One pass over the held assignments; returns how many it released. */
  async tick(): Promise<number> {
    if (this.ticking) return 0 // a slow pass (many releases) is not overlapped by the next
    this.ticking = true
    try {
      return await this.pass()
    } finally {
      this.ticking = false
    }
  }

  private async pass(): Promise<number> {
    const { store } = this.d
    const clock = new HoldClock(this.d.profiles, this.d.now())
    let released = 0
    for (const held of store.deployments.held()) {
      const device = store.devices.get(held.deviceId)
      if (!device) continue
      const hold = clock.holdFor(device)
      if (hold) {
        // Only a changed reason is written: updated_at then says since when it waits for this.
        if (hold.state !== held.state || hold.message !== held.message)
          store.deployments.setHold(held.deploymentId, held.deviceId, hold.state, hold.message, clock.nowMs)
        continue
      }
      if (!store.deployments.setHold(held.deploymentId, held.deviceId, 'pending', null, clock.nowMs)) continue
      released++
      await this.d.release(held).catch(this.d.onError)
    }
    this.released += released
    return released
  }

  close(): void {
    clearInterval(this.timer)
  }
}
