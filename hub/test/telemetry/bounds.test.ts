// Data-plane bounds on telemetry, against a real hub with a real MQTT device:
// latencies past the last bucket keep every read route answering [EF-2.6.2],
// and entries for versions the device was never sent are dropped, counted and
// logged instead of entering the fleet's numbers [EF-2.6.8].
import { randomUUID } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { MqttClient } from 'mqtt'
import { LATENCY_BUCKETS_MS, topics, type TelemetryBatch } from '@edgefleet/shared'
import { connectDevice, markSent, provision, startTestHub, waitFor, type TestHub } from '../fixtures/hub.js'

const DEVICE = 'dev-bounds'
const LAST = LATENCY_BUCKETS_MS.length // index of the open-ended bucket

function entry(model: string, version: string, requests: number, errors: number, bucket = 4) {
  const latency = new Array<number>(LATENCY_BUCKETS_MS.length + 1).fill(0)
  latency[bucket] = requests
  return { model, version, requests, errors, latency, latencySumMs: requests * (bucket === LAST ? 7000 : 0.7) }
}

const batchOf = (models: TelemetryBatch['models']): TelemetryBatch => ({
  v: 1,
  deviceId: DEVICE,
  batchId: randomUUID(),
  from: Date.now() - 1000,
  to: Date.now(),
  models,
})

