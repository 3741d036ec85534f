// The agent's MQTT connection: persistent session (commands queue while the
// device is away), retained state with a last will [EF-2.1], reconnects with
// exponential back-off and full jitter so a fleet does not stampede the broker.
import mqtt, { type MqttClient } from 'mqtt'
import {
  PROTOCOL_VERSION,
  isUntrustedPeerError,
  parseTopic,
  stateCodec,
  topics,
  type DeviceState,
} from '@edgefleet/shared'
import type { Logger } from 'pino'

export interface ConnectionOptions {
  url: string
  deviceId: string
  secret: string
  log: Logger
  /** First back-off delay; doubles up to maxBackoffMs. */
  minBackoffMs?: number
  maxBackoffMs?: number
  onCmd: (payload: Buffer) => void
  onChunk: (digest: string, index: number, payload: Buffer, broadcast: boolean) => void
  onConnect: () => void
  /** CA to verify the hub with, and a client certificate (mutual TLS), for mqtts:// [EF-10]. */
  tls?: { ca?: Buffer; cert?: Buffer; key?: Buffer }
}

export class Connection {
  client: MqttClient | undefined
  private attempt = 0
  private timer: NodeJS.Timeout | undefined
  private closing = false

  constructor(private readonly o: ConnectionOptions) {}

  start(): void {
    const o = this.o
    const will: DeviceState = { v: PROTOCOL_VERSION, deviceId: o.deviceId, online: false, ts: Date.now() }
    const c = mqtt.connect(o.url, {
      clientId: o.deviceId,
      username: o.deviceId,
      password: o.secret,
      clean: false,
      keepalive: 30,
      reconnectPeriod: 0, // our own back-off below
      connectTimeout: 10_000,
      will: { topic: topics.state(o.deviceId), payload: stateCodec.encode(will), qos: 1, retain: true },
      ...o.tls,
    })
    this.client = c
    c.on('connect', (ack) => {
      this.attempt = 0
      o.log.info({ sessionPresent: ack.sessionPresent }, 'connected to hub broker')
      if (!ack.sessionPresent) c.subscribe([topics.cmd(o.deviceId), topics.repairs(o.deviceId)], { qos: 1 })
      o.onConnect()
    })
    c.on('message', (topic, payload) => {
      if (topic === topics.cmd(o.deviceId)) return o.onCmd(payload)
      const t = parseTopic(topic)
      if (t?.kind === 'chunk') o.onChunk(t.digest, t.index, payload, true)
      else if (t?.kind === 'repair' && t.deviceId === o.deviceId) o.onChunk(t.digest, t.index, payload, false)
    })
    c.on('error', (err) => {
      if (isUntrustedPeerError(err))
        // Not the hub this device was given (or a wrong --ca): nothing is sent to it [EF-10.4].
        return o.log.error(
          { code: 'EF_ERR_TLS_UNTRUSTED_PEER', url: o.url, err: err.message },
          "the hub's certificate does not chain to the configured CA (--ca); not connecting",
        )
      o.log.warn({ err: err.message, code: (err as { code?: unknown }).code }, 'mqtt error')
    })
    c.on('close', () => this.scheduleReconnect())
  }

  private scheduleReconnect(): void {
    if (this.closing || this.timer) return
    const min = this.o.minBackoffMs ?? 500
    const max = this.o.maxBackoffMs ?? 30_000
    const cap = Math.min(max, min * 2 ** this.attempt++)
    const delay = Math.round(cap / 2 + Math.random() * (cap / 2))
    this.timer = setTimeout(() => {
      this.timer = undefined
      if (!this.closing) this.client?.reconnect()
    }, delay)
  }

  get connected(): boolean {
    return this.client?.connected ?? false
  }

  publishState(state: DeviceState): void {
    this.client?.publish(topics.state(this.o.deviceId), stateCodec.encode(state), { qos: 1, retain: true })
  }

  async close(): Promise<void> {
    this.closing = true
    if (this.timer) clearTimeout(this.timer)
    const c = this.client
    if (!c) return
    if (c.connected) {
      // A clean shutdown says so: publish offline ourselves, the will only fires on a lost connection.
      await c
        .publishAsync(
          topics.state(this.o.deviceId),
          stateCodec.encode({ v: PROTOCOL_VERSION, deviceId: this.o.deviceId, online: false, ts: Date.now() }),
          { qos: 1, retain: true },
        )
        .catch(() => undefined)
    }
    await c.endAsync(true).catch(() => undefined)
  }
}
