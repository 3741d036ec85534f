// Device health [EF-9.12] end to end in one process: a real mqtt.js device
// client publishes state and telemetry with device stats to the hub's real
// broker; the health and fleet-health routes read them back, a threshold of
// the profile raises one health_alert event (not one per batch) and a
// recovery, and `edgefleet devices show` prints it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { MqttClient } from 'mqtt'
import { topics, type DeviceStats } from '@edgefleet/shared'
import { connectDevice, markSent, provision, startTestHub, waitFor, type TestHub } from '../fixtures/hub.js'
import { batch } from '../fixtures/telemetry.js'
import { main } from '../../src/cli/edgefleet.js'
import { breaches } from '../../src/telemetry/health-alerts.js'
import { distribution } from '../../src/api/routes/health.js'

let testHub: TestHub
let client: MqttClient
const MiB = 1024 * 1024
const t0 = Date.now() - 60_000
const get = async (url: string) => {
  const res = await testHub.hub.api.inject({ method: 'GET', url })
  return { status: res.statusCode, body: res.json<Record<string, unknown> & { error?: { code: string } }>() }
}

async function publishBatch(i: number, device: DeviceStats, provider = 'cpu') {
  const b = batch('h1', t0 + i * 1000, { batchId: `health-${String(i).padStart(4, '0')}` })
  b.models[0].provider = provider
  b.device = device
  await client.publishAsync(topics.telemetry('h1'), JSON.stringify(b), { qos: 1 })
}

/** h1's state message [EF-2.1] with these models. */
const stateOf = (models: unknown[]) => ({
  v: 1,
  deviceId: 'h1',
  online: true,
  ts: Date.now(),
  profile: 'gateway-rpi4',
  agentVersion: '0.9.1',
  models,
})

const events = () =>
  testHub.hub.store.deployments
    .eventsForDevice('h1')
    .filter((e) => e.kind === 'health_alert' || e.kind === 'health_recovered')

beforeAll(async () => {
  testHub = await startTestHub()
  const secret = await provision(testHub.hub, 'h1', 'gateway-rpi4')
  await provision(testHub.hub, 'h2', 'industrial-x86')
  markSent(testHub.hub, 'h1', 'wake', '1.0.0')
  client = await connectDevice(testHub.hub.mqttUrl, 'h1', secret)
  await client.publishAsync(
    topics.state('h1'),
    JSON.stringify({ ...stateOf([]), network: 'metered', power: 'battery', idle: false }),
    { qos: 1, retain: true },
  )
  const ok = { rssBytes: 80 * MiB, cpuLoad: 0.5, freeStorageBytes: 900 * MiB, temperatureC: 55, queued: 0 }
  await publishBatch(1, ok)
  await publishBatch(2, { ...ok, temperatureC: 86 }) // gateway-rpi4: maxTemperatureC 80
  await publishBatch(3, { ...ok, temperatureC: 88 }) // still hot: no second alert
  await publishBatch(4, { ...ok, temperatureC: 60, rssBytes: 90 * MiB }, 'xnnpack')
  await waitFor(() => testHub.hub.store.health.series('h1', 0).length === 4, 10_000, 'four batches stored')
})
afterAll(async () => {
  await client?.endAsync()
  await testHub?.close()
})

