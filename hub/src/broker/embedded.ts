// The embedded aedes broker: TCP listener, device authentication against the
// store's secret hashes, and the ACL in aedes' authorize hooks [EF-1.3].
import { createServer, type Server } from 'node:net'
import { once } from 'node:events'
import { Aedes, type AuthenticateError } from 'aedes'
import { digestsEqual, isValidId, sha256Hex } from '@edgefleet/shared'
import type { Logger } from 'pino'
import { HUB_USERNAME } from '../keys.js'
import { devicemayPublish, deviceMaySubscribe } from './acl.js'

export interface EmbeddedBrokerOptions {
  /** TCP port; 0 picks an ephemeral one. */
  port: number
  host: string
  hubSecret: string
  /** sha256 hex of a device's secret, or undefined for unknown devices. */
  secretHashOf: (deviceId: string) => string | undefined
  log: Logger
}

export interface EmbeddedBroker {
  readonly aedes: Aedes
  readonly port: number
  readonly url: string
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
      const secret = password ? password.toString('utf8') : ''
      if (username === HUB_USERNAME) {
        return digestsEqual(sha256Hex(secret), hubHash) ? done(null, true) : done(authError('EF_ERR_AUTH_BAD_CREDENTIALS', 4), false)
      }
      // A device authenticates as itself: username = client id = device id.
      const expected = username && isValidId(username) && client.id === username ? opts.secretHashOf(username) : undefined
      if (!expected || !digestsEqual(sha256Hex(secret), expected)) {
        opts.log.warn({ code: 'EF_ERR_AUTH_BAD_CREDENTIALS', clientId: client.id, username }, 'broker refused a connection')
        return done(authError('EF_ERR_AUTH_BAD_CREDENTIALS', 4), false)
      }
      ;(client as unknown as { efDevice: string }).efDevice = username as string
      done(null, true)
    },
    authorizePublish(client, packet, done) {
      if (!client) return done(null) // broker-internal (e.g. an obsolete will)
      const device = (client as unknown as { efDevice?: string }).efDevice
      if (device === undefined) return done(null) // the hub
      if (devicemayPublish(device, packet.topic)) return done(null)
      opts.log.warn({ code: 'EF_ERR_AUTH_FORBIDDEN_PUBLISH', device, topic: packet.topic }, 'publish refused; client disconnected')
      done(new Error('EF_ERR_AUTH_FORBIDDEN_PUBLISH'))
    },
    authorizeSubscribe(client, sub, done) {
      const device = (client as unknown as { efDevice?: string }).efDevice
      if (device === undefined || deviceMaySubscribe(device, sub.topic)) return done(null, sub)
      opts.log.warn({ code: 'EF_ERR_AUTH_FORBIDDEN_SUBSCRIBE', device, topic: sub.topic }, 'subscription refused')
      done(null, null) // negative SUBACK (0x80), connection stays up
    },
  })
  const server: Server = createServer(aedes.handle)
  server.listen(opts.port, opts.host)
  await once(server, 'listening')
  const addr = server.address()
  const port = typeof addr === 'object' && addr ? addr.port : opts.port
  return {
    aedes,
    port,
    url: `mqtt://${opts.host}:${port}`,
    async close() {
      await new Promise<void>((resolve) => aedes.close(() => resolve()))
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}
