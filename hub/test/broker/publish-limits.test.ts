// What a device may leave in the broker and how fast it may publish
// [EF-1.7.4, EF-1.7.5]: retained messages only on its state topic and only up
// to maxRetainedBytes; per-device quotas that delay (nothing lost) and refuse
// when far over, counted in /metrics and recorded as a device event.
import { afterEach, describe, expect, it } from 'vitest'
import mqtt, { type MqttClient } from 'mqtt'
import { stateCodec, topics } from '@edgefleet/shared'
import type { Hub } from '../../src/hub.js'
import type { BrokerConfig } from '../../src/broker/config.js'
import { connectDevice, provision, waitFor, startTestHub, type TestHub } from '../fixtures/hub.js'
import { HUB_USERNAME } from '../../src/keys.js'

type Started = Hub
let running: TestHub | undefined

/** A real in-process hub with these broker settings, closed after the test. */
async function hubWith(broker: BrokerConfig): Promise<Started> {
  running = await startTestHub({ broker })
  return running.hub
}

afterEach(async () => {
  await running?.close()
  running = undefined
})

/** Subscribes a fresh hub-secret client to `topic`; resolves with what is retained there (undefined: nothing). */
async function retainedOn(hub: Started, topic: string): Promise<Buffer | undefined> {
  const client = mqtt.connect(hub.mqttUrl, {
    clientId: `retain-probe-${Math.random().toString(36).slice(2)}`,
    username: HUB_USERNAME,
    password: hub.keys.hubSecret,
    reconnectPeriod: 0,
  })
  await new Promise((r) => client.once('connect', r))
  const got = new Promise<Buffer | undefined>((resolve) => {
    client.on('message', (_t, payload, packet) => packet.retain && resolve(payload))
    setTimeout(() => resolve(undefined), 500)
  })
  await client.subscribeAsync(topic, { qos: 1 })
  const r = await got
  await client.endAsync()
  return r
}

const event = (deviceId: string, i: number) =>
  JSON.stringify({ v: 1, deviceId, ts: i + 1, kind: 'received', cmdId: `c${i}` })
const eventsOf = (hub: Started, deviceId: string, kind = 'received') =>
  (
    hub.store.db.prepare('SELECT count(*) AS n FROM events WHERE device_id = ? AND kind = ?').get(deviceId, kind) as {
      n: number
    }
  ).n

async function metric(hub: Started, line: RegExp): Promise<number> {
  const text = (await hub.api.inject({ method: 'GET', url: '/metrics' })).body
  const m = line.exec(text)
  return m ? Number(m[1]) : 0
}

describe('retained messages [EF-1.7.4]', () => {
  it('keeps a state up to the limit, strips retain from a larger one and from any other topic', async () => {
    const hub = await hubWith({ limits: { maxRetainedBytes: 2048 } })
    const secret = await provision(hub, 'dev-1')
    const client: MqttClient = await connectDevice(hub.mqttUrl, 'dev-1', secret)
    const state = stateCodec.encode({ v: 1, deviceId: 'dev-1', online: true, ts: 1, agentVersion: 'small' })
    await client.publishAsync(topics.state('dev-1'), state, { qos: 1, retain: true })
    expect((await retainedOn(hub, topics.state('dev-1')))?.equals(state)).toBe(true)

    // A retained event: delivered (the hub stores it), kept nowhere.
    const bigEvent = JSON.stringify({ v: 1, deviceId: 'dev-1', ts: 2, kind: 'received', message: 'x'.repeat(2000) })
    await client.publishAsync(topics.events('dev-1'), bigEvent, { qos: 1, retain: true })
    await waitFor(() => eventsOf(hub, 'dev-1') === 1, 3000, 'the event delivered')
    expect(await retainedOn(hub, topics.events('dev-1'))).toBeUndefined()

    // A state over the limit: delivered without retain, so the previous retained state is what stays.
    const big = Buffer.from(JSON.stringify({ v: 1, deviceId: 'dev-1', online: true, ts: 3, pad: 'y'.repeat(4096) }))
    await client.publishAsync(topics.state('dev-1'), big, { qos: 1, retain: true })
    expect((await retainedOn(hub, topics.state('dev-1')))?.equals(state)).toBe(true)
    expect(hub.broker!.limits.refusals.EF_ERR_BROKER_RETAIN_REFUSED).toBe(2)
    expect(await metric(hub, /edgefleet_broker_refused_total\{code="EF_ERR_BROKER_RETAIN_REFUSED"\} (\d+)/)).toBe(2)
    expect(client.connected).toBe(true)
    await client.endAsync()
  })
})

describe('per-device quotas [EF-1.7.5]', () => {
  it('delays a device over its message rate without losing anything', async () => {
    const hub = await hubWith({ quota: { messageBurst: 20, messagesPerSec: 40 } })
    const secret = await provision(hub, 'dev-1')
    const client = await connectDevice(hub.mqttUrl, 'dev-1', secret)
    const t0 = Date.now()
    await Promise.all(
      Array.from({ length: 60 }, (_, i) => client.publishAsync(topics.events('dev-1'), event('dev-1', i), { qos: 1 })),
    )
    // 20 at once, the other 40 at 40/s: about a second, never all at once.
    expect(Date.now() - t0).toBeGreaterThanOrEqual(800)
    await waitFor(() => eventsOf(hub, 'dev-1') === 60, 3000, 'all 60 events stored')
    expect(hub.broker!.limits.throttled).toBeGreaterThan(0)
    expect(await metric(hub, /edgefleet_broker_throttled_total (\d+)/)).toBe(hub.broker!.limits.throttled)
    // One event in the device's log says why (not one per delayed message).
    expect(eventsOf(hub, 'dev-1', 'rejected')).toBe(1)
    expect(client.connected).toBe(true)
    await client.endAsync()
  })

  it('holds a flooding device to its quota and refuses what would wait too long', async () => {
    const hub = await hubWith({ quota: { messageBurst: 50, messagesPerSec: 50, maxDelayMs: 500 } })
    const secret = await provision(hub, 'dev-1')
    const other = await provision(hub, 'dev-2')
    const flooder = await connectDevice(hub.mqttUrl, 'dev-1', secret)
    const bystander = await connectDevice(hub.mqttUrl, 'dev-2', other)
    const gone = new Promise<void>((resolve) => flooder.once('close', () => resolve()))
    for (let i = 0; i < 5000; i++) flooder.publish(topics.events('dev-1'), event('dev-1', i), { qos: 1 })
    await gone
    flooder.end(true)
    // At most the burst plus what the rate and the longest delay allow went through.
    await new Promise((r) => setTimeout(r, 700))
    expect(eventsOf(hub, 'dev-1')).toBeLessThanOrEqual(50 + 50 * 2)
    expect(hub.broker!.limits.refusals.EF_ERR_BROKER_QUOTA_EXCEEDED).toBeGreaterThan(0)
    expect(
      await metric(hub, /edgefleet_broker_refused_total\{code="EF_ERR_BROKER_QUOTA_EXCEEDED"\} (\d+)/),
    ).toBeGreaterThan(0)
    const ev = hub.store.db.prepare("SELECT code FROM events WHERE device_id = 'dev-1' AND kind = 'rejected'").all()
    expect(ev).toEqual([{ code: 'EF_ERR_BROKER_QUOTA_EXCEEDED' }])
    // Another device is not held back.
    await bystander.publishAsync(topics.events('dev-2'), event('dev-2', 0), { qos: 1 })
    await waitFor(() => eventsOf(hub, 'dev-2') === 1, 2000, "dev-2's event")
    await bystander.endAsync()
  })
})
