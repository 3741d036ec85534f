// A device's PUBACK for telemetry means "stored" [EF-9.1]: real aedes (the
// hub's embedded broker), real mqtt.js device clients, the hub's writer thread
// on a real SQLite file. When the database cannot take a transaction (here: it
// is at its size cap, which SQLite reports like a full disk), the device gets
// no PUBACK and is disconnected; after a restart without the cap, its resend
// is stored, and nothing it was told was stored is missing.
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import type { MqttClient } from 'mqtt'
import { FEATURE_BUCKETS, LATENCY_BUCKETS_MS, topics, type TelemetryBatch } from '@edgefleet/shared'
import { startHub, type Hub } from '../../src/hub.js'
import { COMPILE_WORKER, connectDevice, markSent, provision, tempDir } from '../fixtures/hub.js'

const DEVICE = 'dev-ack'

function bigBatch(index: number): TelemetryBatch {
  const latency = new Array<number>(LATENCY_BUCKETS_MS.length + 1).fill(0)
  latency[3] = 10
  // 60 model versions with an input sketch each: ~25 KB of rows per batch.
  const models = Array.from({ length: 60 }, (_, k) => ({
    model: `m${k}`,
    version: '1.0.0',
    requests: 10,
    errors: 0,
    latency,
    latencySumMs: 5,
    features: [
      {
        input: 'x',
        count: 10,
        mean: 0.5,
        variance: 0.1,
        min: 0,
        max: 1,
        sketch: Array.from({ length: FEATURE_BUCKETS.length + 1 }, (_, j) => (j * 7919 + index) % 1000),
      },
    ],
  }))
  return {
    v: 1,
    deviceId: DEVICE,
    batchId: `batch-${String(index).padStart(6, '0')}`,
    from: Date.now() - 1000,
    to: Date.now(),
    models,
  }
}

describe('telemetry PUBACK after commit [EF-9.1]', () => {
  const { dir, cleanup } = tempDir('ef-ack-')
  let hub: Hub | undefined
  let client: MqttClient | undefined
  const open = (maxDbBytes: number) =>
    startHub({
      dataDir: dir,
      mqttPort: 0,
      httpPort: 0,
      log: 'silent',
      compileWorkerUrl: COMPILE_WORKER,
      auth: false,
      rolloutTickMs: 0,
      retraining: { ingest: { maxDbBytes }, drift: { intervalMs: 0 }, retention: { enabled: false } },
    })
  afterEach(async () => {
    await client?.endAsync(true).catch(() => undefined)
    await hub?.close()
  })
  afterAll(() => cleanup())

  it('a resolved publish is in the database; a refused one is not acknowledged, and its resend is stored after the cap is lifted', async () => {
    hub = await open(3 * 1024 * 1024)
    const secret = await provision(hub, DEVICE)
    for (let k = 0; k < 60; k++) markSent(hub, DEVICE, `m${k}`, '1.0.0') // [EF-2.6.8]
    client = await connectDevice(hub.mqttUrl, DEVICE, secret)
    let closed = false
    client.on('close', () => (closed = true))

    // Acknowledged means committed: visible on the hub's own connection as soon as the PUBACK arrives.
    const acked: string[] = []
    let refused: TelemetryBatch | undefined
    for (let i = 0; i < 400 && !refused; i++) {
      const batch = bigBatch(i)
      const puback = client.publishAsync(topics.telemetry(DEVICE), JSON.stringify(batch), { qos: 1 }).then(
        () => true,
        () => false,
      )
      const ok = await Promise.race([puback, new Promise<boolean>((r) => client!.once('close', () => r(false)))])
      if (ok) {
        expect(hub.metrics.dropped).toEqual({})
        expect(hub.store.telemetry.hasBatch(DEVICE, batch.batchId)).toBe(true)
        acked.push(batch.batchId)
      } else refused = batch
    }
    expect(refused, 'the database cap was never reached').toBeDefined()
    expect(acked.length).toBeGreaterThan(10)
    expect(closed).toBe(true)
    expect(hub.retraining.ingest.stats.failedFlushes).toBeGreaterThan(0)
    expect(hub.store.telemetry.hasBatch(DEVICE, refused!.batchId)).toBe(false)
    for (const id of acked) expect(hub.store.telemetry.hasBatch(DEVICE, id)).toBe(true)
    await client.endAsync(true).catch(() => undefined)
    await hub.close()

    // The operator frees space (no cap); the device reconnects and sends what was not acknowledged.
    hub = await open(0)
    client = await connectDevice(hub.mqttUrl, DEVICE, secret)
    await client.publishAsync(topics.telemetry(DEVICE), JSON.stringify(refused), { qos: 1 })
    expect(hub.store.telemetry.hasBatch(DEVICE, refused!.batchId)).toBe(true)
    expect(hub.store.telemetry.countRows().batches).toBe(acked.length + 1)
  })
})
