// Hostile clients against the real hub process [EF-1.3.4, EF-1.7]: huge
// CONNECTs before authentication, huge retained messages, a viewer token
// taking a device's or the hub's client id, a device flooding its events.
// Each attack is one that used to work; the test shows it now holds. The hub
// runs as a child process, so its RSS is measured alone.
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { connect as tcpConnect, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import mqtt, { type MqttClient } from 'mqtt'
import Database from 'better-sqlite3'
import { topics } from '@edgefleet/shared'
import { startHub, api, waitFor } from '../support/fleet.mjs'

const MiB = 1024 * 1024

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return m ? Number(m[1]) / 1024 : NaN
}

/** Peak RSS of `pid` while `work` runs, sampled every 20 ms. */
async function peakRssDuring(pid: number, work: () => Promise<unknown>): Promise<number> {
  let peak = rssMiB(pid)
  const timer = setInterval(() => (peak = Math.max(peak, rssMiB(pid))), 20)
  try {
    await work()
  } finally {
    clearInterval(timer)
  }
  return Math.max(peak, rssMiB(pid))
}

/** MQTT fixed header: packet type byte and remaining length. */
function fixedHeader(first: number, remaining: number): Buffer {
  const bytes = [first]
  do {
    let b = remaining % 128
    remaining = Math.floor(remaining / 128)
    if (remaining > 0) b |= 0x80
    bytes.push(b)
  } while (remaining > 0)
  return Buffer.from(bytes)
}

/** Declares a 250 MB CONNECT and streams garbage until the hub closes the socket; resolves with the bytes sent. */
function hugeConnect(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket: Socket = tcpConnect(port, '127.0.0.1')
    let sent = 0
    const block = Buffer.alloc(256 * 1024, 0x61)
    const pump = () => {
      while (!socket.destroyed && sent < 250 * MiB) {
        sent += block.length
        if (!socket.write(block)) return void socket.once('drain', pump)
      }
    }
    socket.once('connect', () => {
      socket.write(fixedHeader(0x10, 250 * MiB))
      pump()
    })
    socket.on('error', () => undefined) // EPIPE / ECONNRESET once the hub closes it
    socket.once('close', () => resolve(sent))
    setTimeout(() => reject(new Error(`socket still open after ${sent} bytes`)), 60_000).unref()
  })
}

