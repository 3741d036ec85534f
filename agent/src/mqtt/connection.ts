// The agent's MQTT connection: persistent session (commands queue while the
// device is away), retained state with a last will [EF-2.1], reconnects with
// exponential back-off and full jitter so a fleet does not stampede the broker.
import mqtt, { type MqttClient } from 'mqtt'
import {
  PROTOCOL_VERSION,
  isUntrustedPeerError,
  parseBrokerUrls,
  parseTopic,
  stateCodec,
  topics,
  type DeviceState,
} from '@edgefleet/shared'
import type { Logger } from 'pino'

export interface ConnectionOptions {
  /** Broker URL, or a comma-separated list of a cluster's nodes: each reconnect tries the next [EF-4.12]. */
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
    const opts = this.o
    const will: DeviceState = { v: PROTOCOL_VERSION, deviceId: opts.deviceId, online: false, ts: Date.now() }
    const { url, servers } = parseBrokerUrls(opts.url)
    const client = mqtt.connect(url, {
      ...(servers ? { servers } : {}),
      clientId: opts.deviceId,
      username: opts.deviceId,
      password: opts.secret,
      clean: false,
      keepalive: 30,
      reconnectPeriod: 0, // our own back-off below
      connectTimeout: 10_000,
      will: { topic: topics.state(opts.deviceId), payload: stateCodec.encode(will), qos: 1, retain: true },
      ...opts.tls,
    })
    this.client = client
    client.on('connect', (ack) => {
      this.attempt = 0
      opts.log.info({ sessionPresent: ack.sessionPresent }, 'connected to hub broker')
      if (!ack.sessionPresent) client.subscribe([topics.cmd(opts.deviceId), topics.repairs(opts.deviceId)], { qos: 1 })
      opts.onConnect()
    })
    client.on('message', (topic, payload) => {
      if (topic === topics.cmd(opts.deviceId)) return opts.onCmd(payload)
      const t = parseTopic(topic)
      if (t?.kind === 'chunk') opts.onChunk(t.digest, t.index, payload, true)
      else if (t?.kind === 'repair' && t.deviceId === opts.deviceId) opts.onChunk(t.digest, t.index, payload, false)
    })
    client.on('error', (err) => {
      if (isUntrustedPeerError(err))
        // Not the hub this device was given (or a wrong --ca): nothing is sent to it [EF-10.4].
        return opts.log.error(
          { code: 'EF_ERR_TLS_UNTRUSTED_PEER', url: opts.url, err: err.message },
          "the hub's certificate does not chain to the configured CA (--ca); not connecting",
        )
      opts.log.warn({ err: err.message, code: (err as { code?: unknown }).code }, 'mqtt error')
    })
    client.on('close', () => this.scheduleReconnect())
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
    const client = this.client
    if (!client) return
    if (client.connected) {
      // A clean shutdown says so: publish offline ourselves, the will only fires on a lost connection.
      await client
        .publishAsync(
          topics.state(this.o.deviceId),
          stateCodec.encode({ v: PROTOCOL_VERSION, deviceId: this.o.deviceId, online: false, ts: Date.now() }),
          { qos: 1, retain: true },
        )
        .catch(() => undefined)
    }
    await client.endAsync(true).catch(() => undefined)
  }
}
