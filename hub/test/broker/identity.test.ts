// Broker identities [EF-1.3.4]: a feed consumer's API token (a viewer's
// included) cannot take a device's or the hub's client id, so it cannot knock
// the device offline nor inherit its queued commands; the hub's id is reserved
// to the hub secret. Real in-process hub, real mqtt.js clients.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import mqtt, { type MqttClient } from 'mqtt'
import { topics } from '@edgefleet/shared'
import { issueToken } from '../../src/api/auth.js'
import { FEED_USERNAME } from '../../src/broker/embedded.js'
import { feedClientIdAllowed, hubClientId } from '../../src/broker/identity.js'
import { connectDevice, provision, startTestHub, waitFor, type TestHub } from '../fixtures/hub.js'

/** Connects and resolves with the CONNACK return code (0 = accepted). */
function connackOf(url: string, clientId: string, username: string, password: string): Promise<number> {
  return new Promise((resolve) => {
    const c: MqttClient = mqtt.connect(url, { clientId, username, password, reconnectPeriod: 0, connectTimeout: 5000 })
    c.once('connect', () => {
      c.end(true)
      resolve(0)
    })
    c.once('error', (err) => {
      c.end(true)
      resolve((err as { code?: number }).code ?? -1)
    })
  })
}

describe('broker identities [EF-1.3.4]', () => {
  let testHub: TestHub
  let secret: string
  let viewer: { id: string; token: string }
  beforeAll(async () => {
    testHub = await startTestHub()
    secret = await provision(testHub.hub, 'dev-1')
    viewer = issueToken(testHub.hub.store, 'viewer', 'viewer', Date.now())
  })
  afterAll(async () => {
    await testHub?.close()
  })

  it('binds feed client ids to the token', () => {
    expect(feedClientIdAllowed(`$feed-${viewer.id}`, viewer.id)).toBe(true)
    expect(feedClientIdAllowed(`$feed-${viewer.id}-trainer.2`, viewer.id)).toBe(true)
    expect(feedClientIdAllowed(`$feed-${viewer.id}-`, viewer.id)).toBe(false)
    expect(feedClientIdAllowed(`$feed-${viewer.id}x`, viewer.id)).toBe(false)
    expect(feedClientIdAllowed('$feed-other', viewer.id)).toBe(false)
    expect(feedClientIdAllowed('dev-1', viewer.id)).toBe(false)
    expect(hubClientId('s1')).toMatch(/^\$hub-[0-9a-f]{24}$/)
    expect(hubClientId('s1')).toBe(hubClientId('s1'))
    expect(hubClientId('s1')).not.toBe(hubClientId('s2'))
  })

  it("refuses a viewer token under a device's client id, again and again; the device stays connected", async () => {
    const device = await connectDevice(testHub.hub.mqttUrl, 'dev-1', secret)
    let closes = 0
    device.on('close', () => closes++)
    for (let i = 0; i < 5; i++)
      expect(await connackOf(testHub.hub.mqttUrl, 'dev-1', FEED_USERNAME, viewer.token)).toBe(2) // identifier rejected
    await new Promise((r) => setTimeout(r, 200))
    expect(closes).toBe(0)
    expect(device.connected).toBe(true)
    // Its queued commands stay its own: a command published now reaches it.
    const got = new Promise<string>((resolve) => device.once('message', (topic) => resolve(topic)))
    await device.subscribeAsync(topics.cmd('dev-1'), { qos: 1 })
    await new Promise<void>((resolve, reject) => {
      testHub.hub.broker!.aedes.publish(
        { cmd: 'publish', topic: topics.cmd('dev-1'), payload: Buffer.from('{}'), qos: 1, retain: false, dup: false },
        (err) => (err ? reject(err) : resolve()),
      )
    })
    expect(await got).toBe(topics.cmd('dev-1'))
    await device.endAsync()
  })

  it("refuses a viewer token under the hub's client id, and anyone but the hub secret under $hub-", async () => {
    const hubId = hubClientId(testHub.hub.keys.hubSecret)
    // aedes keeps its connected clients by id in `clients`, which its types do not declare.
    const connected = () => (testHub.hub.broker!.aedes as unknown as { clients: Record<string, unknown> }).clients
    const hubClients = () => Object.keys(connected()).filter((id) => id === hubId).length
    expect(hubClients()).toBe(1) // the hub's own client uses it
    expect(await connackOf(testHub.hub.mqttUrl, hubId, FEED_USERNAME, viewer.token)).toBe(2)
    expect(await connackOf(testHub.hub.mqttUrl, '$hub-guess', FEED_USERNAME, viewer.token)).toBe(2)
    expect(await connackOf(testHub.hub.mqttUrl, hubId, 'dev-1', secret)).not.toBe(0)
    await new Promise((r) => setTimeout(r, 200))
    expect(hubClients()).toBe(1)
  })

  it("refuses another token's feed ids and accepts the token's own", async () => {
    const other = issueToken(testHub.hub.store, 'other', 'viewer', Date.now())
    expect(await connackOf(testHub.hub.mqttUrl, `$feed-${other.id}`, FEED_USERNAME, viewer.token)).toBe(2)
    expect(await connackOf(testHub.hub.mqttUrl, 'trainer-1', FEED_USERNAME, viewer.token)).toBe(2)
    expect(await connackOf(testHub.hub.mqttUrl, `$feed-${viewer.id}-trainer-1`, FEED_USERNAME, viewer.token)).toBe(0)
    expect(await connackOf(testHub.hub.mqttUrl, `$feed-${viewer.id}`, FEED_USERNAME, 'ef_not-a-token')).toBe(4)
    await waitFor(() => testHub.hub.broker!.aedes.connectedClients === 1, 2000, 'only the hub left')
  })
})
