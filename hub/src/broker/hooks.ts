// aedes' authenticate and authorize hooks for the embedded broker: who may
// connect under which client id [EF-1.3.1, EF-1.3.4], the ACL [EF-1.3.2], the
// retained-message policy [EF-1.7.4] and per-device quotas [EF-1.7.5].
import type { Socket } from 'node:net'
import type { AedesOptions, AuthenticateError, Client, PublishPacket } from 'aedes'
import { digestsEqual, isValidId, parseTopic, sha256Hex } from '@edgefleet/shared'
import type { Logger } from 'pino'
import { HUB_USERNAME } from '../keys.js'
import { devicemayPublish, deviceMaySubscribe } from './acl.js'
import { feedClientIdAllowed, isHubClientId } from './identity.js'
import { certIdentity } from './cert-auth.js'
import type { ConnectionLimits } from './limits.js'
import { delayed, type DeviceQuotas } from './quota.js'

/** MQTT user name of live feed consumers; their password is an API token [EF-9.7]. */
export const FEED_USERNAME = 'feed-consumer'

/** What the hooks know about an authenticated client, kept on the aedes client. */
interface Tagged {
  efDevice?: string
  efFeed?: boolean
}

export interface HookOptions {
  hubSecret: string
  secretHashOf: (deviceId: string) => string | undefined
  /** The id of a valid API token, for feed consumers [EF-9.7]; without it nobody may read the feed. */
  feedTokenId?: (token: string) => string | undefined
  ingest?: (topic: string, payload: Buffer, done: (err?: Error) => void) => void
  log: Logger
  limits: ConnectionLimits
  quotas: DeviceQuotas
  /** A device went over its quota (called at most once a minute per device) [EF-1.7.5]. */
  onQuota?: (deviceId: string, code: string, message: string) => void
}

type Hooks = Pick<AedesOptions, 'authenticate' | 'authorizePublish' | 'authorizeSubscribe'>
type AuthorizePublish = NonNullable<Hooks['authorizePublish']>

/** CONNACK return codes (MQTT 3.1.1 3.2.2.3): identifier rejected, bad user name or password, not authorised. */
type RefusalCode = 2 | 4 | 5

function authError(message: string, returnCode: RefusalCode): AuthenticateError {
  // aedes types returnCode as a const enum that its JavaScript does not export, so no member can be
  // named here (a per-file transpiler such as vitest's would import it and get undefined).
  // eslint-disable-next-line @typescript-eslint/no-unsafe-enum-assignment -- 2, 4 and 5 are that enum's values
  return Object.assign(new Error(message), { returnCode })
}

/** `ef/v1/feed/+` or `ef/v1/feed/{model}` [EF-9.7]. */
function feedConsumerMaySubscribe(filter: string): boolean {
  const p = filter.split('/')
  return p.length === 4 && p[0] === 'ef' && p[1] === 'v1' && p[2] === 'feed' && (p[3] === '+' || isValidId(p[3]))
}

/** Topics whose messages are batched by ingest, their PUBACK held until the commit [EF-9.1.1]. */
export function isIngestTopic(topic: string): boolean {
  const t = parseTopic(topic)
  return t !== null && (t.kind === 'telemetry' || t.kind === 'samples')
}

/**
 * Topics the hub reads in the publish hook (through `ingest`, and only there): the ingest topics
 * and a device's state. The state goes the same way as the telemetry after it, so the hub knows
 * the versions a device just reported loaded before it judges that device's first batch
 * [EF-2.6.8]; through a subscription the state arrived after aedes' delivery pipeline, behind
 * telemetry already taken here, which was then refused as a version never sent.
 */
export function isHookTopic(topic: string): boolean {
  const t = parseTopic(topic)
  return t !== null && (t.kind === 'telemetry' || t.kind === 'samples' || t.kind === 'state')
}

function refuse(opts: HookOptions, client: Client, code: string, returnCode: RefusalCode, username?: string) {
  opts.log.warn({ code, clientId: client.id, username }, 'broker refused a connection')
  return authError(code, returnCode)
}

