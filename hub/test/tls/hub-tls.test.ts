// The hub with TLS on every listener [EF-10]: MQTT over TLS and HTTPS with the
// generated CA, password and certificate devices [EF-10.3], plain clients on
// the TLS port, and the plain-bind rule [EF-10.2]. Real mqtt.js clients and
// real TLS sockets.
import { readFileSync } from 'node:fs'
import { get as httpsGet } from 'node:https'
import { connect as tcpConnect } from 'node:net'
import mqtt, { type IClientOptions } from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startHub } from '../../src/hub.js'
import { ensureHubTls, issueDeviceCert } from '../../src/tls/ca.js'
import { COMPILE_WORKER, tempDir } from '../fixtures/hub.js'
import type { Hub } from '../../src/hub.js'

/** Connects and resolves 'connected', or the CONNACK refusal code / error text. */
async function tryConnect(url: string, o: IClientOptions): Promise<string | number> {
  const c = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 5000, ...o })
  try {
    return await new Promise<string | number>((resolve) => {
      c.once('connect', () => resolve('connected'))
      c.once('error', (err) => resolve((err as { code?: number }).code ?? err.message))
    })
  } finally {
    c.end(true)
  }
}

async function httpsStatus(url: string, ca: Buffer): Promise<number | string> {
  return new Promise((resolve) => {
    httpsGet(url, { ca }, (res) => {
      res.resume()
      resolve(res.statusCode ?? 0)
    }).on('error', (err) => resolve((err as NodeJS.ErrnoException).code ?? err.message))
  })
}

