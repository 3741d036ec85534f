// Provisioning and the device list.
import { randomBytes } from 'node:crypto'
import type { FastifyPluginAsync } from 'fastify'
import { Type, type Static } from '@sinclair/typebox'
import { EdgeFleetError, Id, isValidId, sha256Hex } from '@edgefleet/shared'
import type { ApiDeps } from '../server.js'
import { mosquittoHash } from '../../broker/mosquitto.js'
import { TAG_KEY, type DeviceRow } from '../../store/index.js'

const Tags = Type.Record(Type.String({ pattern: TAG_KEY.source }), Type.String({ maxLength: 256 }), {
  maxProperties: 32,
})

const DeviceBody = Type.Object(
  {
    id: Type.String({ minLength: 1, maxLength: 64 }),
    profile: Type.String({ minLength: 1, maxLength: 64 }),
    tags: Type.Optional(Tags),
  },
  { additionalProperties: false },
)

const DeviceOut = Type.Object({
  id: Type.String(),
  profile: Type.String(),
  tags: Type.Record(Type.String(), Type.String()),
  online: Type.Boolean(),
  lastSeen: Type.Union([Type.Integer(), Type.Null()]),
  createdAt: Type.Integer(),
  models: Type.Array(
    Type.Object({ name: Type.String(), version: Type.String(), precision: Type.String(), slot: Type.String() }),
  ),
  apiPort: Type.Union([Type.Integer(), Type.Null()]),
})

export function deviceOut(d: DeviceRow): Static<typeof DeviceOut> {
  return {
    id: d.id,
    profile: d.profile,
    tags: d.tags,
    online: d.online,
    lastSeen: d.lastSeen,
    createdAt: d.createdAt,
    models: (d.state?.models ?? []).map((m) => ({
      name: m.name,
      version: m.version,
      precision: m.precision,
      slot: m.slot,
    })),
    apiPort: d.state?.apiPort ?? null,
  }
}

export const deviceRoutes: FastifyPluginAsync<ApiDeps> = async (app, deps) => {
  app.post(
    '/api/v1/devices',
    {
      schema: {
        body: DeviceBody,
        response: {
          201: Type.Object({
            id: Id,
            profile: Type.String(),
            tags: Tags,
            secret: Type.String(),
            hubPublicKey: Type.String(),
            mqttUrl: Type.String(),
          }),
        },
      },
    },
    async (req, res) => {
      const body = req.body as Static<typeof DeviceBody>
      if (!isValidId(body.id)) throw new EdgeFleetError('EF_ERR_DEVICE_ID_INVALID', body.id)
      if (!deps.profiles.has(body.profile))
        throw new EdgeFleetError(
          'EF_ERR_PROFILE_UNKNOWN',
          `${body.profile} (known: ${[...deps.profiles.keys()].join(', ')})`,
        )
      // 256-bit random secrets: a plain sha256 is a sound verifier, no slow KDF needed.
      const secret = randomBytes(32).toString('base64url')
      const tags = body.tags ?? {}
      try {
        deps.store.devices.insert(body.id, body.profile, tags, sha256Hex(secret), deps.now(), mosquittoHash(secret))
      } catch (err) {
        if ((err as { code?: string }).code === 'SQLITE_CONSTRAINT_PRIMARYKEY')
          throw new EdgeFleetError('EF_ERR_DEVICE_EXISTS', body.id)
        throw err
      }
      deps.onDevicesChanged?.()
      return res
        .status(201)
        .send({
          id: body.id,
          profile: body.profile,
          tags,
          secret,
          hubPublicKey: deps.keys.publicKey,
          mqttUrl: deps.mqttUrl,
        })
    },
  )

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
