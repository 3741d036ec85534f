// The embedded aedes broker: TCP listener with bounded resources at its door
// [EF-1.7], device authentication against the store's secret hashes and the
// ACL in aedes' hooks (hooks.ts) [EF-1.3].
import { Aedes, type Client } from 'aedes'
import type { Logger } from 'pino'
import { brokerHooks } from './hooks.js'
import { ConnectionLimits, defaultBrokerLimits, type BrokerLimitOptions } from './limits.js'
import { DeviceQuotas, defaultDeviceQuota, type DeviceQuotaOptions } from './quota.js'
import { listenMqtt, type BrokerTls, type MqttListener } from './listener.js'

export { FEED_USERNAME, isHookTopic, isIngestTopic } from './hooks.js'

export interface EmbeddedBrokerOptions {
  /** TCP port; 0 picks an ephemeral one. */
  port: number
  host: string
  hubSecret: string
  /** sha256 hex of a device's secret, or undefined for unknown devices. */
  secretHashOf: (deviceId: string) => string | undefined
  /** The id of a valid API token, for live feed consumers (user name FEED_USERNAME) [EF-9.7]; without it nobody may read the feed. */
  feedTokenId?: (token: string) => string | undefined
  log: Logger
  /**
   * Takes devices' telemetry, samples and state (`isHookTopic`) before the broker acknowledges them
   * [EF-9.1.1]: the PUBACK is written when `done` is called (after the commit for telemetry),
   * and an error disconnects the device instead, so it sends them again.
   */
  ingest?: (topic: string, payload: Buffer, done: (err?: Error) => void) => void
  /** Packet, connection and retained limits [EF-1.7]; defaults in defaultBrokerLimits. */
  limits?: Partial<BrokerLimitOptions>
  /** Per-device publish quotas [EF-1.7.5]; defaults in defaultDeviceQuota. */
  quota?: Partial<DeviceQuotaOptions>
  /** A device went over its publish quota (at most once a minute per device). */
  onQuota?: (deviceId: string, code: string, message: string) => void
  /** Serve MQTT over TLS (and accept device client certificates) instead of plain TCP [EF-10]. */
  tls?: BrokerTls
}

export interface EmbeddedBroker {
  readonly aedes: Aedes
  readonly port: number
  readonly url: string
  /** Connection admission, packet guards and refusal counters [EF-1.7]. */
  readonly limits: ConnectionLimits
  /**
   * Closes the connection of the client with this id (a device's client id is
   * its device id), if any: used once its credentials were taken away [EF-1.3.3].
   */
  disconnect(clientId: string): boolean
  close(): Promise<void>
}

export async function startEmbeddedBroker(opts: EmbeddedBrokerOptions): Promise<EmbeddedBroker> {
  const limits = new ConnectionLimits(Object.freeze({ ...defaultBrokerLimits, ...opts.limits }), opts.log)
  const quotas = new DeviceQuotas(Object.freeze({ ...defaultDeviceQuota, ...opts.quota }))
  const aedes = await Aedes.createBroker({
    id: 'edgefleet-hub',
    connectTimeout: limits.opts.connectTimeoutMs, // [EF-1.7.2]
    ...brokerHooks({ ...opts, limits, quotas }),
  })
  aedes.on('connectionError', (_client, err) => {
    if (err.message === 'connect did not arrive in time') limits.count('EF_ERR_BROKER_CONNECT_TIMEOUT')
  })
  let listener: MqttListener
  try {
    listener = await listenMqtt(limits.handler(aedes.handle), opts.host, opts.port, opts.tls)
  } catch (err) {
    await new Promise<void>((resolve) => aedes.close(() => resolve()))
    throw err
  }
  const { server, port } = listener
  return {
    aedes,
    port,
    url: `${listener.scheme}://${opts.host}:${port}`,
    limits,
    disconnect(clientId) {
      // aedes keeps connected clients by id in `clients`; its typings leave the map out.
      const client = (aedes as unknown as { clients: Record<string, Client | undefined> }).clients[clientId]
      if (!client) return false
      opts.log.info({ clientId }, 'broker closed a connection whose credentials were revoked')
      client.close()
      return true
    },
    async close() {
      await new Promise<void>((resolve) => aedes.close(() => resolve()))
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}