/** The error to answer, or the packet limit of the identity [EF-1.3.1, EF-1.3.4]. */
function identify(
  opts: HookOptions,
  hubHash: string,
  client: Client,
  username: string | undefined,
  secret: string,
): AuthenticateError | number {
  // A client certificate, when presented, is the device's identity [EF-10.3].
  const byCert = certIdentity(client, username, (id) => opts.secretHashOf(id) !== undefined)
  if (byCert.kind === 'refused') {
    opts.log.warn(
      { code: 'EF_ERR_AUTH_CERT_INVALID', clientId: client.id, cn: byCert.cn, reason: byCert.reason },
      'broker refused a certificate',
    )
    return authError('EF_ERR_AUTH_CERT_INVALID', 5)
  }
  if (byCert.kind === 'device') {
    ;(client as Client & Tagged).efDevice = byCert.deviceId
    return opts.limits.opts.maxPacketBytes
  }
  if (username === HUB_USERNAME) {
    return digestsEqual(sha256Hex(secret), hubHash)
      ? opts.limits.opts.maxHubPacketBytes
      : refuse(opts, client, 'EF_ERR_AUTH_BAD_CREDENTIALS', 4, username)
  }
  // `$hub-…` ids belong to the hub secret alone, whatever else is presented.
  if (isHubClientId(client.id)) return refuse(opts, client, 'EF_ERR_AUTH_CLIENT_ID_FORBIDDEN', 2, username)
  if (username === FEED_USERNAME) {
    const tokenId = opts.feedTokenId?.(secret)
    if (tokenId === undefined) return refuse(opts, client, 'EF_ERR_AUTH_TOKEN_INVALID', 4, username)
    // A token reads the feed under its own ids only: never a device's, the hub's or another token's [EF-1.3.4].
    if (!feedClientIdAllowed(client.id, tokenId))
      return refuse(opts, client, 'EF_ERR_AUTH_CLIENT_ID_FORBIDDEN', 2, username)
    ;(client as Client & Tagged).efFeed = true
    return opts.limits.opts.maxConnectBytes // it sends subscriptions and pings only
  }
  // A device authenticates as itself: username = client id = device id.
  const expected = username && isValidId(username) && client.id === username ? opts.secretHashOf(username) : undefined
  if (!expected || !digestsEqual(sha256Hex(secret), expected))
    return refuse(opts, client, 'EF_ERR_AUTH_BAD_CREDENTIALS', 4, username)
  ;(client as Client & Tagged).efDevice = username
  return opts.limits.opts.maxPacketBytes
}

/** aedes' hooks: who may connect, publish and subscribe [EF-1.3]. */
export function brokerHooks(opts: HookOptions): Hooks {
  const hubHash = sha256Hex(opts.hubSecret)
  return {
    authenticate(client, username, password, done) {
      const verdict = identify(opts, hubHash, client, username, password ? password.toString('utf8') : '')
      if (typeof verdict !== 'number') {
        done(verdict, false)
        return
      }
      opts.limits.authenticated(client.conn as Socket, verdict)
      done(null, true)
    },
    authorizePublish: (client, packet, done) => authorizePublish(opts, client, packet, done),
    authorizeSubscribe(client, sub, done) {
      const tagged = client as (Client & Tagged) | null
      if (tagged?.efFeed) {
        done(null, feedConsumerMaySubscribe(sub.topic) ? sub : null)
        return
      }
      const device = tagged?.efDevice
      if (device === undefined || deviceMaySubscribe(device, sub.topic)) {
        done(null, sub)
        return
      }
      opts.log.warn({ code: 'EF_ERR_AUTH_FORBIDDEN_SUBSCRIBE', device, topic: sub.topic }, 'subscription refused')
      done(null, null) // negative SUBACK (0x80), connection stays up
    },
  }
}

function deliver(o: HookOptions, packet: PublishPacket, done: (err: Error | null) => void): void {
  if (o.ingest && isHookTopic(packet.topic))
    return o.ingest(packet.topic, packet.payload as Buffer, (err) => done(err ?? null))
  done(null)
}

