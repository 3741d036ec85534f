// Read models for the console: telemetry as time series (per bucket: requests,
// errors, latency percentiles, confidence) and fleet aggregates computed in
// SQL, so a 10,000-device fleet is summarised without shipping every row.
import { emptyConfidenceCounts, emptyLatencyCounts } from '@edgefleet/shared'
import type { Db } from './db.js'
import { addCounts, histogramQuantile } from '../stats.js'

export interface SeriesPoint {
  ts: number
  version: string
  requests: number
  errors: number
  p50Ms: number | null
  p95Ms: number | null
  confidence: number[]
}

export interface FleetSummary {
  total: number
  online: number
  byProfile: { profile: string; online: number; offline: number }[]
  byVersion: { model: string; version: string; devices: number }[]
}

export class ConsoleQueries {
  constructor(private readonly db: Db) {}

  series(query: { model: string; deviceId?: string; sinceMs: number; bucketMs: number }): SeriesPoint[] {
    const rows = this.db
      .prepare(
        'SELECT ts_to, version, requests, errors, latency, confidence FROM telemetry WHERE model = ? AND ts_to >= ? AND (CAST(? AS TEXT) IS NULL OR device_id = ?) ORDER BY ts_to',
      )
      .iterate(query.model, query.sinceMs, query.deviceId ?? null, query.deviceId ?? null) as Iterable<{
      ts_to: number
      version: string
      requests: number
      errors: number
      latency: string
      confidence: string | null
    }>
    const acc = new Map<
      string,
      { ts: number; version: string; requests: number; errors: number; lat: number[]; conf: number[] }
    >()
    for (const row of rows) {
      const ts = Math.floor(row.ts_to / query.bucketMs) * query.bucketMs
      const key = `${ts}|${row.version}`
      let point = acc.get(key)
      if (!point)
        acc.set(
          key,
          (point = {
            ts,
            version: row.version,
            requests: 0,
            errors: 0,
            lat: emptyLatencyCounts(),
            conf: emptyConfidenceCounts(),
          }),
        )
      point.requests += row.requests
      point.errors += row.errors
      addCounts(point.lat, JSON.parse(row.latency) as number[])
      if (row.confidence) addCounts(point.conf, JSON.parse(row.confidence) as number[])
    }
    return [...acc.values()].map((a) => ({
      ts: a.ts,
      version: a.version,
      requests: a.requests,
      errors: a.errors,
      p50Ms: histogramQuantile(a.lat, 0.5),
      p95Ms: histogramQuantile(a.lat, 0.95),
      confidence: a.conf,
    }))
  }

  fleet(): FleetSummary {
    const prof = this.db
      .prepare(
        'SELECT profile, sum(online) AS online, count(*) - sum(online) AS offline FROM devices GROUP BY profile ORDER BY profile',
      )
      .all() as { profile: string; online: number; offline: number }[]
    const ver = this.db
      .prepare(
        this.db.dialect === 'sqlite'
          ? `SELECT json_extract(m.value, '$.name') AS model, json_extract(m.value, '$.version') AS version, count(*) AS devices
         FROM devices d, json_each(d.state, '$.models') m WHERE d.state IS NOT NULL GROUP BY model, version ORDER BY model, version`
          : `SELECT m.value ->> 'name' AS model, m.value ->> 'version' AS version, count(*) AS devices
         FROM devices d, jsonb_array_elements(CAST(d.state AS JSONB) -> 'models') m WHERE d.state IS NOT NULL
         GROUP BY 1, 2 ORDER BY 1, 2`,
      )
      .all() as { model: string; version: string; devices: number }[]
    return {
      total: prof.reduce((a, p) => a + p.online + p.offline, 0),
      online: prof.reduce((a, p) => a + p.online, 0),
      byProfile: prof,
      byVersion: ver,
    }
  }

  /** Devices page with an optional id/profile/tag substring filter. */
  devicePage(limit: number, offset: number, filter?: string): { ids: string[]; total: number } {
    const like = filter ? `%${filter.replace(/[%_\\]/g, (c) => `\\${c}`)}%` : null
    const where =
      "(CAST(? AS TEXT) IS NULL OR id LIKE ? ESCAPE '\\' OR profile LIKE ? ESCAPE '\\' OR tags LIKE ? ESCAPE '\\')"
    const ids = (
      this.db
        .prepare(`SELECT id FROM devices WHERE ${where} ORDER BY id LIMIT ? OFFSET ?`)
        .all(like, like, like, like, limit, offset) as { id: string }[]
    ).map((r) => r.id)
    const total = (
      this.db.prepare(`SELECT count(*) AS n FROM devices WHERE ${where}`).get(like, like, like, like) as { n: number }
    ).n
    return { ids, total }
  }
}
