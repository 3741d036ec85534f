// Device-health alerts [EF-9.12]: each telemetry batch's device stats are
// compared with the thresholds of the device's profile (`health` in
// firmware-profiles/*.json). Crossing a threshold records one `health_alert`
// event in the device's log (code EF_ERR_DEVICE_HEALTH_THRESHOLD, the metric,
// value and limit in the message); coming back records `health_recovered`.
// Edge-triggered, so a device that stays hot is one event, not one per batch.
import type { DeviceStats, FirmwareProfile } from '@edgefleet/shared'
import type { HubStore } from '../store/index.js'

type Thresholds = NonNullable<FirmwareProfile['health']>

export interface HealthCheck {
  metric: 'rss' | 'cpuLoad' | 'freeStorage' | 'temperature'
  value: number
  limit: number
  /** Human text for the event log. */
  text: string
}

const MiB = 1024 * 1024

/** The thresholds `stats` breaks (metrics the device did not report are not judged). */
export function breaches(stats: DeviceStats, thresholds: Thresholds): HealthCheck[] {
  const out: HealthCheck[] = []
  if (thresholds.maxRssMb !== undefined && stats.rssBytes !== undefined && stats.rssBytes > thresholds.maxRssMb * MiB)
    out.push({
      metric: 'rss',
      value: stats.rssBytes,
      limit: thresholds.maxRssMb * MiB,
      text: `agent RSS ${(stats.rssBytes / MiB).toFixed(0)} MiB > ${thresholds.maxRssMb} MiB`,
    })
  if (thresholds.maxCpuLoad !== undefined && stats.cpuLoad !== undefined && stats.cpuLoad > thresholds.maxCpuLoad)
    out.push({
      metric: 'cpuLoad',
      value: stats.cpuLoad,
      limit: thresholds.maxCpuLoad,
      text: `load ${stats.cpuLoad} > ${thresholds.maxCpuLoad}`,
    })
  if (
    thresholds.minFreeStorageMb !== undefined &&
    stats.freeStorageBytes !== undefined &&
    stats.freeStorageBytes < thresholds.minFreeStorageMb * MiB
  )
    out.push({
      metric: 'freeStorage',
      value: stats.freeStorageBytes,
      limit: thresholds.minFreeStorageMb * MiB,
      text: `free storage ${(stats.freeStorageBytes / MiB).toFixed(0)} MiB < ${thresholds.minFreeStorageMb} MiB`,
    })
  if (
    thresholds.maxTemperatureC !== undefined &&
    stats.temperatureC !== undefined &&
    stats.temperatureC > thresholds.maxTemperatureC
  )
    out.push({
      metric: 'temperature',
      value: stats.temperatureC,
      limit: thresholds.maxTemperatureC,
      text: `temperature ${stats.temperatureC} °C > ${thresholds.maxTemperatureC} °C`,
    })
  return out
}

export class HealthAlerts {
  /** deviceId → metrics in breach now (in memory: after a hub restart a breach still in force alerts once more). */
  private readonly active = new Map<string, Set<HealthCheck['metric']>>()

  constructor(private readonly deps: { store: HubStore; profiles: Map<string, FirmwareProfile>; now: () => number }) {}

  /** Checks one batch's stats; records alert/recovery events on transitions. */
  check(deviceId: string, ts: number, stats: DeviceStats | undefined): void {
    if (!stats) return
    const profile = this.deps.store.devices.get(deviceId)?.profile
    const t = profile ? this.deps.profiles.get(profile)?.health : undefined
    if (!t) return
    const now = breaches(stats, t)
    const before = this.active.get(deviceId) ?? new Set()
    const after = new Set(now.map((b) => b.metric))
    for (const b of now) if (!before.has(b.metric)) this.record(deviceId, ts, 'health_alert', `${b.metric}: ${b.text}`)
    for (const m of before) if (!after.has(m)) this.record(deviceId, ts, 'health_recovered', `${m} back within limits`)
    if (after.size) this.active.set(deviceId, after)
    else this.active.delete(deviceId)
  }

  private record(deviceId: string, ts: number, kind: 'health_alert' | 'health_recovered', message: string): void {
    this.deps.store.deployments.insertEvent(
      {
        v: 1,
        deviceId,
        ts,
        kind,
        ...(kind === 'health_alert' ? { code: 'EF_ERR_DEVICE_HEALTH_THRESHOLD' as const } : {}),
        message,
      },
      this.deps.now(),
    )
  }
}
