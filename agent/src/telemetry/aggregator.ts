// Aggregates inference metrics per model version on the device and cuts them
// into batches [EF-2.6]: counts, errors and a fixed-bucket latency histogram
// that the hub can merge across devices, output confidence [EF-2.6.4], input
// statistics [EF-2.6.5] and shadow comparisons [EF-2.6.6].
import { randomUUID } from 'node:crypto'
import {
  PROTOCOL_VERSION,
  CONFIDENCE_BUCKETS,
  LATENCY_BUCKETS_MS,
  type ModelMetrics,
  type ShadowMetrics,
  type TelemetryBatch,
  emptyConfidenceCounts,
  emptyLatencyCounts,
} from '@edgefleet/shared'
import type { Tensor } from '../runtime/session.js'
import type { Comparison } from '../runtime/outputs.js'
import { FeatureAcc } from './features.js'

export function bucketOf(ms: number): number {
  // Linear scan: 16 bounds, faster than a binary search at this size.
  for (let i = 0; i < LATENCY_BUCKETS_MS.length; i++) if (ms <= LATENCY_BUCKETS_MS[i]) return i
  return LATENCY_BUCKETS_MS.length
}

function confidenceBin(c: number): number {
  return Math.min(CONFIDENCE_BUCKETS.length - 1, Math.max(0, Math.floor(c * 10)))
}

interface ModelAcc extends ModelMetrics {
  featureAcc?: Map<string, FeatureAcc>
}

/** Largest finite double: JSON has no Infinity, and "no agreement at all" must still be reported. */
const finite = (x: number) => (Number.isFinite(x) ? x : Number.MAX_VALUE)

export class Aggregator {
  private current = new Map<string, ModelAcc>()
  private shadow = new Map<string, ShadowMetrics>()
  private from: number
  /** Batches cut since start (each gets a fresh batch id). */
  batchesCut = 0

  constructor(
    private readonly deviceId: string,
    private readonly now: () => number = Date.now,
  ) {
    this.from = now()
  }

  private acc(model: string, version: string): ModelAcc {
    const key = `${model}@${version}`
    let m = this.current.get(key)
    if (!m) {
      m = { model, version, requests: 0, errors: 0, latency: emptyLatencyCounts(), latencySumMs: 0 }
      this.current.set(key, m)
    }
    return m
  }

  record(model: string, version: string, latencyMs: number, ok: boolean, provider?: string): void {
    const m = this.acc(model, version)
    if (provider) m.provider = provider
    m.requests++
    if (!ok) m.errors++
    m.latency[bucketOf(latencyMs)]++
    m.latencySumMs += latencyMs
  }

  /** Confidence and input statistics of a served request (after record()). */
  observe(model: string, version: string, inputs: Record<string, Tensor>, confidence: number | undefined): void {
    const m = this.acc(model, version)
    if (confidence !== undefined) (m.confidence ??= emptyConfidenceCounts())[confidenceBin(confidence)]++
    const fa = (m.featureAcc ??= new Map<string, FeatureAcc>())
    for (const [name, t] of Object.entries(inputs)) {
      let f = fa.get(name)
      if (!f) {
        if (fa.size >= 16) continue
        f = new FeatureAcc(name)
        fa.set(name, f)
      }
      f.observe(t)
    }
  }

  private shadowAcc(model: string, version: string, candidate: string): ShadowMetrics {
    const key = `${model}@${version}>${candidate}`
    let acc = this.shadow.get(key)
    if (!acc) {
      acc = {
        model,
        version,
        candidate,
        runs: 0,
        skipped: 0,
        errors: 0,
        top1Agree: 0,
        maxAbsDiff: 0,
        cosineSum: 0,
        latency: emptyLatencyCounts(),
        latencySumMs: 0,
      }
      this.shadow.set(key, acc)
    }
    return acc
  }

  recordShadow(
    model: string,
    version: string,
    candidate: string,
    result: { ok: true; latencyMs: number; cmp: Comparison } | { ok: false; latencyMs: number } | { skipped: true },
  ): void {
    const acc = this.shadowAcc(model, version, candidate)
    if ('skipped' in result) {
      acc.skipped++
      return
    }
    acc.latency[bucketOf(result.latencyMs)]++
    acc.latencySumMs += result.latencyMs
    if (!result.ok) {
      acc.errors++
      return
    }
    acc.runs++
    if (result.cmp.agree) acc.top1Agree++
    acc.maxAbsDiff = Math.max(acc.maxAbsDiff, finite(result.cmp.maxAbsDiff))
    acc.cosineSum += result.cmp.cosine
  }

  /** Cuts the batch since the last cut; undefined when nothing happened and `always` is false. */
  cut(extra: Pick<TelemetryBatch, 'device' | 'dropped' | 'drops'> = {}, always = false): TelemetryBatch | undefined {
    const to = this.now()
    if (this.current.size === 0 && this.shadow.size === 0 && !always) return undefined
    const r3 = (x: number) => Math.round(x * 1000) / 1000
    const batch: TelemetryBatch = {
      v: PROTOCOL_VERSION,
      deviceId: this.deviceId,
      batchId: randomUUID(),
      from: this.from,
      to,
      models: [...this.current.values()].map(({ featureAcc, ...m }) => ({
        ...m,
        latencySumMs: r3(m.latencySumMs),
        ...(featureAcc?.size
          ? { features: [...featureAcc.values()].filter((f) => f.count > 0).map((f) => f.stats()) }
          : {}),
      })),
      ...(this.shadow.size
        ? {
            shadow: [...this.shadow.values()].map((s) => ({
              ...s,
              latencySumMs: r3(s.latencySumMs),
              cosineSum: r3(s.cosineSum),
            })),
          }
        : {}),
      ...extra,
    }
    for (const m of batch.models) if (m.features?.length === 0) delete m.features
    this.current = new Map()
    this.shadow = new Map()
    this.from = to
    this.batchesCut++
    return batch
  }
}
