// The broker limits Mosquitto 2 enforces from the config the hub writes
// (conf.d/edgefleet-limits.conf) [EF-1.7.1, EF-4.11]: a real Mosquitto, a raw
// pre-auth CONNECT announcing 250 MB and a real mqtt.js device sending a packet
// over max_packet_size are both disconnected.
import { connect as tcpConnect } from 'node:net'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { topics } from '@edgefleet/shared'
import { mosquittoHash, mosquittoLimitsConf, syncMosquittoFiles } from '../../src/broker/mosquitto.js'
import { defaultBrokerLimits } from '../../src/broker/limits.js'
import { connectDevice, tempDir } from '../fixtures/hub.js'
import { startMosquitto, type Mosquitto } from '../../../test/support/mosquitto.mjs'

const MiB = 1024 * 1024

describe('limits behind an external Mosquitto [EF-1.7.1]', () => {
  const { dir, cleanup } = tempDir('ef-mosq-limits-')
  let mosq: Mosquitto
  const secret = 'dev-1-secret'
  beforeAll(async () => {
    const mdir = join(dir, 'mosquitto')
    syncMosquittoFiles({ dir: mdir, hubSecret: 'hub', devices: () => [{ id: 'dev-1', hash: mosquittoHash(secret) }] })
    mosq = await startMosquitto(mdir)
  })
  afterAll(async () => {
    await mosq?.stop()
    cleanup()
  })

  it('writes max_packet_size (the hub’s largest packet) into conf.d', () => {
    const conf = readFileSync(join(mosq.dir, 'conf.d', 'edgefleet-limits.conf'), 'utf8')
    expect(conf).toBe(mosquittoLimitsConf())
    expect(conf).toContain(`max_packet_size ${defaultBrokerLimits.maxHubPacketBytes}`)
    expect(mosquittoLimitsConf({ maxHubPacketBytes: 1000, maxPacketBytes: 500 })).toContain('max_packet_size 1000')
  })

  it('closes a pre-auth CONNECT announcing 250 MB after a few MiB at most', async () => {
    const sent = await new Promise<number>((resolve) => {
      const socket = tcpConnect(mosq.port, '127.0.0.1')
      let received = 0
      const block = Buffer.alloc(256 * 1024, 0x61)
      const pump = () => {
        while (!socket.destroyed && received < 250 * MiB) {
          received += block.length
          if (!socket.write(block)) return void socket.once('drain', pump)
        }
      }
      socket.once('connect', () => {
        socket.write(Buffer.from([0x10, 0x80, 0x80, 0x80, 0x77])) // remaining length 238 MiB
        pump()
      })
      socket.on('error', () => undefined)
      socket.once('close', () => resolve(received))
    })
    expect(sent).toBeLessThan(32 * MiB)
  })

  it('disconnects a device whose packet exceeds max_packet_size; one under it is accepted', async () => {
    const c = await connectDevice(mosq.url, 'dev-1', secret)
    await c.publishAsync(topics.events('dev-1'), Buffer.alloc(1 * MiB), { qos: 1 })
    const gone = new Promise<void>((resolve) => c.once('close', () => resolve()))
    c.publish(topics.events('dev-1'), Buffer.alloc(defaultBrokerLimits.maxHubPacketBytes + 1), { qos: 1 })
    await gone
    c.end(true)
  })
})
