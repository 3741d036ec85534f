// Identity lifecycle [EF-1.3.3, EF-8.10]: removing, disabling and re-keying a
// device drops its live connection on the real embedded broker within a second
// and refuses it afterwards (real mqtt.js clients); API tokens expire with
// their own code.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import mqtt, { type MqttClient } from 'mqtt'
import { FEED_USERNAME } from '../../src/broker/embedded.js'
import { connectDevice, startTestHub, type TestHub } from '../fixtures/hub.js'
import { registerVersions } from '../fixtures/rollouts.js'

let testHub: TestHub
let admin: string
let operator: string
let clock = Date.now()

const call = (method: 'GET' | 'POST' | 'DELETE', url: string, token = admin, payload?: object) =>
  testHub.hub.api.inject({
    method,
    url,
    ...(payload !== undefined ? { payload } : {}),
    headers: { authorization: `Bearer ${token}` },
  })

async function provision(id: string): Promise<string> {
  const res = await call('POST', '/api/v1/devices', admin, { id, profile: 'gateway-rpi4' })
  expect(res.statusCode).toBe(201)
  return res.json<{ secret: string }>().secret
}

/** Resolves with the ms from now until the client's connection closes; rejects after `limitMs`. */
function closedWithin(c: MqttClient, limitMs: number): Promise<number> {
  const start = Date.now()
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`still connected after ${limitMs} ms`)), limitMs)
    c.once('close', () => {
      clearTimeout(timer)
      resolve(Date.now() - start)
    })
  })
}

/** CONNACK return code of a refused connection (mqtt.js error code); throws if it was accepted. */
async function refused(id: string, secret: string): Promise<number | undefined> {
  try {
    const c = await connectDevice(testHub.hub.mqttUrl, id, secret)
    c.end(true)
  } catch (err) {
    return (err as { code?: number }).code
  }
  throw new Error(`${id} was let in`)
}

beforeAll(async () => {
  testHub = await startTestHub({ auth: true, now: () => clock })
  admin = testHub.hub.adminToken!
  const res = await call('POST', '/api/v1/tokens', admin, { name: 'op', role: 'operator' })
  operator = res.json<{ token: string }>().token
})
afterAll(() => testHub?.close())

describe('device lifecycle on the embedded broker', () => {
  it('remove: the live connection drops within 1 s, the id is refused afterwards, history stays, the id is not re-provisioned', async () => {
    const secret = await provision('rm-1')
    const c = await connectDevice(testHub.hub.mqttUrl, 'rm-1', secret)
    const closed = closedWithin(c, 1000)
    expect((await call('DELETE', '/api/v1/devices/rm-1', operator)).json().error.code).toBe(
      'EF_ERR_AUTH_FORBIDDEN_ROLE',
    )
    expect((await call('DELETE', '/api/v1/devices/rm-1')).statusCode).toBe(204)
    expect(await closed).toBeLessThan(1000)
    c.end(true)
    expect(await refused('rm-1', secret)).toBe(4) // bad user name or password
    expect(testHub.hub.store.devices.secretHash('rm-1')).toBeUndefined()
    const got = await call('GET', '/api/v1/devices/rm-1')
    expect(got.statusCode).toBe(200)
    expect(got.json().device).toMatchObject({ id: 'rm-1', status: 'removed', statusAt: clock })
    for (const [method, url, payload] of [
      ['POST', '/api/v1/devices', { id: 'rm-1', profile: 'gateway-rpi4' }],
      ['POST', '/api/v1/devices/rm-1/enable', undefined],
      ['POST', '/api/v1/devices/rm-1/rotate-secret', undefined],
      ['DELETE', '/api/v1/devices/rm-1', undefined],
    ] as const) {
      const res = await call(method, url, admin, payload)
      expect(res.statusCode, url).toBe(409)
      expect(res.json().error.code).toBe('EF_ERR_DEVICE_REMOVED')
    }
    expect(await refused('rm-1', secret)).toBe(4)
  })

  it('disable (an operator may) drops and refuses the device; enable (admin only) lets the same secret in again', async () => {
    const secret = await provision('dis-1')
    const c = await connectDevice(testHub.hub.mqttUrl, 'dis-1', secret)
    const closed = closedWithin(c, 1000)
    const res = await call('POST', '/api/v1/devices/dis-1/disable', operator)
    expect(res.statusCode).toBe(200)
    expect(res.json().device.status).toBe('disabled')
    expect(await closed).toBeLessThan(1000)
    c.end(true)
    expect(await refused('dis-1', secret)).toBe(4)
    expect(testHub.hub.store.devices.select({ device: 'dis-1' })).toEqual([]) // no deployment targets it
    expect((await call('POST', '/api/v1/devices/dis-1/enable', operator)).statusCode).toBe(403)
    const enabled = await call('POST', '/api/v1/devices/dis-1/enable')
    expect(enabled.json().device.status).toBe('active')
    const again = await connectDevice(testHub.hub.mqttUrl, 'dis-1', secret)
    expect(again.connected).toBe(true)
    again.end(true)
  })

  it('rotate-secret: the new secret is answered once, the session on the old one drops, the old one is refused', async () => {
    const old = await provision('rot-1')
    const c = await connectDevice(testHub.hub.mqttUrl, 'rot-1', old)
    const closed = closedWithin(c, 1000)
    const res = await call('POST', '/api/v1/devices/rot-1/rotate-secret')
    expect(res.statusCode).toBe(200)
    const fresh = res.json<{ secret: string }>().secret
    expect(fresh).toMatch(/^[A-Za-z0-9_-]{43}$/)
    expect(fresh).not.toBe(old)
    expect(await closed).toBeLessThan(1000)
    c.end(true)
    expect(await refused('rot-1', old)).toBe(4)
    const next = await connectDevice(testHub.hub.mqttUrl, 'rot-1', fresh)
    expect(next.connected).toBe(true)
    next.end(true)
    // The device's HTTP artifact access uses the same credentials [EF-4.10].
    const basic = (s: string) => ({ authorization: `Basic ${Buffer.from(`rot-1:${s}`).toString('base64')}` })
    const art = (s: string) =>
      testHub.hub.api.inject({ method: 'GET', url: '/api/v1/artifacts/' + 'a'.repeat(64), headers: basic(s) })
    expect((await art(old)).json().error.code).toBe('EF_ERR_AUTH_BAD_CREDENTIALS')
    expect((await art(fresh)).json().error.code).not.toBe('EF_ERR_AUTH_BAD_CREDENTIALS')
  })

  it('lifecycle calls on an unknown device answer 404 EF_ERR_DEVICE_NOT_FOUND', async () => {
    for (const [method, url] of [
      ['POST', '/api/v1/devices/nope/disable'],
      ['POST', '/api/v1/devices/nope/enable'],
      ['POST', '/api/v1/devices/nope/rotate-secret'],
      ['DELETE', '/api/v1/devices/nope'],
    ] as const) {
      const res = await call(method, url)
      expect(res.statusCode, url).toBe(404)
      expect(res.json().error.code).toBe('EF_ERR_DEVICE_NOT_FOUND')
    }
  })
})

