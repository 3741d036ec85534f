// Ingest behind an external broker [EF-9.1.2]: a real Mosquitto 2 with the
// hub's password and ACL files, the hub's own mqtt.js client reading agents'
// telemetry, a real mqtt.js device. The hub's client stops acknowledging (and
// so reading) while its queue is full; everything the device sent is stored,
// once.
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { MqttClient } from 'mqtt'
import { topics } from '@edgefleet/shared'
import type { Hub } from '../../src/hub.js'
import {
  connectDevice,
  markSent,
  onMosquitto,
  provision,
  startExternalBrokerHub,
  tempDir,
  waitFor,
} from '../fixtures/hub.js'
import { batch } from '../fixtures/telemetry.js'
import { startMosquitto, type Mosquitto } from '../../../test/support/mosquitto.mjs'

const DEVICE = 'dev-ext'

describe('telemetry through an external Mosquitto', () => {
  const { dir, cleanup } = tempDir('ef-ext-')
  let mosq: Mosquitto
  let hub: Hub
  let client: MqttClient
  beforeAll(async () => {
    mosq = await startMosquitto(join(dir, 'mosquitto'))
    hub = await startExternalBrokerHub(join(dir, 'hub'), {
      ...onMosquitto(mosq),
      // One record per transaction: the queue is "full" from the second message on.
      retraining: { ingest: { maxRecords: 1 }, drift: { intervalMs: 0 }, retention: { enabled: false } },
    })
    const secret = await provision(hub, DEVICE)
    markSent(hub, DEVICE, 'wake', '1.0.0') // telemetry only for versions the device was sent [EF-2.6.8]
    // Mosquitto re-reads its password file on SIGHUP; retry until the device is known.
    for (let i = 0; ; i++) {
      try {
        client = await connectDevice(hub.mqttUrl, DEVICE, secret)
        break
      } catch (err) {
        if (i > 50) throw err
        await new Promise((r) => setTimeout(r, 100))
      }
    }
  }, 60_000)
  afterAll(async () => {
    await client?.endAsync()
    await hub?.close()
    await mosq?.stop()
    cleanup()
  })

  it('stores 300 batches published at once, each once, while the hub’s client waits for its writer', async () => {
    const T = Date.now()
    const batches = Array.from({ length: 300 }, (_, i) => batch(DEVICE, T + i))
    await Promise.all(batches.map((b) => client.publishAsync(topics.telemetry(DEVICE), JSON.stringify(b), { qos: 1 })))
    // A redelivery of some of them changes nothing.
    await Promise.all(
      batches.slice(0, 20).map((b) => client.publishAsync(topics.telemetry(DEVICE), JSON.stringify(b), { qos: 1 })),
    )
    await waitFor(
      () => hub.retraining.ingest.stats.batches + hub.retraining.ingest.stats.duplicateBatches >= 320,
      30_000,
      'all batches handled',
    )
    expect(hub.retraining.ingest.stats).toMatchObject({ batches: 300, duplicateBatches: 20, failedFlushes: 0 })
    expect(hub.retraining.ingest.stats.fullFlushes).toBeGreaterThan(0)
    expect(hub.store.telemetry.countRows()).toEqual({ batches: 300, rows: 300 })
    for (const b of batches) expect(hub.store.telemetry.hasBatch(DEVICE, b.batchId)).toBe(true)
  })
})
