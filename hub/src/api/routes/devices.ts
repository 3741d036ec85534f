// Provisioning, the device list, and each device's lifecycle [EF-1.3.3]:
// disable/enable, remove, rotate-secret. Every change that takes credentials
// away drops the device's live broker connection at once.
import { randomBytes } from 'node:crypto'
import type { FastifyInstance, FastifyPluginAsync } from 'fastify'
import { Type, type Static } from '@sinclair/typebox'
import { EdgeFleetError, Id, defined, isValidId, sha256Hex } from '@edgefleet/shared'
import type { ApiDeps } from '../server.js'
import { mosquittoHash } from '../../broker/mosquitto.js'
import { natsHash } from '../../broker/nats.js'
import { TAG_KEY, isDuplicateKey, type DeviceRow } from '../../store/index.js'

// additionalProperties: a Record's key pattern alone only selects which values are checked; other keys must fail.
export const Tags = Type.Record(Type.String({ pattern: TAG_KEY.source }), Type.String({ maxLength: 256 }), {
  maxProperties: 32,
  additionalProperties: false,
})

const DeviceBody = Type.Object(
  {
    id: Type.String({ minLength: 1, maxLength: 64 }),
    profile: Type.String({ minLength: 1, maxLength: 64 }),
    tags: Type.Optional(Tags),
    /** Also issue a TLS client certificate from the hub CA (mutual TLS) [EF-10.3]. */
    cert: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
)

/** With TLS [EF-10]: the CA to give the agent (--ca), and the device's certificate and key, returned only here. */
const DeviceTlsOut = Type.Object({
  ca: Type.Optional(Type.String()),
  caFile: Type.Optional(Type.String()),
  cert: Type.Optional(Type.String()),
  key: Type.Optional(Type.String()),
})

const Status = Type.Union([Type.Literal('active'), Type.Literal('disabled'), Type.Literal('removed')])
const DeviceOut = Type.Object({
  id: Type.String(),
  status: Status,
  statusAt: Type.Union([Type.Integer(), Type.Null()]),
  profile: Type.String(),
  tags: Type.Record(Type.String(), Type.String()),
  online: Type.Boolean(),
  lastSeen: Type.Union([Type.Integer(), Type.Null()]),
  createdAt: Type.Integer(),
  models: Type.Array(
    Type.Object({ name: Type.String(), version: Type.String(), precision: Type.String(), slot: Type.String() }),
  ),
  apiPort: Type.Union([Type.Integer(), Type.Null()]),
  /** The hub key the agent last said it trusts (null before it reported one) [EF-3.6]. */
  hubKey: Type.Union([Type.String(), Type.Null()]),
  /** The agent version the device last reported (null before its first state) [EF-2.1]. */
  agentVersion: Type.Union([Type.String(), Type.Null()]),
})

export function deviceOut(device: DeviceRow): Static<typeof DeviceOut> {
  return {
    id: device.id,
    status: device.status,
    statusAt: device.statusAt,
    profile: device.profile,
    tags: device.tags,
    online: device.online,
    lastSeen: device.lastSeen,
    createdAt: device.createdAt,
    models: (device.state?.models ?? []).map((m) => ({
      name: m.name,
      version: m.version,
      precision: m.precision,
      slot: m.slot,
    })),
    apiPort: device.state?.apiPort ?? null,
    hubKey: device.state?.hubKey ?? null,
    agentVersion: device.state?.agentVersion ?? null,
  }
}

export const deviceRoutes: FastifyPluginAsync<ApiDeps> = async (app, deps) => {
  provisionRoute(app, deps)
  readRoutes(app, deps)
  lifecycleRoutes(app, deps)
}

const ProvisionOut = Type.Object({
  id: Id,
  profile: Type.String(),
  tags: Tags,
  secret: Type.String(),
  hubPublicKey: Type.String(),
  mqttUrl: Type.String(),
  tls: Type.Optional(DeviceTlsOut),
})

function provisionRoute(app: FastifyInstance, deps: ApiDeps): void {
  app.post(
    '/api/v1/devices',
    {
      schema: {
        body: DeviceBody,
        response: { 201: ProvisionOut },
      },
    },
    async (req, res) => res.status(201).send(await provision(deps, req.body as Static<typeof DeviceBody>)),
  )
}

/** Checks the request, issues the secret (and certificate), and stores the device [EF-1.3.3]. */
async function provision(deps: ApiDeps, body: Static<typeof DeviceBody>): Promise<Static<typeof ProvisionOut>> {
  if (!isValidId(body.id)) throw new EdgeFleetError('EF_ERR_DEVICE_ID_INVALID', body.id)
  if (deps.brokerAcceptsId?.(body.id) === false)
    throw new EdgeFleetError(
      'EF_ERR_BROKER_ID_UNSUPPORTED',
      `${body.id}: the NATS cluster refuses MQTT topics with '.'`,
    )
  if (!deps.profiles.has(body.profile))
    throw new EdgeFleetError(
      'EF_ERR_PROFILE_UNKNOWN',
      `${body.profile} (known: ${[...deps.profiles.keys()].join(', ')})`,
    )
  const tls = deps.deviceTls
  if (body.cert && !tls) throw new EdgeFleetError('EF_ERR_TLS_DISABLED', 'start the hub with --tls')
  const issued = body.cert && tls ? await tls.issueCert(body.id) : undefined
  // 256-bit random secrets: a plain sha256 is a sound verifier, no slow KDF needed.
  const secret = randomBytes(32).toString('base64url')
  const tags = body.tags ?? {}
  insertDevice(deps, body, tags, secret)
  deps.onDevicesChanged?.()
  return {
    id: body.id,
    profile: body.profile,
    tags,
    secret,
    hubPublicKey: deps.keys.publicKey,
    mqttUrl: deps.mqttUrl,
    ...(tls
      ? { tls: { ca: tls.ca, caFile: tls.caFile, ...(issued ? { cert: issued.cert, key: issued.key } : {}) } }
      : {}),
  }
}

/** Stores a new device with its secret's verifiers; an id already taken (or removed) is refused. */
function insertDevice(
  deps: ApiDeps,
  body: Static<typeof DeviceBody>,
  tags: Record<string, string>,
  secret: string,
): void {
  try {
    deps.store.devices.insert(
      body.id,
      body.profile,
      tags,
      sha256Hex(secret),
      deps.now(),
      mosquittoHash(secret),
      natsHash(secret),
    )
  } catch (err) {
    if (isDuplicateKey(err))
      throw deps.store.devices.get(body.id)?.status === 'removed'
        ? new EdgeFleetError('EF_ERR_DEVICE_REMOVED', `${body.id}: provision the replacement under a new id`)
        : new EdgeFleetError('EF_ERR_DEVICE_EXISTS', body.id)
    throw err
  }
}

/** The device list and one device with its recent deployment events. */
function readRoutes(app: FastifyInstance, deps: ApiDeps): void {
  app.get(
    '/api/v1/devices',
    {
      schema: {
        querystring: Type.Object(
          {
            limit: Type.Integer({ minimum: 1, maximum: 10_000, default: 1000 }),
            offset: Type.Integer({ minimum: 0, default: 0 }),
          },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ items: Type.Array(DeviceOut), total: Type.Integer() }) },
      },
    },
    async (req) => {
      const q = req.query as { limit: number; offset: number }
      return { items: deps.store.devices.list(q.limit, q.offset).map(deviceOut), total: deps.store.devices.count() }
    },
  )

  app.get(
    '/api/v1/devices/:id',
    {
      schema: {
        params: Type.Object({ id: Type.String({ maxLength: 64 }) }),
        response: { 200: Type.Object({ device: DeviceOut, events: Type.Array(Type.Unknown()) }) },
      },
    },
    async (req) => {
      const { id } = req.params as { id: string }
      const d = deps.store.devices.get(id)
      if (!d) throw new EdgeFleetError('EF_ERR_DEVICE_NOT_FOUND', id)
      return { device: deviceOut(d), events: deps.store.deployments.eventsForDevice(id, 100) }
    },
  )
}

