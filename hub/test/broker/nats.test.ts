// A NATS server cluster as the device broker [EF-4.12]: the hub writes one
// authorization file with a user per device (EF-1.3's ACL on subjects) and
// reloads all three nodes; real nats-server nodes, real mqtt.js devices.
import { join } from 'node:path'
import { readFileSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { MqttClient } from 'mqtt'
import { topics } from '@edgefleet/shared'
import type { Hub } from '../../src/hub.js'
import { devicePermissions, natsSubjects } from '../../src/broker/nats.js'
import { HUB_USERNAME } from '../../src/keys.js'
import { startExternalBrokerHub, connectDevice, provision, tempDir, waitFor } from '../fixtures/hub.js'
import { startNatsCluster, type NatsCluster } from '../../../test/support/nats.mjs'

const DIGEST = 'ab'.repeat(32)

/** The nodes reload a moment after the hub wrote the file (SIGHUP): retry briefly. */
async function connectSoon(url: string, id: string, secret: string, clientId = id): Promise<MqttClient> {
  for (let i = 0; ; i++) {
    try {
      return await connectDevice(url, id, secret, { clean: false, clientId })
    } catch (err) {
      if (i > 50) throw err
      await new Promise((r) => setTimeout(r, 100))
    }
  }
}

/**
 * A subscription that must be granted. Right after a cluster starts (or a node reloads), NATS may
 * answer a QoS 1 SUBSCRIBE with a failure while JetStream, which holds MQTT sessions, elects its
 * leaders: retry for a while, as a device's reconnect loop would.
 */
async function subscribeSoon(c: MqttClient, filter: string): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await c.subscribeAsync(filter, { qos: 1 })
      return
    } catch (err) {
      if (attempt > 50) throw err
      await new Promise((r) => setTimeout(r, 200))
    }
  }
}

/** SUBACK return codes (128 = refused). */
async function granted(c: MqttClient, filter: string): Promise<number> {
  try {
    return (await c.subscribeAsync(filter, { qos: 1 }))[0].qos
  } catch {
    return 128 // mqtt.js rejects a SUBACK with only refusals
  }
}

describe('subjects and permissions', () => {
  it('maps topics to subjects: / to ., + to *, a trailing # to the parent and .>', () => {
    expect(natsSubjects('ef/v1/dev/d1/state')).toEqual(['ef.v1.dev.d1.state'])
    expect(natsSubjects('ef/v1/art/+/+')).toEqual(['ef.v1.art.*.*'])
    expect(natsSubjects(topics.repairs('d1'))).toEqual(['ef.v1.dev.d1.chunk', 'ef.v1.dev.d1.chunk.>'])
  })
  it("a device publishes only its own kinds and subscribes only to its cmd, its repairs, artifacts and NATS's QoS 1 delivery", () => {
    const p = devicePermissions('d1')
    expect(p.publish).toEqual(['state', 'events', 'telemetry', 'samples', 'fetch'].map((k) => `ef.v1.dev.d1.${k}`))
    expect(p.subscribe).toEqual([
      'ef.v1.dev.d1.cmd',
      'ef.v1.dev.d1.chunk',
      'ef.v1.dev.d1.chunk.>',
      'ef.v1.art.*.*',
      '$MQTT.sub.>',
    ])
  })
})

