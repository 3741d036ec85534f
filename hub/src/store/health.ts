// Device health read back from telemetry_batches.device_stats [EF-9.12]: a
// device's stats over time, its latest batch, and the latest of every device
// for fleet-wide distributions. The ingest path writes the column (with the
// execution provider of each model folded in, see TelemetryStore.prepareBatch);
// this module only reads it.
import type { DeviceStats } from '@edgefleet/shared'
import type { Db } from './db.js'

/** device_stats as stored: the agent's DeviceStats plus the provider each model ran on [EF-5.7]. */
type StoredDeviceStats = DeviceStats & { providers?: Record<string, string> }

export interface HealthPoint extends StoredDeviceStats {
  /** End of the batch's interval (device clock), ms. */
  ts: number
}

export interface FleetHealthRow extends HealthPoint {
  deviceId: string
  profile: string
}

const parse = (text: string | null): StoredDeviceStats => {
  if (!text) return {}
  try {
    return JSON.parse(text) as StoredDeviceStats
  } catch {
    return {} // written by this hub from validated batches; a bad row must not break a read
  }
}

export class HealthStore {
  private readonly seriesStmt
  private readonly latestStmt
  private readonly fleetStmt

  constructor(db: Db) {
    // Newest first with a limit, reversed below: a chatty device's page stays bounded.
    this.seriesStmt = db.prepare(
      `SELECT ts_to AS ts, device_stats AS stats FROM telemetry_batches
       WHERE device_id = ? AND ts_to >= ? AND device_stats IS NOT NULL ORDER BY ts_to DESC LIMIT ?`,
    )
    this.latestStmt = db.prepare(
      `SELECT ts_to AS ts, device_stats AS stats FROM telemetry_batches
       WHERE device_id = ? AND device_stats IS NOT NULL ORDER BY ts_to DESC LIMIT 1`,
    )
    // Each device's newest batch: SQLite returns the bare columns of the row holding max(ts_to) in each
    // group; PostgreSQL says the same with DISTINCT ON.
    const from = `FROM telemetry_batches b JOIN devices d ON d.id = b.device_id
       WHERE b.ts_to >= ? AND b.device_stats IS NOT NULL AND d.status = 'active'`
    this.fleetStmt = db.prepare(
      db.dialect === 'sqlite'
        ? `SELECT b.device_id AS deviceId, d.profile AS profile, max(b.ts_to) AS ts, b.device_stats AS stats
       ${from} GROUP BY b.device_id`
        : `SELECT DISTINCT ON (b.device_id) b.device_id AS deviceId, d.profile AS profile, b.ts_to AS ts, b.device_stats AS stats
       ${from} ORDER BY b.device_id, b.ts_to DESC`,
    )
  }

  /** The device's stats since `sinceMs`, oldest first, at most `limit` points (the newest). */
  series(deviceId: string, sinceMs: number, limit = 2000): HealthPoint[] {
    const rows = this.seriesStmt.all(deviceId, sinceMs, limit) as { ts: number; stats: string | null }[]
    return rows.reverse().map((r) => ({ ts: r.ts, ...parse(r.stats) }))
  }

  /** The device's last reported stats, or undefined before its first batch. */
  latest(deviceId: string): HealthPoint | undefined {
    const r = this.latestStmt.get(deviceId) as { ts: number; stats: string | null } | undefined
    return r ? { ts: r.ts, ...parse(r.stats) } : undefined
  }

  /** Each active device's last stats reported since `sinceMs`. */
  fleetLatest(sinceMs: number): FleetHealthRow[] {
    const rows = this.fleetStmt.all(sinceMs) as {
      deviceId: string
      profile: string
      ts: number
      stats: string | null
    }[]
    return rows.map((r) => ({ deviceId: r.deviceId, profile: r.profile, ts: r.ts, ...parse(r.stats) }))
  }
}
