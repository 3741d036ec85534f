// A lean MQTT 3.1.1 load generator for ingest benchmarks: one TCP connection
// per simulated device, packets encoded by mqtt-packet (the encoder mqtt.js
// itself uses) once, then copied and patched per message (packet id and a few
// fixed-width ASCII fields of the payload), QoS 1 with a window of unacknowledged
// PUBLISHes per connection, PUBACKs parsed by mqtt-packet. It costs a small
// fraction of what mqtt.js's publish path costs per message, so on a 2-core
// machine the generator leaves the cores to the hub it measures.
import { connect } from 'node:net'
import { createRequire } from 'node:module'

const require = createRequire(createRequire(import.meta.url).resolve('mqtt'))
const mqttPacket = require('mqtt-packet')

/**
 * Opens an authenticated connection. `template(seq)` must return payloads of
 * one fixed length; `patch(buf, seq)` rewrites a payload in place (offsets
 * relative to the payload).
 */
export async function rawPublisher({ url, clientId, username, password, topic, payload, patch, window }) {
  const { hostname, port } = new URL(url)
  const socket = connect({ host: hostname, port: Number(port), noDelay: true })
  await new Promise((res, rej) => socket.once('connect', res).once('error', rej))
  const parser = mqttPacket.parser({ protocolVersion: 4 })
  const conn = mqttPacket.generate({
    cmd: 'connect',
    protocolId: 'MQTT',
    protocolVersion: 4,
    clean: true,
    clientId,
    keepalive: 0,
    username,
    password: Buffer.from(password),
  })
  const connack = new Promise((res, rej) => {
    parser.once('packet', (p) =>
      p.cmd === 'connack' && p.returnCode === 0 ? res() : rej(new Error(`connack ${p.returnCode}`)),
    )
    socket.once('error', rej)
  })
  socket.on('data', (d) => parser.parse(d))
  socket.write(conn)
  await connack
  // PUBLISH template: fixed header, topic, packet id, payload.
  const tpl = mqttPacket.generate({ cmd: 'publish', topic, payload, qos: 1, messageId: 1, retain: false, dup: false })
  const idAt = tpl.length - payload.length - 2
  const payloadAt = tpl.length - payload.length
  let seq = 0
  let nextId = 1
  let stopped = false
  let inflight = 0
  // PUBLISH → PUBACK latency per message, ms (the hub acknowledges telemetry once committed).
  const sentAt = new Float64Array(65536)
  const stats = { published: 0, acked: 0, latencies: [] }
  let drained
  const send = (count) => {
    const out = Buffer.allocUnsafe(tpl.length * count)
    for (let k = 0; k < count; k++) {
      const at = k * tpl.length
      tpl.copy(out, at)
      out.writeUInt16BE(nextId, at + idAt)
      sentAt[nextId] = performance.now()
      nextId = nextId === 65535 ? 1 : nextId + 1
      patch(out.subarray(at + payloadAt, at + tpl.length), seq++)
    }
    inflight += count
    stats.published += count
    socket.write(out)
  }
  parser.on('packet', (p) => {
    if (p.cmd !== 'puback') return
    stats.acked++
    if (stats.latencies.length < 1_000_000) stats.latencies.push(performance.now() - sentAt[p.messageId])
    inflight--
    if (!stopped) pending++
    else if (inflight === 0) drained?.()
  })
  // Refill once per socket read, in one write.
  let pending = 0
  socket.on('data', () => {
    if (pending > 0 && !stopped) {
      send(pending)
      pending = 0
    }
  })
  return {
    stats,
    start() {
      send(window)
    },
    /** Stops sending; resolves when every PUBLISH sent is acknowledged. */
    stop() {
      stopped = true
      return inflight === 0 ? Promise.resolve() : new Promise((res) => (drained = res))
    },
    end() {
      socket.end()
    },
  }
}
