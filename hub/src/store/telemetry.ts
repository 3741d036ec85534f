// Telemetry batches: ingested idempotently by (device, batch id) [EF-2.6],
// many per transaction with their rollups and feed records [EF-9.1].
import {
  EdgeFleetError,
  type Sample,
  type TelemetryBatch,
  type TensorValue,
  emptyLatencyCounts,
  emptyFeatureSketch,
} from '@edgefleet/shared'
import { addCounts, histogramQuantile, overflowCount } from '../stats.js'
import type { Db } from './db.js'
import { SampleStore } from './samples.js'
import { RollupAcc, RollupStore, countColumns, type RollupRow } from './rollups.js'
import { FeedStore, type FeedInput, type FeedLine } from './feed.js'
import { BaselineStore } from './baselines.js'

export * from './samples.js'
export * from './rollups.js'
export * from './feed.js'
export * from './baselines.js'

/** A decoded sample waiting for the next flush, with its raw payload. */
export interface PendingSample {
  sample: Sample
  bytes: number
  payload: string
}

/** A batch encoded for its transaction [EF-9.1]: parameters of its rows, plain data. */
export interface PreparedBatch {
  /** telemetry_batches: device, batch id, from, to, device stats, dropped, drops (received_at is the flush's). */
  batch: [string, string, number, number, string | null, number, string | null]
  rows: unknown[][]
  shadow: unknown[][]
  feed: FeedInput[]
}

/** What one transaction writes [EF-9.1]. */
export interface PreparedFlush {
  batches: readonly PreparedBatch[]
  rollups: readonly RollupRow[]
  samples: readonly PendingSample[]
}

export interface FlushResult {
  batches: number
  duplicateBatches: number
  samples: number
  duplicateSamples: number
  /** Feed records appended in this flush, for live publication after commit [EF-9.7]. */
  feed: FeedLine[]
}

/**
 * device_stats of a batch: the agent's DeviceStats with the execution provider
 * each model ran on folded in [EF-5.7, EF-9.12], so health reads one column.
 */
function deviceStatsColumn(b: TelemetryBatch): string | null {
  const providers = Object.fromEntries(b.models.filter((m) => m.provider).map((m) => [m.model, m.provider]))
  if (!b.device && Object.keys(providers).length === 0) return null
  return JSON.stringify({ ...b.device, ...(Object.keys(providers).length ? { providers } : {}) })
}

/** Default rollup bucket width [EF-9.2]. */
export const DEFAULT_BUCKET_MS = 60_000

const tensorMeta = (t: Record<string, TensorValue>) =>
  Object.fromEntries(Object.entries(t).map(([k, v]) => [k, { type: v.type, dims: v.dims }]))

/** Path of a sample's bytes in the API [EF-9.8]. */
const sampleUrl = (deviceId: string, sampleId: string) =>
  `/api/v1/samples/${encodeURIComponent(deviceId)}/${encodeURIComponent(sampleId)}`

export interface ShadowSummary {
  model: string
  version: string
  candidate: string
  devices: number
  runs: number
  skipped: number
  errors: number
  /** top-1 agreement over all runs, null before the first run [EF-2.6.6]. */
  agreement: number | null
  meanCosine: number | null
  maxAbsDiff: number
  p50Ms: number | null
  p95Ms: number | null
}

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
  /** Requests slower than the last latency bound; a percentile among them reads that bound, a lower bound [EF-2.6.2]. */
  overflowRequests: number
}

/**
 * A batch carries one entry per model version [EF-2.6]; the rows have no key
 * of their own (the batch key makes redelivery harmless), so a batch that
 * repeats a version is refused whole, before anything is written.
 */
export function assertOneEntryPerVersion(b: TelemetryBatch): void {
  const seen = new Set<string>()
  for (const m of b.models) {
    const k = `${m.model}\u0000${m.version}`
    if (seen.has(k))
      throw new EdgeFleetError(
        'EF_ERR_MSG_SCHEMA',
        `/models: ${m.model}@${m.version} appears twice in batch ${b.batchId}`,
      )
    seen.add(k)
  }
}

export class TelemetryStore {
  private readonly insBatch
  private readonly insRow
  private readonly insShadow
  private readonly profileStmt
  private readonly hasBatchStmt
  private readonly profiles = new Map<string, string>()
  /** Captured samples [EF-2.9]. */
  readonly samples: SampleStore
  /** Rollups per model version, profile and time bucket [EF-9.2]. */
  readonly rollups: RollupStore
  /** The retraining feed log [EF-9.6]. */
  readonly feed: FeedStore
  /** Baselines and drift state [EF-9.4, EF-9.5]. */
  readonly baselines: BaselineStore