describe('device credentials on a 3-node NATS cluster', () => {
  const { dir, cleanup } = tempDir('ef-nats-')
  let cluster: NatsCluster
  let hub: Hub
  const clients: MqttClient[] = []
  beforeAll(async () => {
    cluster = await startNatsCluster(join(dir, 'nats'))
    hub = await startExternalBrokerHub(join(dir, 'hub'), {
      reconcileMs: 0,
      brokerUrl: cluster.urls.join(','),
      natsDir: cluster.authDir,
      natsPidFiles: cluster.pidFiles,
    })
  }, 90_000)
  afterAll(async () => {
    for (const c of clients) c.end(true)
    await hub?.close()
    await cluster?.stop()
    cleanup()
  })

  it('writes one user per device (bcrypt, MQTT only) and the hub', async () => {
    await provision(hub, 'n-file')
    const text = readFileSync(cluster.authFile, 'utf8')
    expect(text).toContain(`user: "${HUB_USERNAME}"`)
    expect(text).toMatch(/user: "n-file", password: "\$2b\$04\$[^"]+", allowed_connection_types: \["MQTT"\]/)
    expect(text).not.toContain('placeholder')
  })

  it("a device reaches its own topics on every node and is refused another device's", async () => {
    const sa = await provision(hub, 'n-a')
    const sb = await provision(hub, 'n-b')
    const watcher = await connectSoon(cluster.urls[0], HUB_USERNAME, hub.keys.hubSecret, 'watcher')
    clients.push(watcher)
    const states: string[] = []
    watcher.on('message', (t) => states.push(t))
    await subscribeSoon(watcher, 'ef/v1/dev/+/telemetry')
    const clientA = await connectSoon(cluster.urls[1], 'n-a', sa)
    const clientB = await connectSoon(cluster.urls[2], 'n-b', sb)
    clients.push(clientA, clientB)
    expect(await granted(clientA, topics.cmd('n-a'))).toBe(1)
    expect(await granted(clientA, topics.repairs('n-a'))).toBe(1)
    expect(await granted(clientA, topics.artifact(DIGEST))).toBe(1)
    expect(await granted(clientA, topics.cmd('n-b'))).toBe(128)
    expect(await granted(clientA, topics.repairs('n-b'))).toBe(128)
    expect(await granted(clientA, 'ef/v1/dev/+/cmd')).toBe(128)
    expect(await granted(clientA, '#')).toBe(128)
    expect(await granted(clientA, '$MQTT/sub/#')).toBe(128)
    const got: string[] = []
    clientA.on('message', (t, p) => got.push(`${t}=${p.toString()}`))
    expect(await granted(clientB, topics.cmd('n-b'))).toBe(1)
    const hubPub = await connectSoon(cluster.urls[2], HUB_USERNAME, hub.keys.hubSecret, 'publisher')
    clients.push(hubPub)
    await hubPub.publishAsync(topics.cmd('n-b'), 'for-b', { qos: 1 })
    await hubPub.publishAsync(topics.cmd('n-a'), 'for-a', { qos: 1 })
    await hubPub.publishAsync(topics.chunk(DIGEST, 0), 'chunk-0', { qos: 1 })
    // a's publish as b is dropped by the broker (NATS still acknowledges it); its own goes through.
    await clientA.publishAsync(topics.telemetry('n-b'), 'forged', { qos: 1 })
    await clientA.publishAsync(topics.telemetry('n-a'), 'own', { qos: 1 })
    await waitFor(() => got.length >= 2 && states.length >= 1, 5000, 'deliveries')
    await new Promise((r) => setTimeout(r, 300))
    expect(got.sort()).toEqual([`${topics.chunk(DIGEST, 0)}=chunk-0`, `${topics.cmd('n-a')}=for-a`])
    expect(states).toEqual([topics.telemetry('n-a')])
  })

  it('refuses an id with a dot (NATS cannot carry it) with EF_ERR_BROKER_ID_UNSUPPORTED', async () => {
    const res = await hub.api.inject({
      method: 'POST',
      url: '/api/v1/devices',
      payload: { id: 'n.dot', profile: 'gateway-rpi4' },
    })
    expect(res.statusCode).toBe(400)
    expect(res.json<{ error: { code: string } }>().error.code).toBe('EF_ERR_BROKER_ID_UNSUPPORTED')
  })

  it('disable drops the live session on its node and refuses the device; a wrong secret is refused', async () => {
    const secret = await provision(hub, 'n-dis')
    const c = await connectSoon(cluster.urls[1], 'n-dis', secret)
    const closed = new Promise<void>((resolve) => c.once('close', () => resolve()))
    expect((await hub.api.inject({ method: 'POST', url: '/api/v1/devices/n-dis/disable' })).statusCode).toBe(200)
    await closed
    await expect(connectDevice(cluster.urls[0], 'n-dis', secret)).rejects.toMatchObject({ code: 5 })
    await expect(connectDevice(cluster.urls[0], 'n-a', 'wrong-secret')).rejects.toMatchObject({ code: 5 })
  })
})
