// The hub's own MQTT client (mqtt.js), the same against the embedded aedes or
// an external broker. Incoming messages go to the dispatcher.
import mqtt, { type MqttClient } from 'mqtt'
import { parseBrokerUrls, topics } from '@edgefleet/shared'
import type { Logger } from 'pino'
import { HUB_USERNAME } from '../keys.js'
import { hubClientId } from '../broker/identity.js'

export interface HubMqttOptions {
  url: string
  secret: string
  log: Logger
  onMessage: (topic: string, payload: Buffer) => void
  /** Subscribe to what agents publish (default true). */
  subscribe?: boolean
  /**
   * Called after each received message was handed to onMessage; the client
   * acknowledges it and reads the next one only when `next` runs (mqtt.js
   * handles received messages one by one). The ingestor holds it while its
   * queue is full, so the backlog waits in the broker [EF-9.1.2].
   */
  gate?: (next: () => void) => void
  /** CA to verify an mqtts:// broker with (default: the system's) [EF-10.4]. */
  ca?: Buffer
  /** false: verify the chain but not the host name (the embedded broker, reached on loopback). */
  checkServerIdentity?: false
  /**
   * One of several hub replicas on this broker [EF-12.8]: its own client id (a session each, none taking
   * another's over) and shared subscriptions, so each device message reaches one replica.
   */
  replica?: string
}

/** Shared-subscription group of the hub replicas on one broker [EF-12.8]. */
const REPLICA_GROUP = 'edgefleet-hubs'

export class HubMqtt {
  readonly client: MqttClient

  private constructor(client: MqttClient) {
    this.client = client
  }

  static async connect(opts: HubMqttOptions, connectWithinMs = 30_000): Promise<HubMqtt> {
    // A cluster's node list: each reconnect tries the next node [EF-4.12].
    const { url, servers } = parseBrokerUrls(opts.url)
    const client = mqtt.connect(url, {
      ...(servers ? { servers } : {}),
      // Under the `$hub-` prefix only the hub secret may use, derived from that secret [EF-1.3.4].
      clientId: hubClientId(opts.secret, opts.replica),
      username: HUB_USERNAME,
      password: opts.secret,
      // Persistent session: QoS 1 messages from agents queue in the broker while the hub restarts.
      clean: false,
      reconnectPeriod: 1000,
      connectTimeout: 10_000,
      ...(opts.ca ? { ca: opts.ca } : {}),
      ...(opts.checkServerIdentity === false ? { checkServerIdentity: () => undefined } : {}),
    })
    client.on('message', (topic, payload) => opts.onMessage(topic, payload))
    const gate = opts.gate
    if (gate) client.handleMessage = (_packet, callback) => gate(() => callback())
    client.on('error', (err) => opts.log.error({ err: err.message }, 'hub mqtt error'))
    client.on('reconnect', () => opts.log.warn('hub mqtt reconnecting'))
    // An external broker may still be reloading its password file: keep trying for a while.
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        client.end(true)
        reject(new Error(`cannot connect to the broker at ${opts.url} within ${connectWithinMs / 1000} s`))
      }, connectWithinMs)
      client.once('connect', () => {
        clearTimeout(timer)
        resolve()
      })
    })
    // With the embedded broker the hub reads agents' messages inside the broker instead (see hub.ts).
    if (opts.subscribe !== false) {
      const filters = topics.hubSubscriptions()
      await client.subscribeAsync(opts.replica ? filters.map((f) => `$share/${REPLICA_GROUP}/${f}`) : filters, {
        qos: 1,
      })
    }
    return new HubMqtt(client)
  }

  /** Resolves when the broker acknowledged the message (QoS 1 PUBACK). */
  publish(topic: string, payload: Buffer | string, opts: { qos?: 0 | 1; retain?: boolean } = {}): Promise<void> {
    return new Promise((resolve, reject) => {
      this.client.publish(topic, payload, { qos: opts.qos ?? 1, retain: opts.retain ?? false }, (err) =>
        err ? reject(err) : resolve(),
      )
    })
  }

  async close(): Promise<void> {
    await this.client.endAsync()
  }
}
