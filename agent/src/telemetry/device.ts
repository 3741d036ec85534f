// Device stats for telemetry [EF-2.6.7]: RSS, load, free storage, and the
// hottest thermal zone where /sys shows one. Reads are cheap and synchronous;
// they run once per batch cut, never on the serving path.
import { readFileSync, readdirSync, statfsSync } from 'node:fs'
import { join } from 'node:path'
import { loadavg } from 'node:os'
import type { DeviceStats } from '@edgefleet/shared'

export function freeStorageBytes(dir: string): number | undefined {
  try {
    const s = statfsSync(dir)
    return s.bavail * s.bsize
  } catch {
    return undefined
  }
}

/** Highest reading of /sys/class/thermal/thermal_zone*\/temp (millidegrees), in °C. */
function temperatureC(root = '/sys/class/thermal'): number | undefined {
  let zones: string[]
  try {
    zones = readdirSync(root).filter((z) => z.startsWith('thermal_zone'))
  } catch {
    return undefined
  }
  let best: number | undefined
  for (const z of zones) {
    try {
      const milli = Number(readFileSync(join(root, z, 'temp'), 'utf8').trim())
      if (Number.isFinite(milli) && (best === undefined || milli / 1000 > best)) best = milli / 1000
    } catch {
      /* zone without a readable sensor */
    }
  }
  return best
}

export function deviceStats(dataDir: string, queued?: number): DeviceStats {
  const t = temperatureC()
  const free = freeStorageBytes(dataDir)
  return {
    rssBytes: process.memoryUsage.rss(),
    cpuLoad: Math.round(loadavg()[0] * 100) / 100,
    ...(free !== undefined ? { freeStorageBytes: free } : {}),
    ...(t !== undefined ? { temperatureC: t } : {}),
    ...(queued !== undefined ? { queued } : {}),
  }
}
