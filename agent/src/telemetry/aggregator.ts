// Aggregates inference metrics per model version on the device and cuts them
// into batches [EF-2.6]: counts, errors and a fixed-bucket latency histogram
// that the hub can merge across devices.
import { randomUUID } from 'node:crypto'
import { LATENCY_BUCKETS_MS, type ModelMetrics, type TelemetryBatch } from '@edgefleet/shared'

export function bucketOf(ms: number): number {
  // Linear scan: 16 bounds, faster than a binary search at this size.
  for (let i = 0; i < LATENCY_BUCKETS_MS.length; i++) if (ms <= LATENCY_BUCKETS_MS[i]) return i
  return LATENCY_BUCKETS_MS.length
}

export class Aggregator {
  private current = new Map<string, ModelMetrics>()
  private from: number

  constructor(private readonly deviceId: string, private readonly now: () => number = Date.now) {
    this.from = now()
  }

  record(model: string, version: string, latencyMs: number, ok: boolean): void {
    const key = `${model}@${version}`
    let m = this.current.get(key)
    if (!m) {
      m = { model, version, requests: 0, errors: 0, latency: new Array<number>(LATENCY_BUCKETS_MS.length + 1).fill(0), latencySumMs: 0 }
      this.current.set(key, m)
    }
    m.requests++
    if (!ok) m.errors++
    m.latency[bucketOf(latencyMs)]++
    m.latencySumMs += latencyMs
  }

  /** Cuts the batch since the last cut; undefined when nothing happened and `always` is false. */
  cut(extra: Pick<TelemetryBatch, 'device' | 'dropped'> = {}, always = false): TelemetryBatch | undefined {
    const to = this.now()
    if (this.current.size === 0 && !always) return undefined
    const batch: TelemetryBatch = {
      v: 1,
      deviceId: this.deviceId,
      batchId: randomUUID(),
      from: this.from,
      to,
      models: [...this.current.values()].map((m) => ({ ...m, latencySumMs: Math.round(m.latencySumMs * 1000) / 1000 })),
      ...extra,
    }
    this.current = new Map()
    this.from = to
    return batch
  }
}