describe('device health [EF-9.12]', () => {
  it('GET /devices/:id/health: agent version, conditions, provider, latest stats and the series in order', async () => {
    const { status, body } = await get('/api/v1/devices/h1/health?sinceMs=0')
    expect(status).toBe(200)
    expect(body).toMatchObject({
      deviceId: 'h1',
      profile: 'gateway-rpi4',
      online: true,
      agentVersion: '0.9.1',
      conditions: { network: 'metered', power: 'battery', idle: false },
      providers: { wake: 'xnnpack' },
      lastTelemetry: t0 + 4000,
      latest: { ts: t0 + 4000, rssBytes: 90 * MiB, temperatureC: 60 },
      thresholds: { maxTemperatureC: 80 },
      breaches: [],
    })
    const series = body.series as { ts: number; temperatureC: number }[]
    expect(series.map((p) => p.temperatureC)).toEqual([55, 86, 88, 60])
    // sinceMs narrows the window.
    const recent = await get(`/api/v1/devices/h1/health?sinceMs=${t0 + 2500}`)
    expect((recent.body.series as unknown[]).length).toBe(2)
  })

  it('an unknown device is 404 EF_ERR_DEVICE_NOT_FOUND; a device without telemetry has null latest', async () => {
    expect((await get('/api/v1/devices/nope/health')).body.error?.code).toBe('EF_ERR_DEVICE_NOT_FOUND')
    const h2 = await get('/api/v1/devices/h2/health')
    expect(h2.body).toMatchObject({ latest: null, lastTelemetry: null, series: [], agentVersion: null, online: false })
  })

  it('a threshold crossing records one health_alert (code EF_ERR_DEVICE_HEALTH_THRESHOLD) and one recovery', () => {
    const ev = events().reverse() // oldest first
    expect(ev.map((e) => e.kind)).toEqual(['health_alert', 'health_recovered'])
    expect(ev[0]).toMatchObject({ code: 'EF_ERR_DEVICE_HEALTH_THRESHOLD', ts: t0 + 2000 })
    expect(ev[0].message).toMatch(/temperature 86 °C > 80 °C/)
    expect(ev[1]).toMatchObject({ ts: t0 + 4000 })
  })

  it('GET /fleet/health: distributions over the latest batch of each device', async () => {
    const { body } = await get(`/api/v1/fleet/health?sinceMs=0`)
    const m = body.metrics as Record<string, { n: number; max: number; bins: { n: number }[] }>
    expect(body.devices).toBe(1)
    expect(m.temperatureC).toMatchObject({ n: 1, max: 60 })
    expect(m.rssBytes.bins.reduce((a, b) => a + b.n, 0)).toBe(1)
    expect(body.alerting).toEqual([])
  })

  it('distribution(): quantiles and ten bins that hold every value', () => {
    const d = distribution(Array.from({ length: 100 }, (_, i) => i))
    expect(d).toMatchObject({ n: 100, min: 0, max: 99, p50: 50, p95: 95 })
    expect(d.bins).toHaveLength(10)
    expect(d.bins.map((b) => b.n)).toEqual(Array(10).fill(10))
    expect(distribution([])).toMatchObject({ n: 0, bins: [] })
    expect(distribution([3, 3]).bins).toEqual([{ lo: 3, hi: 4, n: 2 }])
  })

  it('breaches(): each threshold by its own unit, unreported metrics not judged', () => {
    const t = { maxRssMb: 100, maxCpuLoad: 2, minFreeStorageMb: 50, maxTemperatureC: 70 }
    expect(breaches({}, t)).toEqual([])
    expect(
      breaches({ rssBytes: 101 * MiB, cpuLoad: 2.5, freeStorageBytes: 10 * MiB, temperatureC: 71 }, t).map(
        (b) => b.metric,
      ),
    ).toEqual(['rss', 'cpuLoad', 'freeStorage', 'temperature'])
    expect(breaches({ rssBytes: 100 * MiB, cpuLoad: 2, freeStorageBytes: 50 * MiB, temperatureC: 70 }, t)).toEqual([])
  })

  it('edgefleet devices show prints agent, conditions, provider, stats and events', async () => {
    let out = ''
    const sink = { write: (s: string) => ((out += s), true) } as unknown as NodeJS.WriteStream
    const code = await main(['devices', 'show', 'h1', '--hub', testHub.hub.httpUrl], sink, sink)
    expect(code).toBe(0)
    expect(out).toContain('device h1 (gateway-rpi4) online')
    expect(out).toMatch(/agent: +0\.9\.1/)
    expect(out).toMatch(/network=metered power=battery idle=false/)
    expect(out).toMatch(/RSS 90 MiB +load 0\.5 +free storage 900 MiB +temperature 60 °C/)
    expect(out).toMatch(/health_recovered/)
    expect(out).toMatch(/health_alert .*EF_ERR_DEVICE_HEALTH_THRESHOLD/)
    let missing = ''
    const errSink = { write: (s: string) => ((missing += s), true) } as unknown as NodeJS.WriteStream
    expect(await main(['devices', 'show', 'nope', '--hub', testHub.hub.httpUrl], errSink, errSink)).not.toBe(0)
    expect(missing).toContain('EF_ERR_DEVICE_NOT_FOUND')
  })
  it('an idle heartbeat (stats, no models) is a health point; the provider comes from the state [EF-2.6.7, EF-5.7]', async () => {
    const state = stateOf([
      {
        name: 'det',
        version: '2.0.0',
        precision: 'fp32',
        artifact: 'a'.repeat(64),
        slot: 'a',
        provider: 'cuda',
      },
    ])
    await client.publishAsync(topics.state('h1'), JSON.stringify(state), { qos: 1, retain: true })
    const heartbeat = { ...batch('h1', t0 + 5000, { batchId: 'health-idle' }), models: [] }
    heartbeat.device = { rssBytes: 70 * MiB, cpuLoad: 0.1, freeStorageBytes: 900 * MiB }
    await client.publishAsync(topics.telemetry('h1'), JSON.stringify(heartbeat), { qos: 1 })
    await waitFor(() => testHub.hub.store.health.series('h1', 0).length === 5, 10_000, 'heartbeat stored')
    await waitFor(() => testHub.hub.store.devices.get('h1')?.state?.models?.length === 1, 10_000, 'state stored')
    const { body } = await get('/api/v1/devices/h1/health?sinceMs=0')
    expect(body).toMatchObject({ lastTelemetry: t0 + 5000, latest: { rssBytes: 70 * MiB } })
    // The heartbeat names no provider; the state names what runs now (wake is no longer loaded).
    expect(body.providers).toEqual({ det: 'cuda' })
  })
})
