// The embedded broker's authentication and ACL with real mqtt.js clients
// [EF-1.3.1, EF-1.3.2].
import { randomUUID } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { MqttClient } from 'mqtt'
import { LATENCY_BUCKETS_MS, topics, type TelemetryBatch } from '@edgefleet/shared'
import { HUB_USERNAME } from '../../src/keys.js'
import { connectDevice, markSent, provision, startTestHub, waitFor, type TestHub } from '../fixtures/hub.js'

const batch = (deviceId: string): TelemetryBatch => ({
  v: 1,
  deviceId,
  batchId: randomUUID(),
  from: 1,
  to: 2,
  models: [
    {
      model: 'wake',
      version: '1',
      requests: 1,
      errors: 0,
      latency: new Array<number>(LATENCY_BUCKETS_MS.length + 1).fill(0).map((_, i) => (i === 0 ? 1 : 0)),
      latencySumMs: 0.01,
    },
  ],
})

const batchStored = (t: TestHub, deviceId: string, batchId: string) =>
  t.hub.store.db
    .prepare('SELECT 1 FROM telemetry_batches WHERE device_id = ? AND batch_id = ?')
    .get(deviceId, batchId) !== undefined

/** SUBACK return codes; mqtt.js rejects on a failure code but carries the SUBACK packet. */
async function granted(c: MqttClient, filter: string): Promise<number[]> {
  try {
    return (await c.subscribeAsync(filter, { qos: 1 })).map((g) => g.qos)
  } catch (err) {
    const packet = (err as { packet?: { granted?: (number | { qos: number })[] } }).packet
    if (!packet?.granted) throw err
    return packet.granted.map((g) => (typeof g === 'number' ? g : g.qos))
  }
}

async function refusal(p: Promise<unknown>): Promise<number | undefined> {
  try {
    await p
  } catch (err) {
    return (err as { code?: number }).code
  }
  throw new Error('connection was accepted')
}

describe('embedded broker', () => {
  let testHub: TestHub
  const secrets: Record<string, string> = {}
  beforeAll(async () => {
    testHub = await startTestHub()
    secrets['dev-1'] = await provision(testHub.hub, 'dev-1')
    secrets['dev-2'] = await provision(testHub.hub, 'dev-2')
    for (const d of ['dev-1', 'dev-2']) markSent(testHub.hub, d, 'wake', '1') // [EF-2.6.8]
  })
  afterAll(async () => {
    await testHub?.close()
  })

  describe('authentication [EF-1.3.1]', () => {
    it('accepts the right secret', async () => {
      const c = await connectDevice(testHub.hub.mqttUrl, 'dev-1', secrets['dev-1'])
      expect(c.connected).toBe(true)
      await c.endAsync()
    })

    it.each([
      ['a wrong secret', 'dev-1', 'dev-1', () => 'not-the-secret'],
      ["another device's secret", 'dev-1', 'dev-1', () => secrets['dev-2']],
      ['no password', 'dev-1', 'dev-1', () => ''],
      ['an unknown device', 'ghost', 'ghost', () => secrets['dev-1']],
      ['a client id other than the username', 'dev-1-spoof', 'dev-1', () => secrets['dev-1']],
      ['the hub username with a device secret', 'hubby', HUB_USERNAME, () => secrets['dev-1']],
    ])('refuses %s with CONNACK "bad user name or password"', async (_what, clientId, username, pw) => {
      const code = await refusal(connectDevice(testHub.hub.mqttUrl, clientId, pw(), { username }))
      expect([4, 5]).toContain(code)
    })
  })

  describe('ACL [EF-1.3.2]', () => {
    it("grants its own cmd and artifact chunks, answers 0x80 for another device's cmd, and stays connected", async () => {
      const client = await connectDevice(testHub.hub.mqttUrl, 'dev-1', secrets['dev-1'])
      try {
        expect(await granted(client, topics.cmd('dev-1'))).toEqual([1])
        expect(await granted(client, topics.artifact('b'.repeat(64)))).toEqual([1])
        expect(await granted(client, topics.cmd('dev-2'))).toEqual([128])
        expect(await granted(client, 'ef/v1/dev/+/cmd')).toEqual([128])
        expect(await granted(client, 'ef/v1/art/#')).toEqual([128])
        expect(client.connected).toBe(true)
        // Still usable: a permitted publish goes through.
        await client.publishAsync(
          topics.events('dev-1'),
          JSON.stringify({ v: 1, deviceId: 'dev-1', ts: 1, kind: 'received' }),
          { qos: 1 },
        )
        expect(client.connected).toBe(true)
      } finally {
        await client.endAsync()
      }
    })

    it("disconnects a device that publishes on another device's telemetry topic; nothing is stored", async () => {
      const c = await connectDevice(testHub.hub.mqttUrl, 'dev-1', secrets['dev-1'])
      const closed = new Promise<void>((resolve) => c.once('close', () => resolve()))
      const forged = batch('dev-2')
      c.publish(topics.telemetry('dev-2'), JSON.stringify(forged), { qos: 1 })
      await closed
      expect(c.connected).toBe(false)
      c.end(true)

      // The real dev-2 publishes afterwards; once its batch is in, the forged one would have been too.
      const d2 = await connectDevice(testHub.hub.mqttUrl, 'dev-2', secrets['dev-2'])
      const own = batch('dev-2')
      await d2.publishAsync(topics.telemetry('dev-2'), JSON.stringify(own), { qos: 1 })
      await waitFor(() => batchStored(testHub, 'dev-2', own.batchId), 5000, "dev-2's own batch")
      await d2.endAsync()
      expect(batchStored(testHub, 'dev-2', forged.batchId)).toBe(false)
      expect(testHub.hub.store.telemetry.countRows().batches).toBe(1)
    })

    it('disconnects a device that publishes a command', async () => {
      const c = await connectDevice(testHub.hub.mqttUrl, 'dev-1', secrets['dev-1'])
      const closed = new Promise<void>((resolve) => c.once('close', () => resolve()))
      c.publish(topics.cmd('dev-2'), '{}', { qos: 1 })
      await closed
      expect(c.connected).toBe(false)
      c.end(true)
    })
  })
})
