// Telemetry read for rollout gates [EF-8.5]: one model version on a set of
// devices over a time window, merged (requests, errors, latency histogram,
// confidence bins) and shadow agreement of a candidate.
import { emptyConfidenceCounts, emptyLatencyCounts } from '@edgefleet/shared'
import { addCounts } from '../stats.js'
import type { Db } from './db.js'

/** One device's telemetry over one window: the unit the gates resample [EF-8.5]. */
export interface CohortPart {
  deviceId: string
  /** End of the row's window (device clock, ms). */
  ts: number
  requests: number
  errors: number
  latency: number[]
  confidence: number[]
}

export interface CohortStats {
  devices: number
  requests: number
  errors: number
  latency: number[]
  confidence: number[]
  /** The rows merged above, one per device and telemetry window. */
  parts: CohortPart[]
}

/** No devices, no requests: what a cohort's stats start from before rows are added. */
export function emptyCohortStats(): CohortStats {
  return {
    devices: 0,
    requests: 0,
    errors: 0,
    latency: emptyLatencyCounts(),
    confidence: emptyConfidenceCounts(),
    parts: [],
  }
}

export interface ShadowStats {
  runs: number
  agree: number
}

export class RolloutTelemetry {
  private readonly rowsStmt
  private readonly shadowStmt
  private readonly batchesStmt

  constructor(db: Db) {
    this.rowsStmt = db.prepare(
      'SELECT device_id, ts_to, requests, errors, latency, confidence FROM telemetry WHERE model = ? AND version = ? AND ts_to > ? AND ts_to <= ?',
    )
    this.shadowStmt = db.prepare(
      'SELECT device_id, runs, top1_agree FROM telemetry_shadow WHERE model = ? AND candidate = ? AND ts_to > ? AND ts_to <= ?',
    )
    this.batchesStmt = db.prepare('SELECT count(*) AS n FROM telemetry_batches')
  }

  /** `devices` filters by id; `since` is exclusive, `until` inclusive (device clock, ms). */
  cohort(
    model: string,
    version: string,
    accept: (deviceId: string) => boolean,
    since: number,
    until: number,
  ): CohortStats {
    const out = emptyCohortStats()
    const seen = new Set<string>()
    for (const row of this.rowsStmt.iterate(model, version, since, until) as Iterable<{
      device_id: string
      ts_to: number
      requests: number
      errors: number
      latency: string
      confidence: string | null
    }>) {
      if (!accept(row.device_id)) continue
      seen.add(row.device_id)
      const part: CohortPart = {
        deviceId: row.device_id,
        ts: row.ts_to,
        requests: row.requests,
        errors: row.errors,
        latency: addCounts(emptyLatencyCounts(), JSON.parse(row.latency) as number[]),
        confidence: row.confidence
          ? addCounts(emptyConfidenceCounts(), JSON.parse(row.confidence) as number[])
          : emptyConfidenceCounts(),
      }
      out.parts.push(part)
      out.requests += part.requests
      out.errors += part.errors
      addCounts(out.latency, part.latency)
      addCounts(out.confidence, part.confidence)
    }
    out.devices = seen.size
    return out
  }

  shadow(
    model: string,
    candidate: string,
    accept: (deviceId: string) => boolean,
    since: number,
    until: number,
  ): ShadowStats {
    const out = { runs: 0, agree: 0 }
    for (const r of this.shadowStmt.iterate(model, candidate, since, until) as Iterable<{
      device_id: string
      runs: number
      top1_agree: number
    }>) {
      if (!accept(r.device_id)) continue
      out.runs += r.runs
      out.agree += r.top1_agree
    }
    return out
  }

  batches(): number {
    return (this.batchesStmt.get() as { n: number }).n
  }
}