  constructor(private readonly db: Db) {
    this.profileStmt = db.prepare('SELECT profile FROM devices WHERE id = ?')
    this.hasBatchStmt = db.prepare('SELECT 1 FROM telemetry_batches WHERE device_id = ? AND batch_id = ?')
    this.rollups = new RollupStore(db)
    this.feed = new FeedStore(db)
    this.baselines = new BaselineStore(db)
    this.insBatch = db.prepare(
      'INSERT INTO telemetry_batches (device_id, batch_id, ts_from, ts_to, device_stats, dropped, drops, received_at) VALUES (?,?,?,?,?,?,?,?) ON CONFLICT DO NOTHING',
    )
    this.insRow = db.prepare(
      'INSERT INTO telemetry (device_id, batch_id, ts_to, model, version, requests, errors, latency, latency_sum_ms, confidence, features) VALUES (?,?,?,?,?,?,?,?,?,?,?)',
    )
    this.insShadow = db.prepare(
      'INSERT INTO telemetry_shadow (device_id, batch_id, ts_to, model, version, candidate, runs, skipped, errors, top1_agree, max_abs_diff, cosine_sum, latency, latency_sum_ms) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)',
    )
    this.samples = new SampleStore(db)
  }

  /** Stores a batch once; returns false when this batch id was already stored (redelivery). */
  ingest(b: TelemetryBatch, now: number, bucketMs = DEFAULT_BUCKET_MS): boolean {
    return this.ingestMany([b], [], now, bucketMs).batches === 1
  }

  /** The device's profile for rollups, cached (bounded by the fleet's size). */
  profileOf(deviceId: string): string {
    let p = this.profiles.get(deviceId)
    if (p === undefined) {
      p = (this.profileStmt.get(deviceId) as { profile: string } | undefined)?.profile ?? 'unknown'
      if (this.profiles.size > 100_000) this.profiles.clear()
      this.profiles.set(deviceId, p)
    }
    return p
  }

  /** Whether this batch is stored already (a redelivery). */
  hasBatch(deviceId: string, batchId: string): boolean {
    return this.hasBatchStmt.get(deviceId, batchId) !== undefined
  }

  /**
   * Encodes a new batch for its transaction [EF-9.1]: its rows, shadow rows
   * and feed records, ready to insert (also in another thread: plain data).
   * Its rollup counts are added to `acc`, the flush's accumulation.
   */
  prepareBatch(batch: TelemetryBatch, acc: RollupAcc): PreparedBatch {
    const profile = this.profileOf(batch.deviceId)
    acc.add(batch, profile)
    const shadow: unknown[][] = []
    const feed: FeedInput[] = []
    for (const shadowSummary of batch.shadow ?? []) {
      shadow.push(shadowRow(batch, shadowSummary))
      if (shadowSummary.top1Agree < shadowSummary.runs) feed.push(shadowDisagreement(batch, profile, shadowSummary))
    }
    return {
      batch: [
        batch.deviceId,
        batch.batchId,
        batch.from,
        batch.to,
        deviceStatsColumn(batch),
        batch.dropped ?? 0,
        batch.drops ? JSON.stringify(batch.drops) : null,
      ],
      rows: batch.models.map((model) => [
        batch.deviceId,
        batch.batchId,
        batch.to,
        model.model,
        model.version,
        ...countColumns(model),
      ]),
      shadow,
      feed,
    }
  }

  /**
   * One flush of prepared batches that are not stored yet, with their
   * rollups [EF-9.2], and samples (skipped when stored already) with their
   * feed records [EF-9.6], in one IMMEDIATE transaction. A batch found stored
   * already rolls the whole transaction back (its rollup counts were added to
   * the flush's): the caller checks redeliveries before preparing.
   */
  writePrepared(flush: PreparedFlush, now: number): FlushResult {
    return this.db.transaction(() => {
      const out: FlushResult = { batches: 0, duplicateBatches: 0, samples: 0, duplicateSamples: 0, feed: [] }
      for (const b of flush.batches) {
        if (this.insBatch.run(...b.batch, now).changes === 0)
          throw new Error(`batch ${b.batch[1]} of ${b.batch[0]} is stored already`)
        out.batches++
        for (const row of b.rows) this.insRow.run(row)
        for (const row of b.shadow) this.insShadow.run(row)
        for (const rec of b.feed) out.feed.push(this.feed.append(rec, now))
      }
      this.rollups.merge(flush.rollups)
      for (const prepared of flush.samples) {
        const sample = prepared.sample
        if (!this.samples.ingest(sample, prepared.bytes, prepared.payload, now)) {
          out.duplicateSamples++
          continue
        }
        out.samples++
        out.feed.push(
          this.feed.append(
            {
              model: sample.model,
              version: sample.version,
              kind: 'sample',
              body: {
                deviceId: sample.deviceId,
                profile: this.profileOf(sample.deviceId),
                sampleId: sample.sampleId,
                ts: sample.ts,
                reason: sample.reason,
                confidence: sample.confidence ?? null,
                inputs: tensorMeta(sample.inputs),
                outputs: tensorMeta(sample.outputs),
                ...(sample.shadow
                  ? { shadow: { version: sample.shadow.version, outputs: tensorMeta(sample.shadow.outputs) } }
                  : {}),
                bytes: prepared.bytes,
                url: sampleUrl(sample.deviceId, sample.sampleId),
              },
            },
            now,
          ),
        )
      }
      return out
    })
  }