/** CONNACK return code of a connection attempt (0 = accepted); the client is closed either way. */
function connack(url: string, opts: mqtt.IClientOptions): Promise<number> {
  return new Promise((resolve) => {
    const c = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 5000, ...opts })
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

async function connectDevice(url: string, id: string, secret: string, extra: mqtt.IClientOptions = {}) {
  const c = mqtt.connect(url, { clientId: id, username: id, password: secret, reconnectPeriod: 0, ...extra })
  await new Promise<void>((resolve, reject) => {
    c.once('connect', () => resolve())
    c.once('error', reject)
  })
  return c
}

async function metric(httpUrl: string, re: RegExp): Promise<number> {
  const text = await (await fetch(new URL('/metrics', httpUrl))).text()
  const m = re.exec(text)
  return m ? Number(m[1]) : 0
}

describe('hostile clients against the real hub', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'ef-hostile-'))
  let hub: Awaited<ReturnType<typeof startHub>>
  let port: number
  const secrets: Record<string, string> = {}
  let hubSecret: string

  beforeAll(async () => {
    hub = await startHub({ dataDir: join(tmp, 'hub') })
    port = Number(new URL(hub.mqttUrl).port)
    for (const id of ['dev-a', 'dev-b', 'dev-c'])
      secrets[id] = (await api(hub.httpUrl, 'POST', '/api/v1/devices', { id, profile: 'gateway-rpi4' })).secret
    hubSecret = JSON.parse(readFileSync(join(tmp, 'hub', 'hub-keys.json'), 'utf8')).hubSecret
  })
  afterAll(async () => {
    await hub?.stop()
    rmSync(tmp, { recursive: true, force: true })
  })

  it('six pre-auth CONNECTs declaring 250 MB each: closed early, hub RSS grows < 64 MiB [EF-1.7.1]', async () => {
    const before = rssMiB(hub.pid)
    let sent: number[] = []
    const peak = await peakRssDuring(hub.pid, async () => {
      sent = await Promise.all(Array.from({ length: 6 }, () => hugeConnect(port)))
    })
    // Kernel socket buffers on both sides hold a few MiB; without the guard each would carry all 250 MB.
    for (const n of sent) expect(n).toBeLessThan(32 * MiB)
    expect(peak - before).toBeLessThan(64)
    expect(
      await metric(hub.httpUrl, /edgefleet_broker_refused_total\{code="EF_ERR_BROKER_PACKET_TOO_LARGE"\} (\d+)/),
    ).toBe(6)
    // Still serving devices.
    const c = await connectDevice(hub.mqttUrl, 'dev-a', secrets['dev-a'])
    expect(c.connected).toBe(true)
    await c.endAsync()
    console.log(
      `pre-auth 250 MB CONNECTs: hub RSS ${before.toFixed(0)} → peak ${peak.toFixed(0)} MiB; bytes accepted before close: ${sent.map((n) => (n / MiB).toFixed(1)).join(', ')} MiB`,
    )
  })

  it('retained messages: 100 MB on its state topic closes the device; retained events are kept nowhere [EF-1.7.1, EF-1.7.4]', async () => {
    const before = rssMiB(hub.pid)
    const dev = await connectDevice(hub.mqttUrl, 'dev-b', secrets['dev-b'])
    const gone = new Promise<void>((resolve) => dev.once('close', () => resolve()))
    dev.publish(topics.state('dev-b'), Buffer.alloc(100 * MiB, 0x7b), { qos: 1, retain: true })
    await gone
    dev.end(true)
    // Under the packet limit but not a state: delivered without retain, so nothing stays in the broker.
    const again = await connectDevice(hub.mqttUrl, 'dev-b', secrets['dev-b'])
    for (let i = 0; i < 20; i++)
      await again.publishAsync(topics.events('dev-b'), Buffer.alloc(1.5 * MiB, 0x20 + i), { qos: 1, retain: true })
    await again.endAsync()
    const probe = await connectDevice(hub.mqttUrl, 'retain-probe', hubSecret, { username: '$hub' })
    const retained: string[] = []
    probe.on('message', (topic, _p, packet) => packet.retain && retained.push(topic))
    await probe.subscribeAsync('ef/v1/dev/dev-b/#', { qos: 1 })
    await new Promise((r) => setTimeout(r, 500))
    await probe.endAsync()
    expect(retained).toEqual([])
    expect(
      await metric(hub.httpUrl, /edgefleet_broker_refused_total\{code="EF_ERR_BROKER_RETAIN_REFUSED"\} (\d+)/),
    ).toBe(20)
    // Nothing kept: after a moment RSS is back within a few tens of MiB of where it was.
    const after = await waitFor(() => (rssMiB(hub.pid) - before < 64 ? rssMiB(hub.pid) : undefined), {
      timeoutMs: 10_000,
      what: 'hub RSS to settle',
    })
    console.log(`retained attack: hub RSS ${before.toFixed(0)} → ${after.toFixed(0)} MiB`)
  })

  it("a viewer token cannot take a device's or the hub's client id; the device stays connected and keeps its commands [EF-1.3.4]", async () => {
    const viewer = await api(hub.httpUrl, 'POST', '/api/v1/tokens', { name: 'viewer', role: 'viewer' })
    const device: MqttClient = await connectDevice(hub.mqttUrl, 'dev-c', secrets['dev-c'], { clean: false })
    await device.subscribeAsync(topics.cmd('dev-c'), { qos: 1 })
    let closes = 0
    device.on('close', () => closes++)
    for (let i = 0; i < 10; i++)
      expect(await connack(hub.mqttUrl, { clientId: 'dev-c', username: 'feed-consumer', password: viewer.token })).toBe(
        2,
      )
    const hubId = (await import('../../hub/dist/broker/identity.js')).hubClientId(hubSecret)
    expect(await connack(hub.mqttUrl, { clientId: hubId, username: 'feed-consumer', password: viewer.token })).toBe(2)
    await new Promise((r) => setTimeout(r, 300))
    expect(closes).toBe(0)
    expect(device.connected).toBe(true)

    // A command queued while the device is away is still the device's when it comes back.
    await device.endAsync()
    const hubClient = await connectDevice(hub.mqttUrl, 'queue-writer', hubSecret, { username: '$hub' })
    await hubClient.publishAsync(topics.cmd('dev-c'), '{"queued":true}', { qos: 1 })
    await hubClient.endAsync()
    expect(
      await connack(hub.mqttUrl, {
        clientId: 'dev-c',
        username: 'feed-consumer',
        password: viewer.token,
        clean: false,
      }),
    ).toBe(2)
    const back = mqtt.connect(hub.mqttUrl, {
      clientId: 'dev-c',
      username: 'dev-c',
      password: secrets['dev-c'],
      clean: false,
      reconnectPeriod: 0,
    })
    const cmd = await new Promise<string>((resolve) => back.on('message', (_t, p) => resolve(p.toString())))
    expect(cmd).toBe('{"queued":true}')
    await back.endAsync()
    // The token's own ids work.
    expect(
      await connack(hub.mqttUrl, {
        clientId: `$feed-${viewer.id}-trainer`,
        username: 'feed-consumer',
        password: viewer.token,
      }),
    ).toBe(0)
  })

  it('a device publishing 20,000 events in 5 s is held to its quota; delays counted; an event says why [EF-1.7.5]', async () => {
    const db = new Database(join(tmp, 'hub', 'hub.db'), { readonly: true })
    const count = (kind: string) =>
      (db.prepare("SELECT count(*) AS n FROM events WHERE device_id = 'dev-a' AND kind = ?").get(kind) as { n: number })
        .n
    try {
      const dev = await connectDevice(hub.mqttUrl, 'dev-a', secrets['dev-a'])
      // 20,000 events over 5 s: 200 every 50 ms, as fast as a device's link and mqtt.js allow.
      const t0 = Date.now()
      for (let i = 0; i < 20_000; i++) {
        const ev = { v: 1, deviceId: 'dev-a', ts: t0 + i, kind: 'received', cmdId: `f${i}` }
        dev.publish(topics.events('dev-a'), JSON.stringify(ev), { qos: 1 })
        if (i % 200 === 199) await new Promise((r) => setTimeout(r, Math.max(0, t0 + (i / 20_000) * 5000 - Date.now())))
      }
      await new Promise((r) => setTimeout(r, Math.max(0, t0 + 5000 - Date.now())))
      const seconds = (Date.now() - t0) / 1000
      const stored = count('received')
      dev.end(true)
      // Default quota: 1000 at once, then 200/s (plus scheduling slack).
      expect(stored).toBeLessThanOrEqual(1000 + 200 * seconds + 100)
      expect(stored).toBeGreaterThan(500) // held to the rate, not cut off
      expect(await metric(hub.httpUrl, /edgefleet_broker_throttled_total (\d+)/)).toBeGreaterThan(0)
      // One event in the device's log says why, not one per delayed message.
      const why = db.prepare("SELECT code FROM events WHERE device_id = 'dev-a' AND kind = 'rejected'").all()
      expect(why).toEqual([{ code: 'EF_ERR_BROKER_QUOTA_EXCEEDED' }])
      console.log(`event flood: ${stored} of 20,000 events stored in ${seconds.toFixed(1)} s`)
    } finally {
      db.close()
    }
  })
})