describe('rollouts leave disabled and removed devices out', () => {
  it('neither at creation nor as joiners of a running rollout', async () => {
    await registerVersions(testHub, 'lc', ['1.0.0'])
    for (const id of ['ro-on', 'ro-off', 'ro-gone'])
      expect(
        (await call('POST', '/api/v1/devices', admin, { id, profile: 'gateway-rpi4', tags: { lc: 'x' } })).statusCode,
      ).toBe(201)
    await call('POST', '/api/v1/devices/ro-off/disable')
    await call('DELETE', '/api/v1/devices/ro-gone')
    const created = await call('POST', '/api/v1/rollouts', admin, {
      model: 'lc',
      version: '1.0.0',
      selector: 'tag=lc=x',
      waves: [{ percent: 100 }],
      schedule: { maintenanceWindows: false },
    })
    expect(created.statusCode, created.body).toBe(201)
    const id = created.json<{ rollout: { id: string } }>().rollout.id
    const members = async () =>
      ((await call('GET', `/api/v1/rollouts/${id}/devices`)).json().items as { deviceId: string }[])
        .map((d) => d.deviceId)
        .sort()
    expect(await members()).toEqual(['ro-on'])
    for (const id of ['ro-new', 'ro-new-off'])
      await call('POST', '/api/v1/devices', admin, { id, profile: 'gateway-rpi4', tags: { lc: 'x' } })
    await call('POST', '/api/v1/devices/ro-new-off/disable')
    await testHub.hub.rollouts.tick()
    expect(await members()).toEqual(['ro-new', 'ro-on'])
  })
})

describe('API token expiry', () => {
  it('a token created with expiresInSeconds works until then, is 401 EF_ERR_AUTH_TOKEN_EXPIRED after, and lists its expiry', async () => {
    const res = await call('POST', '/api/v1/tokens', admin, { name: 'ci', role: 'viewer', expiresInSeconds: 3600 })
    expect(res.statusCode).toBe(201)
    const { token, expiresAt, id } = res.json<{ token: string; expiresAt: number; id: string }>()
    expect(expiresAt).toBe(clock + 3_600_000)
    expect((await call('GET', '/api/v1/devices', token)).statusCode).toBe(200)
    const listed = (await call('GET', '/api/v1/tokens')).json().items as { id: string; expiresAt: number | null }[]
    expect(listed.find((x) => x.id === id)?.expiresAt).toBe(expiresAt)
    expect(listed.find((x) => x.id !== id)?.expiresAt).toBeNull() // the admin token never expires
    clock += 3_600_000
    const late = await call('GET', '/api/v1/devices', token)
    expect(late.statusCode).toBe(401)
    expect(late.json().error.code).toBe('EF_ERR_AUTH_TOKEN_EXPIRED')
    // Nor does the expired token read the live feed over MQTT [EF-9.7].
    const feed = mqtt.connect(testHub.hub.mqttUrl, { username: FEED_USERNAME, password: token, reconnectPeriod: 0 })
    const code = await new Promise<number | undefined>((resolve) => {
      feed.once('connect', () => resolve(0))
      feed.once('error', (err) => resolve((err as { code?: number }).code))
    })
    feed.end(true)
    expect(code).toBe(4)
  })

  it('a lifetime that is not a positive whole number of seconds is 400 EF_ERR_HTTP_BAD_REQUEST', async () => {
    for (const expiresInSeconds of [0, -5, 1.5, 'P30D']) {
      const res = await call('POST', '/api/v1/tokens', admin, { name: 'x', role: 'viewer', expiresInSeconds })
      expect(res.statusCode).toBe(400)
      expect(res.json().error.code).toBe('EF_ERR_HTTP_BAD_REQUEST')
    }
  })
})