  /**
   * One flush on this connection [EF-9.1]: every batch and sample not stored
   * yet, their rollups [EF-9.2] and feed records [EF-9.6], in one
   * transaction. Redeliveries are skipped whole: no rows, no rollup counts,
   * no feed record.
   */
  ingestMany(
    batches: readonly TelemetryBatch[],
    samples: readonly PendingSample[],
    now: number,
    bucketMs = DEFAULT_BUCKET_MS,
  ): FlushResult {
    for (const b of batches) assertOneEntryPerVersion(b)
    return this.db.transaction(() => {
      const acc = new RollupAcc(bucketMs)
      const fresh: PreparedBatch[] = []
      const seen = new Set<string>()
      let duplicates = 0
      for (const b of batches) {
        const key = `${b.deviceId}\u0000${b.batchId}`
        if (seen.has(key) || this.hasBatch(b.deviceId, b.batchId)) {
          duplicates++
          continue
        }
        seen.add(key)
        fresh.push(this.prepareBatch(b, acc))
      }
      const r = this.writePrepared({ batches: fresh, rollups: [...acc.rows.values()], samples }, now)
      r.duplicateBatches += duplicates
      return r
    })
  }

  /** Sum of requests and batches per device (offline-resend checks: counts must match the device's). */
  deviceTotals(deviceId: string): { batches: number; requests: number; dropped: number } {
    const b = this.db
      .prepare('SELECT count(*) AS n, coalesce(max(dropped), 0) AS d FROM telemetry_batches WHERE device_id = ?')
      .get(deviceId) as { n: number; d: number }
    const r = this.db
      .prepare('SELECT coalesce(sum(requests), 0) AS n FROM telemetry WHERE device_id = ?')
      .get(deviceId) as { n: number }
    return { batches: b.n, requests: r.n, dropped: b.d }
  }

  /** Shadow comparisons merged across devices, per live version and candidate [EF-2.6.6]. */
  shadowSummary(filter: { model?: string; sinceMs?: number } = {}): ShadowSummary[] {
    const rows = this.db
      .prepare('SELECT * FROM telemetry_shadow WHERE ts_to >= ? AND (CAST(? AS TEXT) IS NULL OR model = ?)')
      .all(filter.sinceMs ?? 0, filter.model ?? null, filter.model ?? null) as {
      device_id: string
      model: string
      version: string
      candidate: string
      runs: number
      skipped: number
      errors: number
      top1_agree: number
      max_abs_diff: number
      cosine_sum: number
      latency: string
    }[]
    const acc = new Map<string, ShadowSummary & { devs: Set<string>; counts: number[]; agree: number; cos: number }>()
    for (const row of rows) {
      const key = `${row.model}@${row.version}>${row.candidate}`
      const summary = acc.get(key) ?? {
        model: row.model,
        version: row.version,
        candidate: row.candidate,
        devices: 0,
        runs: 0,
        skipped: 0,
        errors: 0,
        agreement: null,
        meanCosine: null,
        maxAbsDiff: 0,
        p50Ms: null,
        p95Ms: null,
        devs: new Set<string>(),
        counts: emptyLatencyCounts(),
        agree: 0,
        cos: 0,
      }
      summary.devs.add(row.device_id)
      summary.runs += row.runs
      summary.skipped += row.skipped
      summary.errors += row.errors
      summary.agree += row.top1_agree
      summary.cos += row.cosine_sum
      summary.maxAbsDiff = Math.max(summary.maxAbsDiff, row.max_abs_diff)
      addCounts(summary.counts, JSON.parse(row.latency) as number[])
      acc.set(key, summary)
    }
    return [...acc.values()].map(({ devs, counts, agree, cos, ...a }) => ({
      ...a,
      devices: devs.size,
      agreement: a.runs ? agree / a.runs : null,
      meanCosine: a.runs ? cos / a.runs : null,
      p50Ms: histogramQuantile(counts, 0.5),
      p95Ms: histogramQuantile(counts, 0.95),
    }))
  }

