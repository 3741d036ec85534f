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
function mergeCounts(a: RollupCounts, b: RollupCounts): RollupCounts {
  a.batches += b.batches
  a.requests += b.requests
  a.errors += b.errors
  addCounts(a.latency, b.latency)
  a.latencySumMs += b.latencySumMs
  if (b.confidence) addCounts((a.confidence ??= emptyConfidenceCounts()), b.confidence)
  for (const [name, sketch] of Object.entries(b.features))
    addCounts((a.features[name] ??= emptyFeatureSketch()), sketch)
  return a
}

/** In-memory accumulation of one flush: one entry per rollup key. */
export class RollupAcc {
  readonly rows = new Map<string, RollupRow>()

  constructor(private readonly bucketMs: number) {}

  /** Adds a newly stored batch of a device of `profile` [EF-9.2]. */
  add(b: TelemetryBatch, profile: string): void {
    const bucket = Math.floor(b.to / this.bucketMs) * this.bucketMs
    for (const m of b.models) {
      const key = `${m.model}\u0000${m.version}\u0000${profile}\u0000${bucket}`
      let r = this.rows.get(key)
      if (!r) {
        r = { model: m.model, version: m.version, profile, bucket, ...emptyCounts() }
        this.rows.set(key, r)
      }
      r.batches++
      r.requests += m.requests
      r.errors += m.errors
      addCounts(r.latency, m.latency)
      r.latencySumMs += m.latencySumMs
      if (m.confidence) addCounts((r.confidence ??= emptyConfidenceCounts()), m.confidence)
      for (const f of m.features ?? []) addCounts((r.features[f.input] ??= emptyFeatureSketch()), f.sketch)
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

const fromRaw = (r: RawRollup): RollupRow => ({
  model: r.model,
  version: r.version,
  profile: r.profile,
  bucket: r.bucket,
  batches: r.batches,
  requests: r.requests,
  errors: r.errors,
  latency: JSON.parse(r.latency) as number[],
  latencySumMs: r.latency_sum_ms,
  confidence: r.confidence ? (JSON.parse(r.confidence) as number[]) : null,
  features: r.features ? (JSON.parse(r.features) as Record<string, number[]>) : {},
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
      'INSERT OR REPLACE INTO telemetry_rollups (model, version, profile, bucket, batches, requests, errors, latency, latency_sum_ms, confidence, features) VALUES (?,?,?,?,?,?,?,?,?,?,?)',
    )
    this.byModel = db.prepare(
      'SELECT * FROM telemetry_rollups WHERE model = ? AND (? IS NULL OR version = ?) AND bucket >= ? AND bucket < ? ORDER BY bucket',
    )
  }

  /** Adds a flush's accumulation (RollupAcc rows) to the stored rows; call inside the flush's transaction. */
  merge(rows: Iterable<RollupRow>): void {
    for (const r of rows) {
      const old = this.getOne.get(r.model, r.version, r.profile, r.bucket) as RawRollup | undefined
      const m = old ? mergeCounts(fromRaw(old), r) : r
      this.put.run(
        r.model,
        r.version,
        r.profile,
        r.bucket,
        m.batches,
        m.requests,
        m.errors,
        JSON.stringify(m.latency),
        m.latencySumMs,
        m.confidence ? JSON.stringify(m.confidence) : null,
        JSON.stringify(m.features),
      )
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