describe('telemetry bounds', () => {
  let testHub: TestHub
  let client: MqttClient
  const get = async (url: string) => {
    const r = await testHub.hub.api.inject({ method: 'GET', url })
    return { status: r.statusCode, body: r.body, json: () => r.json<Record<string, unknown>>() }
  }
  const stored = (b: TelemetryBatch) => testHub.hub.store.telemetry.hasBatch(DEVICE, b.batchId)
  const dropped = () => testHub.hub.metrics.dropped.EF_ERR_TELEMETRY_UNKNOWN_VERSION ?? 0
  /** The device's state, serving one model version. */
  const stateServing = (name: string, version: string) =>
    JSON.stringify({
      v: 1,
      deviceId: DEVICE,
      online: true,
      ts: Date.now(),
      models: [{ name, version, precision: 'fp32', artifact: 'a'.repeat(64), slot: 'a' }],
    })

  beforeAll(async () => {
    testHub = await startTestHub()
    const secret = await provision(testHub.hub, DEVICE)
    markSent(testHub.hub, DEVICE, 'wake', '1.0.0')
    client = await connectDevice(testHub.hub.mqttUrl, DEVICE, secret)
  })
  afterAll(async () => {
    await client?.endAsync()
    await testHub?.close()
  })

  it('a batch of requests slower than 5 s keeps the summary, series and CLI data at 200 [EF-2.6.2]', async () => {
    const slow = batchOf([entry('wake', '1.0.0', 50, 0, LAST)])
    await client.publishAsync(topics.telemetry(DEVICE), JSON.stringify(slow), { qos: 1 })
    await waitFor(() => stored(slow), 5000, 'the slow batch')
    const summary = await get('/api/v1/telemetry/summary?model=wake')
    expect(summary.status, summary.body).toBe(200)
    const item = (summary.json().items as Record<string, unknown>[])[0]
    // The open-ended bucket reads as its lower bound, flagged by the overflow count.
    expect(item).toMatchObject({ p50Ms: 5000, p95Ms: 5000, p99Ms: 5000, overflowRequests: 50 })
    const series = await get('/api/v1/telemetry/series?model=wake&sinceMs=0')
    expect(series.status, series.body).toBe(200)
    expect((series.json().items as { p95Ms: number }[])[0].p95Ms).toBe(5000)
    expect((await get('/api/v1/fleet/summary')).status).toBe(200)
  })

  it('drops entries of versions the device was never sent: code, /metrics, one event, not in the fleet numbers [EF-2.6.8]', async () => {
    const before = testHub.hub.store.telemetry.summary({ model: 'wake' }).find((s) => s.version === '1.0.0')!
    // A real entry and an invented version full of errors in one batch: the real one is kept.
    const mixed = batchOf([entry('wake', '1.0.0', 10, 0), entry('wake', '9.9.9', 1000, 1000)])
    await client.publishAsync(topics.telemetry(DEVICE), JSON.stringify(mixed), { qos: 1 })
    await waitFor(() => stored(mixed), 5000, 'the mixed batch')
    // Only invented versions: the whole batch is dropped with the code (and still acknowledged).
    const forged = [0, 1, 2].map(() => batchOf([entry('other', '1.0.0', 5, 5)]))
    for (const b of forged) await client.publishAsync(topics.telemetry(DEVICE), JSON.stringify(b), { qos: 1 })
    await waitFor(() => dropped() === 3, 5000, 'three dropped batches')
    for (const b of forged) expect(stored(b)).toBe(false)

    const summary = testHub.hub.store.telemetry.summary()
    expect(summary.map((s) => `${s.model}@${s.version}`).sort()).toEqual(['wake@1.0.0'])
    const after = summary[0]
    expect(after.requests).toBe(before.requests + 10)
    expect(after.errors).toBe(before.errors)

    const metrics = (await testHub.hub.api.inject({ method: 'GET', url: '/metrics' })).body
    expect(metrics).toContain('edgefleet_telemetry_refused_entries_total{code="EF_ERR_TELEMETRY_UNKNOWN_VERSION"} 4')
    expect(metrics).toContain('edgefleet_mqtt_dropped_total{code="EF_ERR_TELEMETRY_UNKNOWN_VERSION"} 3')
    // One event per refused version, not one per batch.
    const events = ((await get(`/api/v1/devices/${DEVICE}`)).json().events as Record<string, string>[]).filter(
      (e) => e.kind === 'telemetry_refused',
    )
    expect(events.map((e) => `${e.model}@${e.version}:${e.code}`).sort()).toEqual([
      'other@1.0.0:EF_ERR_TELEMETRY_UNKNOWN_VERSION',
      'wake@9.9.9:EF_ERR_TELEMETRY_UNKNOWN_VERSION',
    ])
  })

  it('accepts a version once it is deployed to the device, or reported loaded in its state', async () => {
    markSent(testHub.hub, DEVICE, 'wake', '9.9.9')
    const deployed = batchOf([entry('wake', '9.9.9', 4, 0)])
    await client.publishAsync(topics.telemetry(DEVICE), JSON.stringify(deployed), { qos: 1 })
    await waitFor(() => stored(deployed), 5000, 'the batch of the deployed version')

    await client.publishAsync(topics.state(DEVICE), stateServing('other', '1.0.0'), { qos: 1 })
    await waitFor(() => testHub.hub.store.devices.get(DEVICE)?.state?.models?.[0]?.name === 'other', 5000, 'the state')
    const loaded = batchOf([entry('other', '1.0.0', 4, 0)])
    await client.publishAsync(topics.telemetry(DEVICE), JSON.stringify(loaded), { qos: 1 })
    await waitFor(() => stored(loaded), 5000, 'the batch of the loaded version')
  })

  it('judges the batch right behind a state by that state: a version reported loaded a moment ago is kept [EF-2.6.8]', async () => {
    const refusedBefore = dropped()
    // No wait between the two: the state is still in the broker when the batch is published.
    const statePublished = client.publishAsync(topics.state(DEVICE), stateServing('factory', '3.1.0'), { qos: 1 })
    const first = batchOf([entry('factory', '3.1.0', 4, 0)])
    await client.publishAsync(topics.telemetry(DEVICE), JSON.stringify(first), { qos: 1 })
    await statePublished
    await waitFor(() => stored(first), 5000, 'the first batch of the factory version')
    expect(dropped()).toBe(refusedBefore)
  })
})
