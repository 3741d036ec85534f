// The embedded aedes broker: TCP listener, device authentication against the
// store's secret hashes, and the ACL in aedes' authorize hooks [EF-1.3].
import { Aedes, type AuthenticateError, type Client } from 'aedes'
import { digestsEqual, isValidId, parseTopic, sha256Hex } from '@edgefleet/shared'
import type { Logger } from 'pino'
import { HUB_USERNAME } from '../keys.js'
import { devicemayPublish, deviceMaySubscribe } from './acl.js'
import { listenMqtt, type BrokerTls, type MqttListener } from './listener.js'
import { certIdentity } from './cert-auth.js'

/** `ef/v1/feed/+` or `ef/v1/feed/{model}` [EF-9.7]. */
function feedConsumerMaySubscribe(filter: string): boolean {
  const p = filter.split('/')
  return p.length === 4 && p[0] === 'ef' && p[1] === 'v1' && p[2] === 'feed' && (p[3] === '+' || isValidId(p[3]))
}

export interface EmbeddedBrokerOptions {
  /** TCP port; 0 picks an ephemeral one. */
  port: number
  host: string
  hubSecret: string
  /** sha256 hex of a device's secret, or undefined for unknown devices. */
  secretHashOf: (deviceId: string) => string | undefined
  /** Whether an API token may read the live feed (user name FEED_USERNAME) [EF-9.7]; without it nobody may. */
  feedTokenValid?: (token: string) => boolean
  log: Logger
  /**
   * Takes devices' telemetry and samples before the broker acknowledges them
   * [EF-9.1.1]: the PUBACK is written when `done` is called (after the commit),
   * and an error disconnects the device instead, so it sends them again.
   */
  ingest?: (topic: string, payload: Buffer, done: (err?: Error) => void) => void
  /** Serve MQTT over TLS (and accept device client certificates) instead of plain TCP [EF-10]. */
  tls?: BrokerTls
}

/** Topics whose messages go through `ingest` (and only there). */
export function isIngestTopic(topic: string): boolean {
  const t = parseTopic(topic)
  return t !== null && (t.kind === 'telemetry' || t.kind === 'samples')
}

/** MQTT user name of live feed consumers; their password is an API token [EF-9.7]. */
export const FEED_USERNAME = 'feed-consumer'

export interface EmbeddedBroker {
  readonly aedes: Aedes
  readonly port: number
  readonly url: string
  /**
   * Closes the connection of the client with this id (a device's client id is
   * its device id), if any: used once its credentials were taken away [EF-1.3.3].
   */
  disconnect(clientId: string): boolean
  close(): Promise<void>
}

function authError(message: string, returnCode: number): AuthenticateError {
  return Object.assign(new Error(message), { returnCode }) as AuthenticateError
}

export async function startEmbeddedBroker(opts: EmbeddedBrokerOptions): Promise<EmbeddedBroker> {
  const hubHash = sha256Hex(opts.hubSecret)
  const aedes = await Aedes.createBroker({
    id: 'edgefleet-hub',
    authenticate(client, username, password, done) {
      // A client certificate, when presented, is the device's identity [EF-10.3].
      const byCert = certIdentity(client, username, (id) => opts.secretHashOf(id) !== undefined)
      if (byCert.kind === 'refused') {
        opts.log.warn(
          { code: 'EF_ERR_AUTH_CERT_INVALID', clientId: client.id, cn: byCert.cn, reason: byCert.reason },
          'broker refused a certificate',
        )
        return done(authError('EF_ERR_AUTH_CERT_INVALID', 5), false)
      }
      if (byCert.kind === 'device') {
        ;(client as unknown as { efDevice: string }).efDevice = byCert.deviceId
        return done(null, true)
      }
      const secret = password ? password.toString('utf8') : ''
      if (username === HUB_USERNAME) {
        return digestsEqual(sha256Hex(secret), hubHash)
          ? done(null, true)
          : done(authError('EF_ERR_AUTH_BAD_CREDENTIALS', 4), false)
      }
      if (username === FEED_USERNAME) {
        // A feed consumer reads ef/v1/feed/… only; it is not a device [EF-9.7].
        if (!opts.feedTokenValid?.(secret)) return done(authError('EF_ERR_AUTH_TOKEN_INVALID', 4), false)
        ;(client as unknown as { efFeed: boolean }).efFeed = true
        return done(null, true)
      }
      // A device authenticates as itself: username = client id = device id.
      const expected =
        username && isValidId(username) && client.id === username ? opts.secretHashOf(username) : undefined
      if (!expected || !digestsEqual(sha256Hex(secret), expected)) {
        opts.log.warn(
          { code: 'EF_ERR_AUTH_BAD_CREDENTIALS', clientId: client.id, username },
          'broker refused a connection',
        )
        return done(authError('EF_ERR_AUTH_BAD_CREDENTIALS', 4), false)
      }
      ;(client as unknown as { efDevice: string }).efDevice = username as string
      done(null, true)
    },
    authorizePublish(client, packet, done) {
      if (!client) return done(null) // broker-internal (e.g. an obsolete will)
      if ((client as unknown as { efFeed?: boolean }).efFeed) {
        opts.log.warn(
          { code: 'EF_ERR_AUTH_FORBIDDEN_PUBLISH', client: client.id, topic: packet.topic },
          'feed consumers publish nothing; client disconnected',
        )
        return done(new Error('EF_ERR_AUTH_FORBIDDEN_PUBLISH'))
      }
      const device = (client as unknown as { efDevice?: string }).efDevice
      if (device === undefined) return done(null) // the hub
      if (devicemayPublish(device, packet.topic)) {
        if (opts.ingest && isIngestTopic(packet.topic))
          return opts.ingest(packet.topic, packet.payload as Buffer, (err) => done(err ?? null))
        return done(null)
      }
      opts.log.warn(
        { code: 'EF_ERR_AUTH_FORBIDDEN_PUBLISH', device, topic: packet.topic },
        'publish refused; client disconnected',
      )
      done(new Error('EF_ERR_AUTH_FORBIDDEN_PUBLISH'))
    },
    authorizeSubscribe(client, sub, done) {
      if ((client as unknown as { efFeed?: boolean } | null)?.efFeed)
        return done(null, feedConsumerMaySubscribe(sub.topic) ? sub : null)
      const device = (client as unknown as { efDevice?: string }).efDevice
      if (device === undefined || deviceMaySubscribe(device, sub.topic)) return done(null, sub)
      opts.log.warn({ code: 'EF_ERR_AUTH_FORBIDDEN_SUBSCRIBE', device, topic: sub.topic }, 'subscription refused')
      done(null, null) // negative SUBACK (0x80), connection stays up
    },
  })
  let listener: MqttListener
  try {
    listener = await listenMqtt(aedes, opts.host, opts.port, opts.tls)
  } catch (err) {
    await new Promise<void>((resolve) => aedes.close(() => resolve()))
    throw err
  }
  const { server, port } = listener
  return {
    aedes,
    port,
    url: `${listener.scheme}://${opts.host}:${port}`,
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
