// The hub's MQTT dispatcher against a real aedes (started by startHub) and a
// real mqtt.js client connected as a provisioned device: every bad message is
// counted under its code and dropped, the hub keeps answering, and telemetry
// is stored once however often it arrives [EF-2.6, EF-2.8].
import { randomUUID } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { MqttClient } from 'mqtt'
import { LATENCY_BUCKETS_MS, topics, type TelemetryBatch } from '@edgefleet/shared'
import { connectDevice, markSent, provision, startTestHub, waitFor, type TestHub } from '../fixtures/hub.js'

const DEVICE = 'dev-1'

describe('MQTT dispatch', () => {
  let testHub: TestHub
  let client: MqttClient
  beforeAll(async () => {
    testHub = await startTestHub()
    const secret = await provision(testHub.hub, DEVICE)
    await provision(testHub.hub, 'dev-2')
    markSent(testHub.hub, DEVICE, 'wake', '1') // telemetry only for versions the device was sent [EF-2.6.8]
    client = await connectDevice(testHub.hub.mqttUrl, DEVICE, secret)
  })
  afterAll(async () => {
    await client?.endAsync()
    await testHub?.close()
  })

  const dropped = (code: string) => testHub.hub.metrics.dropped[code] ?? 0
  /** Publishes and waits until the hub counted one more drop under `code`. */
  async function expectDropped(topic: string, payload: string | Buffer, code: string): Promise<void> {
    const before = dropped(code)
    const inBefore = testHub.hub.metrics.messagesIn
    await client.publishAsync(topic, payload, { qos: 1 })
    await waitFor(() => dropped(code) > before, 5000, `${code} for ${topic}`)
    expect(dropped(code)).toBe(before + 1)
    expect(testHub.hub.metrics.messagesIn).toBeGreaterThan(inBefore)
  }

  const kinds = ['state', 'events', 'telemetry', 'fetch'] as const

  it.each(kinds)('malformed JSON on %s → EF_ERR_MSG_JSON', async (kind) => {
    await expectDropped(topics.device(DEVICE, kind), '{"v":1, "deviceId": ', 'EF_ERR_MSG_JSON')
  })

  it.each(kinds)('schema-invalid %s → EF_ERR_MSG_SCHEMA', async (kind) => {
    await expectDropped(
      topics.device(DEVICE, kind),
      JSON.stringify({ v: 1, deviceId: DEVICE, bogus: true }),
      'EF_ERR_MSG_SCHEMA',
    )
  })

  it('wrong protocol version number → EF_ERR_MSG_SCHEMA', async () => {
    await expectDropped(
      topics.events(DEVICE),
      JSON.stringify({ v: 2, deviceId: DEVICE, ts: 1, kind: 'received' }),
      'EF_ERR_MSG_SCHEMA',
    )
  })

  it('a schema-invalid sample → EF_ERR_MSG_SCHEMA [EF-2.9]', async () => {
    await expectDropped(topics.samples(DEVICE), JSON.stringify({ v: 1, deviceId: DEVICE }), 'EF_ERR_MSG_SCHEMA')
  })

  it('an oversized event → EF_ERR_MSG_TOO_LARGE, never parsed [EF-2.2]', async () => {
    await expectDropped(
      topics.events(DEVICE),
      JSON.stringify({ v: 1, deviceId: DEVICE, ts: 1, kind: 'failed', message: 'x'.repeat(20_000) }),
      'EF_ERR_MSG_TOO_LARGE',
    )
  })

  it.each([
    ['state', { v: 1, deviceId: 'dev-2', online: true, ts: 1, models: [] }],
    ['events', { v: 1, deviceId: 'dev-2', ts: 1, kind: 'received' }],
    ['fetch', { v: 1, deviceId: 'dev-2', artifact: 'a'.repeat(64), chunks: [0] }],
  ] as const)(
    'a valid %s naming another device → EF_ERR_TOPIC_DEVICE_MISMATCH, and it changes nothing [EF-1.5]',
    async (kind, payload) => {
      await expectDropped(topics.device(DEVICE, kind), JSON.stringify(payload), 'EF_ERR_TOPIC_DEVICE_MISMATCH')
      expect(testHub.hub.store.devices.get('dev-2')!.online).toBe(false)
      expect(testHub.hub.store.deployments.eventsForDevice('dev-2')).toEqual([])
    },
  )

  it('still answers /healthz over real HTTP after all of that', async () => {
    const res = await fetch(`${testHub.hub.httpUrl}/healthz`)
    expect(res.status).toBe(200)
    expect(await res.json()).toMatchObject({ ok: true, devices: 2 })
    expect(client.connected).toBe(true)
  })

  it('a valid state marks the device online', async () => {
    await client.publishAsync(
      topics.state(DEVICE),
      JSON.stringify({ v: 1, deviceId: DEVICE, online: true, ts: Date.now(), models: [], profile: 'gateway-rpi4' }),
      { qos: 1, retain: true },
    )
    await waitFor(() => testHub.hub.store.devices.get(DEVICE)?.online === true, 5000, 'online state')
    expect(testHub.hub.store.devices.get(DEVICE)!.state?.profile).toBe('gateway-rpi4')
  })

  it('a telemetry batch that repeats a model version → EF_ERR_MSG_SCHEMA, nothing stored [EF-2.6]', async () => {
    const latency = new Array<number>(LATENCY_BUCKETS_MS.length + 1).fill(0)
    const entry = { model: 'wake', version: '1', requests: 0, errors: 0, latency, latencySumMs: 0 }
    const before = testHub.hub.store.telemetry.countRows()
    await expectDropped(
      topics.telemetry(DEVICE),
      JSON.stringify({ v: 1, deviceId: DEVICE, batchId: randomUUID(), from: 1, to: 2, models: [entry, entry] }),
      'EF_ERR_MSG_SCHEMA',
    )
    expect(testHub.hub.store.telemetry.countRows()).toEqual(before)
  })

  it('stores a valid telemetry batch once even when it is published twice [EF-2.6]', async () => {
    const latency = new Array<number>(LATENCY_BUCKETS_MS.length + 1).fill(0)
    latency[4] = 3
    const batch: TelemetryBatch = {
      v: 1,
      deviceId: DEVICE,
      batchId: randomUUID(),
      from: 1000,
      to: 2000,
      models: [{ model: 'wake', version: '1', requests: 3, errors: 0, latency, latencySumMs: 2.1 }],
    }
    const before = testHub.hub.store.telemetry.countRows()
    const dupBefore = testHub.hub.metrics.duplicateBatches
    const payload = JSON.stringify(batch)
    await client.publishAsync(topics.telemetry(DEVICE), payload, { qos: 1 })
    await client.publishAsync(topics.telemetry(DEVICE), payload, { qos: 1 })
    await waitFor(() => testHub.hub.metrics.duplicateBatches > dupBefore, 5000, 'the duplicate')
    expect(testHub.hub.store.telemetry.countRows()).toEqual({ batches: before.batches + 1, rows: before.rows + 1 })
    expect(testHub.hub.metrics.duplicateBatches).toBe(dupBefore + 1)
    const s = testHub.hub.store.telemetry.summary({ deviceId: DEVICE })
    expect(s).toHaveLength(1)
    expect(s[0]).toMatchObject({ model: 'wake', version: '1', requests: 3 })
  })

  it('reports the drop counters on /api/v1/hub', async () => {
    const res = await testHub.hub.api.inject({ method: 'GET', url: '/api/v1/hub' })
    const m = res.json<{ metrics: { dropped: Record<string, number>; duplicateBatches: number } }>().metrics
    expect(m.dropped).toMatchObject({
      EF_ERR_MSG_JSON: 4,
      EF_ERR_MSG_SCHEMA: 7,
      EF_ERR_MSG_TOO_LARGE: 1,
      EF_ERR_TOPIC_DEVICE_MISMATCH: 3,
    })
    expect(m.dropped.EF_ERR_TOPIC_UNKNOWN).toBeUndefined()
    expect(m.duplicateBatches).toBe(1)
  })
})