const IdParams = Type.Object({ id: Type.String({ maxLength: 64 }) })

/** The device, or the error that says why its lifecycle cannot change. */
function changeable(deps: ApiDeps, id: string): DeviceRow {
  const d = deps.store.devices.get(id)
  if (!d) throw new EdgeFleetError('EF_ERR_DEVICE_NOT_FOUND', id)
  if (d.status === 'removed') throw new EdgeFleetError('EF_ERR_DEVICE_REMOVED', id)
  return d
}

/**
 * Applies a change of credentials or status: the store first (so a reconnect
 * is refused), then the external broker's files, then the live connection.
 */
function applyChange(deps: ApiDeps, id: string, change: () => boolean, dropConnection: boolean): void {
  if (!change()) throw new EdgeFleetError('EF_ERR_DEVICE_REMOVED', id) // removed between the check and now
  deps.onDevicesChanged?.()
  if (dropConnection) deps.disconnectDevice?.(id)
}

function lifecycleRoutes(app: FastifyInstance, deps: ApiDeps): void {
  const statusSchema = { params: IdParams, response: { 200: Type.Object({ device: DeviceOut }) } }
  // Disabling is containment any operator may do at once; undoing it, removal and new secrets are provisioning (admin).
  const transitions = [
    { path: 'disable', role: 'operator', status: 'disabled', drop: true },
    { path: 'enable', role: 'admin', status: 'active', drop: false },
  ] as const
  for (const t of transitions) {
    app.post(`/api/v1/devices/:id/${t.path}`, { config: { role: t.role }, schema: statusSchema }, async (req) => {
      const { id } = req.params as { id: string }
      changeable(deps, id)
      applyChange(deps, id, () => deps.store.devices.setStatus(id, t.status, deps.now()), t.drop)
      return { device: deviceOut(defined(deps.store.devices.get(id), `device ${id}`)) }
    })
  }

  app.delete(
    '/api/v1/devices/:id',
    { config: { role: 'admin' }, schema: { params: IdParams, response: { 204: Type.Null() } } },
    async (req, res) => {
      const { id } = req.params as { id: string }
      changeable(deps, id)
      applyChange(deps, id, () => deps.store.devices.setStatus(id, 'removed', deps.now()), true)
      return res.status(204).send()
    },
  )

  app.post(
    '/api/v1/devices/:id/rotate-secret',
    {
      config: { role: 'admin' },
      schema: { params: IdParams, response: { 200: Type.Object({ id: Id, secret: Type.String() }) } },
    },
    async (req) => {
      const { id } = req.params as { id: string }
      changeable(deps, id)
      const secret = randomBytes(32).toString('base64url')
      applyChange(
        deps,
        id,
        () => deps.store.devices.replaceSecret(id, sha256Hex(secret), mosquittoHash(secret), natsHash(secret)),
        true,
      )
      return { id, secret }
    },
  )
}
