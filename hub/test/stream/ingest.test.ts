// Telemetry through NATS JetStream [EF-9.13] against a real 3-node cluster,
// the hub's embedded broker, mqtt.js devices and SQLite: the device's PUBACK
// waits for the replicated stream; the durable consumer applies each batch
// once across a hub restart and a redelivery; hostile stream messages are
// terminated with a stable code and never applied, before or after a restart.
import { describe, expect, it } from 'vitest'
import { STREAM_NAMES, SUBJECTS, subjectToken } from '../../src/stream/index.js'
import { markSent, provision, waitFor } from '../fixtures/hub.js'
import { DEVICE, batch, requestsOf, send, streamSuite, waitForAsync } from '../fixtures/stream.js'

const suite = streamSuite()

describe('telemetry through JetStream [EF-9.13]', () => {
  it('acknowledges after the replicated stream has the batch; a restarted consumer and a redelivery count each batch once', async () => {
    const dir = suite.newDir()
    suite.hub = await suite.openHub(dir)
    const info = await suite.jsm.streams.info(STREAM_NAMES.telemetry)
    expect(info.config.num_replicas).toBe(3) // min(3, cluster size)
    expect(info.config.storage).toBe('file')
    const secret = await provision(suite.hub, DEVICE)
    markSent(suite.hub, DEVICE, 'm', '1.0.0')
    let client = await suite.deviceOn(suite.hub, secret)
    await Promise.all(Array.from({ length: 30 }, (_, i) => send(client, batch(i))))
    // Every PUBACK came after its PubAck: all 30 are in the stream now.
    expect((await suite.jsm.streams.info(STREAM_NAMES.telemetry)).state.messages).toBe(30)

    // Restart while the consumer may be mid-way: what it had not committed is delivered again.
    await suite.hub?.close()
    suite.hub = await suite.openHub(dir)
    client = await suite.deviceOn(suite.hub, secret)
    // Ten new batches and five resends of stored ones (a device that missed its PUBACKs).
    await Promise.all([
      ...Array.from({ length: 10 }, (_, i) => send(client, batch(30 + i))),
      ...[0, 1, 2, 3, 4].map((i) => send(client, batch(i))),
    ])
    const streamHub = suite.hub
    await waitFor(() => streamHub.store.telemetry.deviceTotals(DEVICE).batches === 40, 20_000, '40 batches applied')
    await waitForAsync(suite.consumerIdle, 20_000, 'the consumer to ack everything')

    // A message committed but whose ack was lost comes again (here: the same batch under another message id).
    const js = suite.nc.jetstream()
    await js.publish(`${SUBJECTS.telemetry}.${subjectToken(DEVICE)}`, Buffer.from(JSON.stringify(batch(7))), {
      msgID: 'lost-ack-7',
    })
    await waitForAsync(suite.consumerIdle, 10_000, 'the redelivery acked')
    expect(streamHub.store.telemetry.deviceTotals(DEVICE)).toMatchObject({ batches: 40, requests: 200 })
    expect(requestsOf(streamHub)).toBe(200)
    expect(streamHub.streaming?.consumer.stats.rejected).toEqual({})
  }, 40_000)

  it('terminates hostile stream messages with a stable code, applies the good ones, and never sees the bad ones again', async () => {
    const dir = suite.newDir()
    suite.hub = await suite.openHub(dir)
    const secret = await provision(suite.hub, DEVICE)
    markSent(suite.hub, DEVICE, 'm', '1.0.0')
    const js = suite.nc.jetstream()
    const tele = (token: string) => `${SUBJECTS.telemetry}.${token}`
    await js.publish(tele(subjectToken(DEVICE)), Buffer.from('{not json'))
    await js.publish(tele('someone-else'), Buffer.from(JSON.stringify(batch(1)))) // subject and payload disagree
    await js.publish(tele('ghost'), Buffer.from(JSON.stringify(batch(2, 5, 'ghost')))) // no such device
    await js.publish(
      `${SUBJECTS.samples}.${subjectToken(DEVICE)}`,
      Buffer.from(JSON.stringify({ v: 1, deviceId: DEVICE })),
    )
    await js.publish(tele(subjectToken(DEVICE)), Buffer.from(JSON.stringify(batch(3))))
    const streamHub = suite.hub
    await waitFor(() => streamHub.store.telemetry.hasBatch(DEVICE, 'batch-00003'), 10_000, 'the good batch')
    await waitForAsync(suite.consumerIdle, 10_000, 'every message settled')
    expect(streamHub.streaming?.consumer.stats.rejected).toEqual({
      EF_ERR_MSG_JSON: 1,
      EF_ERR_STREAM_MESSAGE: 2,
      EF_ERR_MSG_SCHEMA: 1,
    })
    expect(streamHub.store.telemetry.deviceTotals(DEVICE)).toMatchObject({ batches: 1, requests: 5 })
    expect(streamHub.store.telemetry.hasBatch('ghost', 'batch-00002')).toBe(false)

    // A restarted consumer is not handed the terminated messages again.
    await suite.hub?.close()
    suite.hub = await suite.openHub(dir)
    const h2 = suite.hub
    const client = await suite.deviceOn(h2, secret)
    await send(client, batch(4))
    await waitFor(() => h2.store.telemetry.hasBatch(DEVICE, 'batch-00004'), 10_000, 'a batch after the restart')
    await waitForAsync(suite.consumerIdle, 10_000, 'every message settled')
    expect(h2.streaming?.consumer.stats.rejected).toEqual({})
    expect(h2.store.telemetry.deviceTotals(DEVICE)).toMatchObject({ batches: 2, requests: 10 })
  }, 40_000)
})