/**
 * Only a device's state topic is retained, up to maxRetainedBytes [EF-1.7.4];
 * any other retained publish is delivered without its retain flag, so the
 * broker keeps nothing of it.
 */
function policeRetain(o: HookOptions, device: string, packet: PublishPacket): void {
  if (!packet.retain) return
  const bytes = (packet.payload as Buffer).length
  if (parseTopic(packet.topic)?.kind === 'state' && bytes <= o.limits.opts.maxRetainedBytes) return
  packet.retain = false
  o.limits.count('EF_ERR_BROKER_RETAIN_REFUSED')
  o.log.warn(
    { code: 'EF_ERR_BROKER_RETAIN_REFUSED', device, topic: packet.topic, bytes },
    'retained publish kept no copy: only a device state up to the retained size limit is retained',
  )
}

const lastReport = new WeakMap<HookOptions, Map<string, number>>()

/** Tells the hub about a device over quota, at most once a minute per device. */
function report(o: HookOptions, device: string, code: string, message: string): void {
  let seen = lastReport.get(o)
  if (!seen) lastReport.set(o, (seen = new Map<string, number>()))
  const now = Date.now()
  if (now - (seen.get(device) ?? -Infinity) < 60_000) return
  seen.set(device, now)
  o.log.warn({ code, device }, message)
  o.onQuota?.(device, code, message)
}

function chargeQuota(
  opts: HookOptions,
  client: Client,
  device: string,
  packet: PublishPacket,
  done: (err: Error | null) => void,
): void {
  const bytes = (packet.payload as Buffer).length + packet.topic.length
  const verdict = opts.quotas.charge(device, bytes)
  if ('refused' in verdict) {
    opts.limits.count('EF_ERR_BROKER_QUOTA_EXCEEDED')
    report(
      opts,
      device,
      'EF_ERR_BROKER_QUOTA_EXCEEDED',
      'device far over its publish quota: publish refused, disconnected',
    )
    return done(new Error('EF_ERR_BROKER_QUOTA_EXCEEDED'))
  }
  if (verdict.delayMs === 0) return deliver(opts, packet, done)
  opts.limits.throttled++
  report(opts, device, 'EF_ERR_BROKER_QUOTA_EXCEEDED', 'device over its publish quota: its publishes are being delayed')
  delayed(opts.limits.reading(client.conn as Socket), verdict.delayMs, () => deliver(opts, packet, done))
}

/**
 * A device publishes only its own kinds; a feed consumer publishes nothing;
 * the hub anything. A retained message is policed, and the rest is charged to the quota.
 */
function authorizePublish(opts: HookOptions, ...[client, packet, done]: Parameters<AuthorizePublish>): void {
  if (!client) {
    done(null) // broker-internal (e.g. an obsolete will)
    return
  }
  const tagged = client as Client & Tagged
  if (tagged.efFeed) {
    opts.log.warn(
      { code: 'EF_ERR_AUTH_FORBIDDEN_PUBLISH', client: client.id, topic: packet.topic },
      'feed consumers publish nothing; client disconnected',
    )
    done(new Error('EF_ERR_AUTH_FORBIDDEN_PUBLISH'))
    return
  }
  const device = tagged.efDevice
  if (device === undefined) {
    done(null) // the hub
    return
  }
  if (!devicemayPublish(device, packet.topic)) {
    opts.log.warn(
      { code: 'EF_ERR_AUTH_FORBIDDEN_PUBLISH', device, topic: packet.topic },
      'publish refused; client disconnected',
    )
    done(new Error('EF_ERR_AUTH_FORBIDDEN_PUBLISH'))
    return
  }
  policeRetain(opts, device, packet)
  // A will is published after the connection closed: nothing to hold back, and it must not be lost.
  if (client.closed) {
    deliver(opts, packet, done)
    return
  }
  chargeQuota(opts, client, device, packet, done)
}
