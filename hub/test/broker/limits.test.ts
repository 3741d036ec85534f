// Bounded resources at the embedded broker [EF-1.7]: packet size (before and
// after authentication), the CONNECT deadline, connections per address and
// unauthenticated at once, with raw TCP sockets and real mqtt.js clients
// against a real in-process hub.
import { connect as tcpConnect, type Socket } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { topics } from '@edgefleet/shared'
import type { Hub } from '../../src/hub.js'
import { PacketGuard } from '../../src/broker/limits.js'
import type { BrokerConfig } from '../../src/broker/config.js'
import { connectDevice, provision, waitFor, startTestHub, type TestHub } from '../fixtures/hub.js'

type Started = Hub
let running: TestHub | undefined

/** A real in-process hub with these broker settings, closed after the test. */
async function hubWith(broker: BrokerConfig): Promise<Started> {
  running = await startTestHub({ broker })
  return running.hub
}

afterEach(async () => {
  await running?.close()
  running = undefined
})

/** A raw TCP connection to the hub's broker, resolved once connected. */
function rawSocket(hub: Started): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = tcpConnect(hub.broker!.port, '127.0.0.1', () => resolve(s))
    s.once('error', reject)
  })
}

const closed = (s: Socket) =>
  new Promise<void>((resolve) => (s.destroyed ? resolve() : s.once('close', () => resolve())))

/** MQTT fixed header of a packet type with a remaining length (varint). */
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

/** Writes garbage after a header until the peer closes; resolves with the bytes written. */
async function streamUntilClosed(socket: Socket, header: Buffer, maxBytes: number): Promise<number> {
  let sent = 0
  const done = closed(socket)
  let open = true
  void done.then(() => (open = false))
  socket.on('error', () => undefined)
  socket.write(header)
  const block = Buffer.alloc(64 * 1024, 0x61)
  while (open && sent < maxBytes) {
    if (!socket.write(block)) await Promise.race([new Promise((r) => socket.once('drain', r)), done])
    sent += block.length
  }
  await done
  return sent
}

describe('packet guard [EF-1.7.1]', () => {
  it('follows packet boundaries across buffers and refuses the first packet over the limit', () => {
    const guard = new PacketGuard(1000)
    guard.authenticated(1000)
    const ok = Buffer.concat([fixedHeader(0x30, 999), Buffer.alloc(999), fixedHeader(0xc0, 0)])
    // Split at every awkward place: inside the length, inside the body.
    expect(guard.inspect(ok.subarray(0, 2))).toBeUndefined()
    expect(guard.inspect(ok.subarray(2, 500))).toBeUndefined()
    expect(guard.inspect(ok.subarray(500))).toBeUndefined()
    const big = fixedHeader(0x30, 1001)
    expect(guard.inspect(big.subarray(0, 2))).toBeUndefined()
    expect(guard.inspect(big.subarray(2))).toBe('EF_ERR_BROKER_PACKET_TOO_LARGE')
  })

  it('refuses a fifth remaining-length byte and more than the limit in total before authentication', () => {
    expect(new PacketGuard(1e9).inspect(Buffer.from([0x10, 0xff, 0xff, 0xff, 0xff, 0x01]))).toBe(
      'EF_ERR_BROKER_PACKET_TOO_LARGE',
    )
    const g = new PacketGuard(100)
    // Many small packets, each under the limit, but more bytes than a CONNECT may have.
    for (let i = 0; i < 5; i++)
      expect(g.inspect(Buffer.concat([fixedHeader(0xc0, 0), fixedHeader(0x30, 10), Buffer.alloc(10)]))).toBeUndefined()
    expect(g.inspect(Buffer.concat([fixedHeader(0x30, 50), Buffer.alloc(50)]))).toBe('EF_ERR_BROKER_PACKET_TOO_LARGE')
  })
})

