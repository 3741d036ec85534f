// Telemetry ingest is idempotent by (device, batch id) [EF-2.6]; quantiles
// come from merged fixed-bucket histograms [EF-2.6.2].
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { LATENCY_BUCKETS_MS, telemetryCodec, type TelemetryBatch } from '@edgefleet/shared'
import { HubStore } from '../../src/store/index.js'
import { histogramQuantile, overflowCount } from '../../src/stats.js'
import { STORE_BACKENDS, openTestStore } from '../fixtures/store-backends.js'

const N = LATENCY_BUCKETS_MS.length + 1
/** 17 counts with the given non-zero entries. */
const hist = (entries: Record<number, number>) => {
  const c = new Array<number>(N).fill(0)
  for (const [i, n] of Object.entries(entries)) c[Number(i)] = n
  return c
}

describe('histogramQuantile', () => {
  it('is null for an empty histogram', () => {
    expect(histogramQuantile(hist({}), 0.5)).toBeNull()
  })

  it('interpolates inside the first bucket from 0', () => {
    // 4 requests ≤ 0.05 ms: the median is the 2nd of 4 → 0.05 × 2/4.
    expect(histogramQuantile(hist({ 0: 4 }), 0.5)).toBeCloseTo(0.025, 12)
    expect(histogramQuantile(hist({ 0: 4 }), 1)).toBeCloseTo(0.05, 12)
  })

  it('interpolates between the bucket bounds', () => {
    // 10 requests in (0.5, 1]: rank 5 → 0.5 + 0.5 × 5/10; rank 1 (q=0) → 0.55; rank 10 → 1.
    const h = hist({ 4: 10 })
    expect(histogramQuantile(h, 0.5)).toBeCloseTo(0.75, 12)
    expect(histogramQuantile(h, 0)).toBeCloseTo(0.55, 12)
    expect(histogramQuantile(h, 1)).toBeCloseTo(1, 12)
  })

  it('walks across buckets by cumulative rank', () => {
    // 1 request in (0.1, 0.2], 3 in (2, 5].
    const h = hist({ 2: 1, 6: 3 })
    expect(histogramQuantile(h, 0.25)).toBeCloseTo(0.2, 12) // rank 1 is the only one in bucket 2
    expect(histogramQuantile(h, 0.5)).toBeCloseTo(3, 12) // rank 2 = 1st of 3 in (2,5] → 2 + 3 × 1/3
    expect(histogramQuantile(h, 0.75)).toBeCloseTo(4, 12) // rank 3 → 2 + 3 × 2/3
    expect(histogramQuantile(h, 0.99)).toBeCloseTo(5, 12) // rank ceil(3.96) = 4
  })

  it('answers the last finite bound (a lower bound) when the rank falls in the overflow bucket [EF-2.6.2]', () => {
    const h = hist({ 0: 1, 16: 1 })
    expect(histogramQuantile(h, 0.5)).toBeCloseTo(0.05, 12)
    expect(histogramQuantile(h, 0.99)).toBe(LATENCY_BUCKETS_MS[LATENCY_BUCKETS_MS.length - 1])
    expect(Number.isFinite(histogramQuantile(hist({ 16: 5 }), 0.5))).toBe(true)
    expect(overflowCount(h)).toBe(1)
    expect(overflowCount(hist({ 3: 9 }))).toBe(0)
  })
})

const batch = (deviceId: string, batchId: string, to: number, models: TelemetryBatch['models']): TelemetryBatch =>
  telemetryCodec.check({ v: 1, deviceId, batchId, from: to - 1000, to, models, dropped: 2, device: { rssBytes: 1024 } })

const metrics = (model: string, version: string, requests: number, latency: number[], sum: number, errors = 0) => ({
  model,
  version,
  requests,
  errors,
  latency,
  latencySumMs: sum,
})

describe.each(STORE_BACKENDS)('TelemetryStore on %s', (backend) => {
  let store: HubStore
  let closeStore: () => void
  beforeAll(async () => {
    ;({ store, close: closeStore } = await openTestStore(backend))
  })
  afterAll(() => closeStore())

  it('stores a batch once: the same batch id again returns false and adds nothing', () => {
    const b = batch('d1', 'batch-0001', 10_000, [
      metrics('wake', '1', 4, hist({ 4: 4 }), 3),
      metrics('wake', '2', 2, hist({ 5: 2 }), 3, 1),
    ])
    expect(store.telemetry.ingest(b, 10_500)).toBe(true)
    expect(store.telemetry.countRows()).toEqual({ batches: 1, rows: 2 })
    expect(store.telemetry.ingest(b, 10_600)).toBe(false)
    // Same id with different content is still a redelivery.
    expect(store.telemetry.ingest({ ...b, models: [metrics('wake', '1', 99, hist({ 0: 99 }), 1)] }, 10_700)).toBe(false)
    expect(store.telemetry.countRows()).toEqual({ batches: 1, rows: 2 })
    // The same batch id from another device is a different batch.
    expect(
      store.telemetry.ingest(batch('d2', 'batch-0001', 11_000, [metrics('wake', '1', 6, hist({ 4: 6 }), 4.5)]), 11_100),
    ).toBe(true)
    expect(store.telemetry.countRows()).toEqual({ batches: 2, rows: 3 })
  })

  it('rolls back a batch whose rows fail as a whole', () => {
    // Two entries for one model version: the batch is refused whole, nothing of it stays [EF-2.6].
    const bad = batch('d3', 'batch-bad1', 12_000, [
      metrics('wake', '1', 1, hist({ 0: 1 }), 0.01),
      metrics('wake', '1', 1, hist({ 0: 1 }), 0.01),
    ])
    expect(() => store.telemetry.ingest(bad, 12_100)).toThrow()
    expect(store.telemetry.countRows()).toEqual({ batches: 2, rows: 3 })
  })

  it('summarises per model version, merging devices but never versions [EF-2.6.1]', () => {
    const s = store.telemetry.summary()
    const v1 = s.find((x) => x.version === '1')!
    const v2 = s.find((x) => x.version === '2')!
    expect(s).toHaveLength(2)
    expect(v1).toMatchObject({ model: 'wake', devices: 2, requests: 10, errors: 0 })
    expect(v1.meanMs).toBeCloseTo(7.5 / 10, 12)
    // 10 requests in (0.5, 1]: p50 = rank 5 → 0.75.
    expect(v1.p50Ms).toBeCloseTo(0.75, 12)
    expect(v2).toMatchObject({ devices: 1, requests: 2, errors: 1 })
    expect(store.telemetry.summary({ deviceId: 'd2' })).toHaveLength(1)
    expect(store.telemetry.summary({ model: 'other' })).toEqual([])
    expect(store.telemetry.summary({ sinceMs: 10_500 }).map((x) => [x.version, x.devices])).toEqual([['1', 1]])
  })
})