describe('hub with TLS', () => {
  let hub: Hub
  let ca: Buffer
  let secret: string
  let hubDir: string
  const cleanups: (() => void)[] = []
  beforeAll(async () => {
    const t = tempDir()
    cleanups.push(t.cleanup)
    hubDir = t.dir
    hub = await startHub({
      dataDir: t.dir,
      tls: true,
      mqttsPort: 0,
      httpPort: 0,
      log: 'silent',
      compileWorkerUrl: COMPILE_WORKER,
      auth: false,
      rolloutTickMs: 0,
    })
    ca = readFileSync(hub.caFile!)
    const res = await hub.api.inject({
      method: 'POST',
      url: '/api/v1/devices',
      payload: { id: 'dev-pw', profile: 'gateway-rpi4' },
    })
    secret = res.json<{ secret: string }>().secret
  })
  afterAll(async () => {
    await hub?.close()
    cleanups.forEach((c) => c())
  })

  it('serves mqtts:// and https:// and names the CA file', async () => {
    expect(hub.mqttUrl).toMatch(/^mqtts:\/\/127\.0\.0\.1:\d+$/)
    expect(hub.httpUrl).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/)
    expect(hub.caFile).toMatch(/tls\/ca\.pem$/)
    expect(await httpsStatus(`${hub.httpUrl}/healthz`, ca)).toBe(200)
    // Not trusted without the CA.
    expect(await httpsStatus(`${hub.httpUrl}/healthz`, Buffer.from(''))).toMatch(/SELF_SIGNED|UNABLE_TO_VERIFY/)
  })

  it('accepts a password device that trusts the CA, and a client that does not trust it gets nowhere', async () => {
    const o = { clientId: 'dev-pw', username: 'dev-pw', password: secret }
    expect(await tryConnect(hub.mqttUrl, { ...o, ca })).toBe('connected')
    expect(String(await tryConnect(hub.mqttUrl, o))).toMatch(/self.signed|unable to verify/i)
  })

  it('gives a plain-TCP MQTT client on the TLS port no CONNACK', async () => {
    const port = Number(new URL(hub.mqttUrl).port)
    const sock = tcpConnect(port, '127.0.0.1')
    const received: Buffer[] = []
    sock.on('data', (d) => received.push(d))
    sock.on('error', () => undefined)
    await new Promise((r) => sock.once('connect', r))
    // MQTT 3.1.1 CONNECT for client "x", as a plain client would send it.
    sock.write(Buffer.from([0x10, 0x0d, 0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x04, 0x02, 0x00, 0x3c, 0x00, 0x01, 0x78]))
    await new Promise((r) => setTimeout(r, 1500))
    sock.destroy()
    expect(received.some((b) => b[0] === 0x20)).toBe(false) // no CONNACK (0x20) ever
  })

  it('mutual TLS: a device connects with its certificate and no password; its rights are its own [EF-10.3]', async () => {
    const res = await hub.api.inject({
      method: 'POST',
      url: '/api/v1/devices',
      payload: { id: 'dev-cert', profile: 'gateway-rpi4', cert: true },
    })
    expect(res.statusCode).toBe(201)
    const tls = res.json<{ tls: { cert: string; key: string; ca: string; caFile: string } }>().tls
    expect(tls.ca).toBe(ca.toString())
    expect(tls.caFile).toBe(hub.caFile)
    const client = mqtt.connect(hub.mqttUrl, {
      clientId: 'dev-cert',
      ca,
      cert: tls.cert,
      key: tls.key,
      reconnectPeriod: 0,
    })
    await new Promise<void>((resolve, reject) => {
      client.once('connect', () => resolve())
      client.once('error', reject)
    })
    // The ACL applies to the certificate's device: its own cmd yes, another's no.
    const own = await client.subscribeAsync('ef/v1/dev/dev-cert/cmd', { qos: 1 })
    expect(own[0].qos).toBe(1)
    const other = await client
      .subscribeAsync('ef/v1/dev/dev-pw/cmd', { qos: 1 })
      .catch((e: unknown) => (e as { packet?: { granted: number[] } }).packet?.granted)
    expect(JSON.stringify(other)).toContain('128')
    await client.endAsync()

    // Client id other than the CN: refused.
    expect(await tryConnect(hub.mqttUrl, { clientId: 'dev-pw', ca, cert: tls.cert, key: tls.key })).toBe(5)
    // Disabled: the store says no, whatever the certificate says.
    await hub.api.inject({ method: 'POST', url: '/api/v1/devices/dev-cert/disable' })
    expect(await tryConnect(hub.mqttUrl, { clientId: 'dev-cert', ca, cert: tls.cert, key: tls.key })).toBe(5)
  })

  it('refuses a certificate from another CA, and one for a device never provisioned', async () => {
    const foreign = tempDir()
    cleanups.push(foreign.cleanup)
    await ensureHubTls(foreign.dir, ['localhost'])
    const stranger = await issueDeviceCert(foreign.dir, 'dev-pw')
    expect(await tryConnect(hub.mqttUrl, { clientId: 'dev-pw', ca, cert: stranger.cert, key: stranger.key })).toBe(5)
    const ghost = await issueDeviceCert(hubDir, 'ghost')
    expect(await tryConnect(hub.mqttUrl, { clientId: 'ghost', ca, cert: ghost.cert, key: ghost.key })).toBe(5)
  })
})

describe('plain listeners off loopback [EF-10.2]', () => {
  it('are refused without insecure (EF_ERR_INSECURE_BIND), before anything is opened', async () => {
    const t = tempDir()
    try {
      const err = await startHub({ dataDir: t.dir, host: '0.0.0.0', tls: false, log: 'silent' }).catch(
        (e: unknown) => e,
      )
      expect(err).toMatchObject({ code: 'EF_ERR_INSECURE_BIND' })
    } finally {
      t.cleanup()
    }
  })

  it('start with insecure, and say so in the log', async () => {
    const tmp = tempDir()
    const lines: string[] = []
    const pino = (await import('pino')).default
    const log = pino({ level: 'warn' }, { write: (l: string) => void lines.push(l) })
    const hub = await startHub({
      dataDir: tmp.dir,
      host: '0.0.0.0',
      tls: false,
      insecure: true,
      mqttPort: 0,
      httpPort: 0,
      log,
      compileWorkerUrl: COMPILE_WORKER,
      rolloutTickMs: 0,
    })
    try {
      expect(hub.mqttUrl).toMatch(/^mqtt:\/\//)
      expect(lines.some((l) => l.includes('EF_ERR_INSECURE_BIND'))).toBe(true)
    } finally {
      await hub.close()
      tmp.cleanup()
    }
  })
})