describe('embedded broker limits [EF-1.7]', () => {
  it('closes a pre-auth CONNECT declaring 250 MB after at most the CONNECT limit; devices still connect', async () => {
    const hub = await hubWith({})
    const secret = await provision(hub, 'dev-1')
    const s = await rawSocket(hub)
    const sent = await streamUntilClosed(s, fixedHeader(0x10, 250 * 1024 * 1024), 250 * 1024 * 1024)
    // The socket buffers on both sides hold a few MiB at most; without the guard all 250 MB would go in.
    expect(sent).toBeLessThan(16 * 1024 * 1024)
    expect(hub.broker!.limits.refusals.EF_ERR_BROKER_PACKET_TOO_LARGE).toBe(1)
    const c = await connectDevice(hub.mqttUrl, 'dev-1', secret)
    expect(c.connected).toBe(true)
    await c.endAsync()
  })

  it("closes a device's connection on a packet over maxPacketBytes; one under it goes through", async () => {
    const hub = await hubWith({ limits: { maxPacketBytes: 64 * 1024 } })
    const secret = await provision(hub, 'dev-1')
    const c = await connectDevice(hub.mqttUrl, 'dev-1', secret)
    const ev = (pad: number) =>
      JSON.stringify({ v: 1, deviceId: 'dev-1', ts: 1, kind: 'received', message: 'x'.repeat(pad) })
    await c.publishAsync(topics.events('dev-1'), ev(1000), { qos: 1 })
    const gone = new Promise<void>((resolve) => c.once('close', () => resolve()))
    c.publish(topics.events('dev-1'), ev(70 * 1024), { qos: 1 })
    await gone
    expect(hub.broker!.limits.refusals.EF_ERR_BROKER_PACKET_TOO_LARGE).toBe(1)
    c.end(true)
  })

  it('closes a connection that sends no complete CONNECT within connectTimeoutMs', async () => {
    const hub = await hubWith({ limits: { connectTimeoutMs: 300 } })
    const silent = await rawSocket(hub)
    const slow = await rawSocket(hub)
    slow.write(Buffer.concat([fixedHeader(0x10, 40), Buffer.from([0, 4])])) // a CONNECT that never completes
    const t0 = Date.now()
    await Promise.all([closed(silent), closed(slow)])
    expect(Date.now() - t0).toBeLessThan(3000)
    await waitFor(() => hub.broker!.limits.refusals.EF_ERR_BROKER_CONNECT_TIMEOUT === 2, 2000, 'timeouts counted')
  })

  it('limits connections per source address when loopback is not exempt', async () => {
    // Four from 127.0.0.1: the hub's own client holds one of them.
    const hub = await hubWith({ limits: { maxConnectionsPerAddress: 4, loopbackExempt: false } })
    const held = await Promise.all([rawSocket(hub), rawSocket(hub), rawSocket(hub)])
    const fourth = await rawSocket(hub)
    await closed(fourth)
    expect(hub.broker!.limits.refusals.EF_ERR_BROKER_TOO_MANY_CONNECTIONS).toBe(1)
    expect(held.every((s) => !s.destroyed)).toBe(true)
    // A closed connection frees its place.
    held[0].destroy()
    await new Promise((r) => setTimeout(r, 100))
    const again = await rawSocket(hub)
    await new Promise((r) => setTimeout(r, 100))
    expect(again.destroyed).toBe(false)
    for (const s of [...held, again]) s.destroy()
  })

  it('exempts loopback by default: 100 connections from 127.0.0.1 are all accepted', async () => {
    const hub = await hubWith({ limits: { maxConnectionsPerAddress: 3 } })
    const socks = await Promise.all(Array.from({ length: 100 }, () => rawSocket(hub)))
    await new Promise((r) => setTimeout(r, 200))
    expect(socks.filter((s) => s.destroyed)).toHaveLength(0)
    expect(hub.broker!.limits.refusals.EF_ERR_BROKER_TOO_MANY_CONNECTIONS).toBeUndefined()
    for (const s of socks) s.destroy()
  })

  it('limits unauthenticated connections at once; an authenticated device no longer counts', async () => {
    const hub = await hubWith({ limits: { maxUnauthenticated: 2 } })
    const secret = await provision(hub, 'dev-1')
    const device = await connectDevice(hub.mqttUrl, 'dev-1', secret) // counted until it authenticated
    const idle = await Promise.all([rawSocket(hub), rawSocket(hub)])
    const third = await rawSocket(hub)
    await closed(third)
    expect(hub.broker!.limits.refusals.EF_ERR_BROKER_TOO_MANY_CONNECTIONS).toBe(1)
    expect(hub.broker!.limits.pending).toBe(2)
    expect(device.connected).toBe(true)
    idle[0].destroy()
    await waitFor(() => hub.broker!.limits.pending === 1, 2000, 'slot freed')
    const again = await connectDevice(hub.mqttUrl, 'dev-1', secret)
    expect(again.connected).toBe(true)
    await again.endAsync()
    device.end(true)
    idle[1].destroy()
  })
})
