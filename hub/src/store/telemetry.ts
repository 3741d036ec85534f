// Telemetry batches: ingested idempotently by (device, batch id) [EF-2.6].
import { LATENCY_BUCKETS_MS, type TelemetryBatch } from '@edgefleet/shared'
import type { Db } from './db.js'

export interface TelemetrySummary {
  model: string
  version: string
  devices: number
  requests: number
  errors: number
  p50Ms: number | null
  p95Ms: number | null
  p99Ms: number | null
  meanMs: number | null
}

/** Quantile from merged bucket counts: upper bound of the bucket holding the q-th request. */
export function histogramQuantile(counts: readonly number[], q: number): number | null {
  const total = counts.reduce((a, b) => a + b, 0)
  if (total === 0) return null
  const rank = Math.max(1, Math.ceil(q * total))
  let seen = 0
  for (let i = 0; i < counts.length; i++) {
    seen += counts[i]
    if (seen >= rank) {
      if (i >= LATENCY_BUCKETS_MS.length) return Number.POSITIVE_INFINITY
      // Interpolate linearly inside the bucket: better than its bound for coarse buckets.
      const lo = i === 0 ? 0 : LATENCY_BUCKETS_MS[i - 1]
      const hi = LATENCY_BUCKETS_MS[i]
      const before = seen - counts[i]
      return lo + ((hi - lo) * (rank - before)) / counts[i]
    }
  }
  return null
}

export class TelemetryStore {
  private readonly insBatch
  private readonly insRow

  constructor(private readonly db: Db) {
    this.insBatch = db.prepare('INSERT OR IGNORE INTO telemetry_batches (device_id, batch_id, ts_from, ts_to, device_stats, dropped, received_at) VALUES (?,?,?,?,?,?,?)')
    this.insRow = db.prepare('INSERT INTO telemetry (device_id, batch_id, ts_to, model, version, requests, errors, latency, latency_sum_ms) VALUES (?,?,?,?,?,?,?,?,?)')
  }

  /** Stores a batch once; returns false when this batch id was already stored (redelivery). */
  ingest(b: TelemetryBatch, now: number): boolean {
    return this.db.transaction(() => {
      const r = this.insBatch.run(b.deviceId, b.batchId, b.from, b.to, b.device ? JSON.stringify(b.device) : null, b.dropped ?? 0, now)
      if (r.changes === 0) return false
      for (const m of b.models) {
        this.insRow.run(b.deviceId, b.batchId, b.to, m.model, m.version, m.requests, m.errors, JSON.stringify(m.latency), m.latencySumMs)
      }
      return true
    })()
  }

  countRows(): { batches: number; rows: number } {
    const batches = (this.db.prepare('SELECT count(*) AS n FROM telemetry_batches').get() as { n: number }).n
    const rows = (this.db.prepare('SELECT count(*) AS n FROM telemetry').get() as { n: number }).n
    return { batches, rows }
  }

  /** Merges histograms across devices for each model version since `sinceMs`. */
  summary(filter: { model?: string; deviceId?: string; sinceMs?: number } = {}): TelemetrySummary[] {
    const rows = this.db
      .prepare(
        `SELECT device_id, model, version, requests, errors, latency, latency_sum_ms FROM telemetry
         WHERE ts_to >= ? AND (? IS NULL OR model = ?) AND (? IS NULL OR device_id = ?)`,
      )
      .all(filter.sinceMs ?? 0, filter.model ?? null, filter.model ?? null, filter.deviceId ?? null, filter.deviceId ?? null) as {
      device_id: string
      model: string
      version: string
      requests: number
      errors: number
      latency: string
      latency_sum_ms: number
    }[]
    const acc = new Map<string, { model: string; version: string; devices: Set<string>; requests: number; errors: number; counts: number[]; sum: number }>()
    for (const r of rows) {
      const key = `${r.model}@${r.version}`
      const a = acc.get(key) ?? { model: r.model, version: r.version, devices: new Set(), requests: 0, errors: 0, counts: new Array(LATENCY_BUCKETS_MS.length + 1).fill(0), sum: 0 }
      a.devices.add(r.device_id)
      a.requests += r.requests
      a.errors += r.errors
      a.sum += r.latency_sum_ms
      const c = JSON.parse(r.latency) as number[]
      for (let i = 0; i < a.counts.length; i++) a.counts[i] += c[i] ?? 0
      acc.set(key, a)
    }
    return [...acc.values()].map((a) => ({
      model: a.model,
      version: a.version,
      devices: a.devices.size,
      requests: a.requests,
      errors: a.errors,
      p50Ms: histogramQuantile(a.counts, 0.5),
      p95Ms: histogramQuantile(a.counts, 0.95),
      p99Ms: histogramQuantile(a.counts, 0.99),
      meanMs: a.requests > 0 ? a.sum / a.requests : null,
    }))
  }
}
