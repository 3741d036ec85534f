// Per-version aggregation and batch cutting [EF-2.6].
import { describe, expect, it } from 'vitest'
import { LATENCY_BUCKETS_MS, telemetryCodec } from '@edgefleet/shared'
import { Aggregator, bucketOf } from '../../src/telemetry/aggregator.js'

describe('bucketOf [EF-2.6.2]', () => {
  it('puts a latency on its bucket bound into that bucket, just above it into the next', () => {
    LATENCY_BUCKETS_MS.forEach((bound, i) => {
      expect(bucketOf(bound)).toBe(i)
      expect(bucketOf(bound * 1.0001)).toBe(i + 1)
    })
  })

  it('bucket 0 starts at 0 and the overflow bucket is last', () => {
    expect(bucketOf(0)).toBe(0)
    expect(bucketOf(0.01)).toBe(0)
    expect(bucketOf(5000.01)).toBe(LATENCY_BUCKETS_MS.length)
    expect(bucketOf(1e9)).toBe(16)
    expect(bucketOf(Number.POSITIVE_INFINITY)).toBe(16)
  })
})

describe('Aggregator', () => {
  it('counts per model version, cuts a valid batch and starts over', () => {
    let now = 1000
    const agg = new Aggregator('dev-1', () => now)
    expect(agg.cut()).toBeUndefined()
    agg.record('wake', '1', 0.3, true)
    agg.record('wake', '1', 0.3, false)
    agg.record('wake', '1', 7000, true)
    agg.record('wake', '2', 0.04, true)
    now = 6000
    const batch = agg.cut({ dropped: 3 })!
    expect(() => telemetryCodec.check(batch)).not.toThrow()
    expect(() => telemetryCodec.decode(telemetryCodec.encode(batch))).not.toThrow()
    expect(batch).toMatchObject({ v: 1, deviceId: 'dev-1', from: 1000, to: 6000, dropped: 3 })
    expect(batch.batchId.length).toBeGreaterThanOrEqual(8)
    const v1 = batch.models.find((m) => m.version === '1')!
    expect(v1).toMatchObject({ model: 'wake', requests: 3, errors: 1 })
    expect(v1.latency).toHaveLength(17)
    expect(v1.latency[3]).toBe(2)
    expect(v1.latency[16]).toBe(1)
    expect(v1.latencySumMs).toBeCloseTo(7000.6, 6)
    expect(batch.models.find((m) => m.version === '2')!.latency[0]).toBe(1)

    // cut() resets: nothing recorded since → nothing to send, unless forced.
    expect(agg.cut()).toBeUndefined()
    now = 9000
    const empty = agg.cut({}, true)!
    expect(empty.models).toEqual([])
    expect(empty.from).toBe(6000)
    expect(empty.to).toBe(9000)
    expect(empty.batchId).not.toBe(batch.batchId)
    expect(() => telemetryCodec.check(empty)).not.toThrow()
  })

  it('rounds the latency sum to microseconds', () => {
    const a = new Aggregator('dev-1', () => 0)
    a.record('m', '1', 1 / 3, true)
    expect(a.cut()!.models[0].latencySumMs).toBe(0.333)
  })
})
