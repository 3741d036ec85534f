// Identity lifecycle behind an external Mosquitto 2 [EF-1.3.3, EF-4.11]: the
// hub rewrites the password file and makes Mosquitto reload it; a disabled or
// re-keyed device loses its live session and is refused afterwards (real
// broker, real mqtt.js device).
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { MqttClient } from 'mqtt'
import type { Hub } from '../../src/hub.js'
import { connectDevice, onMosquitto, provision, startExternalBrokerHub, tempDir } from '../fixtures/hub.js'
import { startMosquitto, type Mosquitto } from '../../../test/support/mosquitto.mjs'

/** Mosquitto re-reads its password file on SIGHUP, a moment after the hub wrote it: retry briefly. */
async function connectSoon(hub: Hub, id: string, secret: string): Promise<MqttClient> {
  for (let i = 0; ; i++) {
    try {
      return await connectDevice(hub.mqttUrl, id, secret)
    } catch (err) {
      if (i > 50) throw err
      await new Promise((r) => setTimeout(r, 100))
    }
  }
}

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

async function refusedCode(hub: Hub, id: string, secret: string): Promise<number | undefined> {
  try {
    ;(await connectDevice(hub.mqttUrl, id, secret)).end(true)
  } catch (err) {
    return (err as { code?: number }).code
  }
  throw new Error(`${id} was let in`)
}

describe('device lifecycle through an external Mosquitto', () => {
  const { dir, cleanup } = tempDir('ef-lc-mosq-')
  let mosq: Mosquitto
  let hub: Hub
  beforeAll(async () => {
    mosq = await startMosquitto(join(dir, 'mosquitto'))
    hub = await startExternalBrokerHub(join(dir, 'hub'), onMosquitto(mosq))
  }, 60_000)
  afterAll(async () => {
    await hub?.close()
    await mosq?.stop()
    cleanup()
  })

  it('disable drops the session within 1 s and refuses the device; enable lets it in again', async () => {
    const secret = await provision(hub, 'ext-dis')
    const c = await connectSoon(hub, 'ext-dis', secret)
    const closed = closedWithin(c, 1000)
    expect((await hub.api.inject({ method: 'POST', url: '/api/v1/devices/ext-dis/disable' })).statusCode).toBe(200)
    expect(await closed).toBeLessThan(1000)
    c.end(true)
    expect(await refusedCode(hub, 'ext-dis', secret)).toBe(5) // Mosquitto: not authorized
    expect((await hub.api.inject({ method: 'POST', url: '/api/v1/devices/ext-dis/enable' })).statusCode).toBe(200)
    ;(await connectSoon(hub, 'ext-dis', secret)).end(true)
  })

  it('rotate-secret drops the session on the old secret and lets the new one in', async () => {
    const old = await provision(hub, 'ext-rot')
    const c = await connectSoon(hub, 'ext-rot', old)
    const closed = closedWithin(c, 1000)
    const res = await hub.api.inject({ method: 'POST', url: '/api/v1/devices/ext-rot/rotate-secret' })
    expect(await closed).toBeLessThan(1000)
    c.end(true)
    expect(await refusedCode(hub, 'ext-rot', old)).toBe(5)
    ;(await connectSoon(hub, 'ext-rot', res.json<{ secret: string }>().secret)).end(true)
  })
})
