// Telemetry through NATS JetStream when the stream is gone [EF-9.13]: every
// two of the real 3-node cluster's nodes killed (kill -9: no quorum) while a device publishes.
// The hub does not acknowledge the device (its batch stays in its outbox),
// and once the nodes are back the hub, never restarted, takes the resend.
import { describe, expect, it } from 'vitest'
import { connectDevice, markSent, provision, waitFor } from '../fixtures/hub.js'
import { DEVICE, batch, send, streamSuite, waitForAsync } from '../fixtures/stream.js'

const suite = streamSuite()

describe('telemetry through JetStream, stream unavailable [EF-9.13]', () => {
  it('with the stream unavailable the device is not acknowledged (its batch is not stored), and ingest resumes by itself', async () => {
    suite.hub = await suite.openHub(suite.newDir())
    const streamHub = suite.hub
    const secret = await provision(streamHub, DEVICE)
    markSent(streamHub, DEVICE, 'm', '1.0.0')
    const client = await suite.deviceOn(streamHub, secret)
    await send(client, batch(0))
    await waitFor(() => streamHub.store.telemetry.hasBatch(DEVICE, 'batch-00000'), 10_000, 'the first batch')

    // Two of three nodes gone: the R3 stream has no quorum, so nothing can be stored (the hub may stay connected).
    const killed = suite.cluster.nodes.slice(0, 2)
    await Promise.all(killed.map((n) => n.kill9()))
    let acked = false
    let disconnected = false
    client.on('close', () => (disconnected = true))
    send(client, batch(1)).then(
      () => (acked = true),
      () => undefined,
    )
    // Refused with EF_ERR_INGEST_UNAVAILABLE: the broker drops the device instead of acknowledging.
    await waitFor(() => disconnected, 10_000, 'the device refused')
    expect(acked).toBe(false)
    expect(streamHub.streaming?.ingest.stats.failed).toBeGreaterThan(0)
    expect(streamHub.store.telemetry.hasBatch(DEVICE, 'batch-00001')).toBe(false)

    await Promise.all(killed.map((n) => n.restart()))
    // The device's outbox sends the batch again until it is acknowledged; the hub was not restarted.
    await waitForAsync(
      async () => {
        const again = await connectDevice(streamHub.mqttUrl, DEVICE, secret)
        try {
          await Promise.race([
            send(again, batch(1)),
            new Promise((_, reject) => setTimeout(() => reject(new Error('no PUBACK')), 3000)),
          ])
          return true
        } finally {
          await again.endAsync(true)
        }
      },
      30_000,
      'a PUBACK after the cluster came back',
    )
    await waitFor(() => streamHub.store.telemetry.hasBatch(DEVICE, 'batch-00001'), 15_000, 'the resent batch applied')
    await waitForAsync(suite.consumerIdle, 15_000, 'the consumer to ack everything')
    expect(streamHub.store.telemetry.deviceTotals(DEVICE)).toMatchObject({ batches: 2, requests: 10 })
  }, 60_000)
})
