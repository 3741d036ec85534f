// A simulator worker process: runs its slice of devices (SimDevice) and
// reports counters to the parent every second over IPC. Messages from the
// parent: {type: 'start', devices, url, rate, rampPerSec}, {type: 'rawSubscribe', filter}
// (every connected device subscribes to a raw fan-out filter, QoS 0), {type: 'drop'}
// (every connection closed as by a network failure; devices reconnect with
// back-off), {type: 'stop'}.
import { SimDevice } from './device.mjs'

const stats = {
  connected: 0,
  connecting: 0,
  connects: 0,
  disconnects: 0,
  closedBeforeConnack: 0,
  telemetrySent: 0,
  telemetryAcked: 0,
  eventsSent: 0,
  stateSent: 0,
  stateAcked: 0,
  eventSent: 0,
  eventAcked: 0,
  fetchSent: 0,
  fetchAcked: 0,
  commands: 0,
  deploys: 0,
  deploysDone: 0,
  deploysFailed: 0,
  chunkBytes: 0,
  duplicateChunks: 0,
  badChunks: 0,
  repairsAsked: 0,
  /** Raw fan-out messages and payload bytes received (rawSubscribe). */
  rawMessages: 0,
  rawBytes: 0,
  /** Sum and max of CONNECT → CONNACK times, ms. */
  connackMsSum: 0,
  connackMsMax: 0,
}
let devices = []

const report = () => process.send?.({ type: 'stats', stats, cpu: process.cpuUsage(), rss: process.memoryUsage().rss })
setInterval(report, 1000).unref()

process.on('message', (message) => {
  if (message.type === 'start') {
    const ctx = {
      url: new URL(message.url),
      rate: message.rate,
      stats,
      onConnected: (_d, ms) => {
        stats.connackMsSum += ms
        stats.connackMsMax = Math.max(stats.connackMsMax, ms)
      },
    }
    devices = message.devices.map((spec) => new SimDevice(spec, ctx))
    // Connects spread over the ramp, as devices powering up would be.
    devices.forEach((d, i) => d.start((i / message.rampPerSec) * 1000))
  } else if (message.type === 'rawSubscribe') {
    for (const d of devices) d.rawSubscribe(message.filter)
  } else if (message.type === 'drop') {
    for (const d of devices) d.drop()
  } else if (message.type === 'stop') {
    for (const d of devices) d.stop()
    report()
    setTimeout(() => process.exit(0), 100)
  }
})
process.on('disconnect', () => process.exit(0))
