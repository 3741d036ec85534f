// Telemetry rollups per (model, version, profile, time bucket) [EF-9.2]: the
// queryable, long-lived form of telemetry. Rows merge by adding counts, so a
// flush accumulates in memory and touches each key once per transaction.
import { type TelemetryBatch, emptyConfidenceCounts, emptyLatencyCounts, emptyFeatureSketch } from '@edgefleet/shared'
import { addCounts } from '../stats.js'
import type { Db } from './db.js'

export interface RollupCounts {
  batches: number
  requests: number
  errors: number
  latency: number[]
  latencySumMs: number
  /** null when no batch carried confidence [EF-2.6.4]. */
  confidence: number[] | null
  /** input name → FEATURE_BUCKETS sketch (+ overflow) [EF-2.6.5]. */
  features: Record<string, number[]>
}

interface RollupKey {
  model: string
  version: string
  profile: string
  bucket: number
}

export type RollupRow = RollupKey & RollupCounts

const emptyCounts = (): RollupCounts => ({
  batches: 0,
  requests: 0,
  errors: 0,
  latency: emptyLatencyCounts(),
  latencySumMs: 0,
  confidence: null,
  features: {},
})

/** Adds `b` into `a` (in place). */
function mergeCounts(total: RollupCounts, added: RollupCounts): RollupCounts {
  total.batches += added.batches
  total.requests += added.requests
  total.errors += added.errors
  addCounts(total.latency, added.latency)
  total.latencySumMs += added.latencySumMs
  if (added.confidence) addCounts((total.confidence ??= emptyConfidenceCounts()), added.confidence)
  for (const [name, sketch] of Object.entries(added.features))
    addCounts((total.features[name] ??= emptyFeatureSketch()), sketch)
  return total
}

/** In-memory accumulation of one flush: one entry per rollup key. */
export class RollupAcc {
  readonly rows = new Map<string, RollupRow>()

  constructor(private readonly bucketMs: number) {}

  /** Adds a newly stored batch of a device of `profile` [EF-9.2]. */
  add(b: TelemetryBatch, profile: string): void {
    const bucket = Math.floor(b.to / this.bucketMs) * this.bucketMs
    for (const model of b.models) {
      const key = `${model.model}\u0000${model.version}\u0000${profile}\u0000${bucket}`
      let row = this.rows.get(key)
      if (!row) {
        row = { model: model.model, version: model.version, profile, bucket, ...emptyCounts() }
        this.rows.set(key, row)
      }
      row.batches++
      row.requests += model.requests
      row.errors += model.errors
      addCounts(row.latency, model.latency)
      row.latencySumMs += model.latencySumMs
      if (model.confidence) addCounts((row.confidence ??= emptyConfidenceCounts()), model.confidence)
      for (const f of model.features ?? []) addCounts((row.features[f.input] ??= emptyFeatureSketch()), f.sketch)
    }
  }
}

interface RawRollup {
  model: string
  version: string
  profile: string
  bucket: number
  batches: number
  requests: number
  errors: number
  latency: string
  latency_sum_ms: number
  confidence: string | null
  features: string | null
}

const fromRaw = (raw: RawRollup): RollupRow => ({
  model: raw.model,
  version: raw.version,
  profile: raw.profile,
  bucket: raw.bucket,
  batches: raw.batches,
  requests: raw.requests,
  errors: raw.errors,
  latency: JSON.parse(raw.latency) as number[],
  latencySumMs: raw.latency_sum_ms,
  confidence: raw.confidence ? (JSON.parse(raw.confidence) as number[]) : null,
  features: raw.features ? (JSON.parse(raw.features) as Record<string, number[]>) : {},
})

export class RollupStore {
  private readonly getOne
  private readonly put
  private readonly byModel

  constructor(private readonly db: Db) {
    this.getOne = db.prepare(
      'SELECT * FROM telemetry_rollups WHERE model = ? AND version = ? AND profile = ? AND bucket = ?',
    )
    this.put = db.prepare(
      'INSERT INTO telemetry_rollups (model, version, profile, bucket, batches, requests, errors, latency, latency_sum_ms, confidence, features) VALUES (?,?,?,?,?,?,?,?,?,?,?) ' +
        'ON CONFLICT (model, version, profile, bucket) DO UPDATE SET batches = excluded.batches, requests = excluded.requests, errors = excluded.errors, latency = excluded.latency, latency_sum_ms = excluded.latency_sum_ms, confidence = excluded.confidence, features = excluded.features',
    )
    this.byModel = db.prepare(
      'SELECT * FROM telemetry_rollups WHERE model = ? AND (CAST(? AS TEXT) IS NULL OR version = ?) AND bucket >= ? AND bucket < ? ORDER BY bucket',
    )
  }

  /** Adds a flush's accumulation (RollupAcc rows) to the stored rows; call inside the flush's transaction. */
  merge(rows: Iterable<RollupRow>): void {
    for (const r of rows) {
      const old = this.getOne.get(r.model, r.version, r.profile, r.bucket) as RawRollup | undefined
      const merged = old ? mergeCounts(fromRaw(old), r) : r
      this.put.run(r.model, r.version, r.profile, r.bucket, merged.batches, ...countColumns(merged))
    }
  }

  /** Rows of one model (optionally one version) with bucket in [fromMs, toMs). */
  rows(model: string, version: string | null, fromMs: number, toMs: number): RollupRow[] {
    return (this.byModel.all(model, version, version, fromMs, toMs) as RawRollup[]).map(fromRaw)
  }

  /** Merged counts per (version, profile) over [fromMs, toMs); profile `*` merges all profiles. */
  window(
    model: string,
    version: string | null,
    fromMs: number,
    toMs: number,
  ): Map<string, RollupCounts & { version: string; profile: string }> {
    const out = new Map<string, RollupCounts & { version: string; profile: string }>()
    for (const r of this.rows(model, version, fromMs, toMs)) {
      for (const profile of [r.profile, '*']) {
        const key = `${r.version}\u0000${profile}`
        const a = out.get(key) ?? { version: r.version, profile, ...emptyCounts() }
        mergeCounts(a, r)
        out.set(key, a)
      }
    }
    return out
  }

  /** (model, version) pairs with rollups in [fromMs, toMs), and when each was first seen. */
  active(fromMs: number, toMs: number): { model: string; version: string }[] {
    return this.db
      .prepare('SELECT DISTINCT model, version FROM telemetry_rollups WHERE bucket >= ? AND bucket < ?')
      .all(fromMs, toMs) as { model: string; version: string }[]
  }

  /** First bucket in which a version was seen in the field, or null. */
  firstSeen(model: string, version: string): number | null {
    const r = this.db
      .prepare('SELECT min(bucket) AS b FROM telemetry_rollups WHERE model = ? AND version = ?')
      .get(model, version) as { b: number | null }
    return r.b
  }

  count(): number {
    return (this.db.prepare('SELECT count(*) AS n FROM telemetry_rollups').get() as { n: number }).n
  }
}

/**
 * The count columns a telemetry row and a rollup row share, in their order:
 * requests, errors, latency histogram, latency sum, confidence bins, feature sketches.
 */
export function countColumns(counts: {
  requests: number
  errors: number
  latency: number[]
  latencySumMs: number
  confidence?: number[] | null
  features?: unknown
}): unknown[] {
  return [
    counts.requests,
    counts.errors,
    JSON.stringify(counts.latency),
    counts.latencySumMs,
    counts.confidence ? JSON.stringify(counts.confidence) : null,
    counts.features ? JSON.stringify(counts.features) : null,
  ]
}
