// Time and device-state rules for rollouts [EF-8.4]: cron start times and
// per-profile maintenance windows (node-cron's matcher, in the window's time
// zone, evaluated at the time the engine is given: a fake clock in tests),
// and device-state conditions read from the last state [EF-2.1.2].
import cron, { type ScheduledTask } from 'node-cron'
import type { DeviceState, FirmwareProfile } from '@edgefleet/shared'
import type { Condition } from './spec.js'

const MINUTE = 60_000
const matchers = new Map<string, ScheduledTask>()

/** A never-started node-cron task used only for `match()` (cached: one per expression and zone). */
function matcher(expr: string, timezone?: string): ScheduledTask {
  const key = `${expr}\u0000${timezone ?? ''}`
  let t = matchers.get(key)
  if (!t) {
    t = cron.createTask(expr, () => undefined, timezone ? { timezone } : {})
    matchers.set(key, t)
  }
  return t
}

/** True when a minute in (fromMs, toMs] matches the cron expression (at its 0th second). */
export function cronFiredBetween(expr: string, timezone: string | undefined, fromMs: number, toMs: number): boolean {
  const m = matcher(expr, timezone)
  // Scan at most a day of minutes; a longer gap (hub down) fires once on the next tick.
  const first = Math.max(Math.floor(fromMs / MINUTE) + 1, Math.floor(toMs / MINUTE) - 1440)
  for (let t = first; t <= Math.floor(toMs / MINUTE); t++) if (m.match(new Date(t * MINUTE))) return true
  return fromMs < toMs - 1440 * MINUTE
}

/** Whether `nowMs` falls inside the profile's maintenance window [EF-5.5]: a cron start less than durationMinutes ago. */
export function inMaintenanceWindow(w: FirmwareProfile['maintenanceWindow'], nowMs: number): boolean {
  const m = matcher(w.cron, w.timezone)
  const minute = Math.floor(nowMs / MINUTE)
  for (let k = 0; k < w.durationMinutes; k++) if (m.match(new Date((minute - k) * MINUTE))) return true
  return false
}

/**
 * The first window start after `nowMs` (ms, at its 0th second), or null when none comes within
 * `horizonMinutes` (8 days by default: every daily and weekly window; a minute's match costs ~25 µs).
 */
export function nextWindowStart(
  w: FirmwareProfile['maintenanceWindow'],
  nowMs: number,
  horizonMinutes = 8 * 1440,
): number | null {
  const m = matcher(w.cron, w.timezone)
  const first = Math.floor(nowMs / MINUTE) + 1
  for (let t = first; t <= first + horizonMinutes; t++) if (m.match(new Date(t * MINUTE))) return t * MINUTE
  return null
}

/** Caches window answers per profile for one tick (profiles are few, devices many). */
export class WindowCache {
  private readonly cache = new Map<string, boolean>()
  constructor(
    private readonly profiles: Map<string, FirmwareProfile>,
    private readonly nowMs: number,
  ) {}
  open(profile: string): boolean {
    let v = this.cache.get(profile)
    if (v === undefined) {
      const p = this.profiles.get(profile)
      v = p ? inMaintenanceWindow(p.maintenanceWindow, this.nowMs) : true
      this.cache.set(profile, v)
    }
    return v
  }
}

/** Conditions the device's last state does not show (unknown counts as not shown). */
export function unmetConditions(conditions: readonly Condition[], state: DeviceState | null): Condition[] {
  return conditions.filter((c) => {
    if (c === 'unmetered') return state?.network !== 'unmetered'
    if (c === 'charging') return state?.power !== 'charging'
    return state?.idle !== true
  })
}

export function closeMatchers(): void {
  for (const t of matchers.values()) void t.destroy()
  matchers.clear()
}