  /** Merged fixed-bin sketches of one model version's inputs in a time window (for PSI) [EF-2.6.5]. */
  featureSketches(model: string, version: string, fromMs = 0, toMs = Number.MAX_SAFE_INTEGER): Map<string, number[]> {
    const rows = this.db
      .prepare(
        'SELECT features FROM telemetry WHERE model = ? AND version = ? AND ts_to >= ? AND ts_to <= ? AND features IS NOT NULL',
      )
      .all(model, version, fromMs, toMs) as { features: string }[]
    const out = new Map<string, number[]>()
    for (const r of rows) {
      for (const f of JSON.parse(r.features) as { input: string; sketch: number[] }[]) {
        out.set(f.input, addCounts(out.get(f.input) ?? emptyFeatureSketch(), f.sketch))
      }
    }
    return out
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
         WHERE ts_to >= ? AND (CAST(? AS TEXT) IS NULL OR model = ?) AND (CAST(? AS TEXT) IS NULL OR device_id = ?)`,
      )
      .all(
        filter.sinceMs ?? 0,
        filter.model ?? null,
        filter.model ?? null,
        filter.deviceId ?? null,
        filter.deviceId ?? null,
      ) as SummaryRow[]
    return [...mergeSummaryRows(rows).values()].map((summary) => ({
      model: summary.model,
      version: summary.version,
      devices: summary.devices.size,
      requests: summary.requests,
      errors: summary.errors,
      p50Ms: histogramQuantile(summary.counts, 0.5),
      p95Ms: histogramQuantile(summary.counts, 0.95),
      p99Ms: histogramQuantile(summary.counts, 0.99),
      meanMs: summary.requests > 0 ? summary.sum / summary.requests : null,
      overflowRequests: overflowCount(summary.counts),
    }))
  }
}

interface SummaryRow {
  device_id: string
  model: string
  version: string
  requests: number
  errors: number
  latency: string
  latency_sum_ms: number
}

interface VersionTotals {
  model: string
  version: string
  devices: Set<string>
  requests: number
  errors: number
  counts: number[]
  sum: number
}

/** Each model version's devices, counts and merged latency histogram. */
function mergeSummaryRows(rows: SummaryRow[]): Map<string, VersionTotals> {
  const acc = new Map<string, VersionTotals>()
  for (const row of rows) {
    const key = `${row.model}@${row.version}`
    const summary = acc.get(key) ?? {
      model: row.model,
      version: row.version,
      devices: new Set(),
      requests: 0,
      errors: 0,
      counts: emptyLatencyCounts(),
      sum: 0,
    }
    summary.devices.add(row.device_id)
    summary.requests += row.requests
    summary.errors += row.errors
    summary.sum += row.latency_sum_ms
    addCounts(summary.counts, JSON.parse(row.latency) as number[])
    acc.set(key, summary)
  }
  return acc
}

type BatchShadowSummary = NonNullable<TelemetryBatch['shadow']>[number]

/** The `telemetry_shadow` row of one shadow summary. */
function shadowRow(batch: TelemetryBatch, shadowSummary: BatchShadowSummary): unknown[] {
  return [
    batch.deviceId,
    batch.batchId,
    batch.to,
    shadowSummary.model,
    shadowSummary.version,
    shadowSummary.candidate,
    shadowSummary.runs,
    shadowSummary.skipped,
    shadowSummary.errors,
    shadowSummary.top1Agree,
    shadowSummary.maxAbsDiff,
    shadowSummary.cosineSum,
    JSON.stringify(shadowSummary.latency),
    shadowSummary.latencySumMs,
  ]
}

/** The feed record of a shadow run whose candidate disagreed with the serving version. */
function shadowDisagreement(batch: TelemetryBatch, profile: string, shadowSummary: BatchShadowSummary): FeedInput {
  return {
    model: shadowSummary.model,
    version: shadowSummary.version,
    kind: 'shadow_disagreement',
    body: {
      deviceId: batch.deviceId,
      profile,
      batchId: batch.batchId,
      from: batch.from,
      to: batch.to,
      candidate: shadowSummary.candidate,
      runs: shadowSummary.runs,
      top1Agree: shadowSummary.top1Agree,
      maxAbsDiff: shadowSummary.maxAbsDiff,
      meanCosine: shadowSummary.runs ? shadowSummary.cosineSum / shadowSummary.runs : null,
    },
  }
}
