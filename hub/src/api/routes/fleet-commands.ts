// Runtime commands to one device (shadow, promote, discard, capture policy,
// simulated conditions) and what comes back (shadow comparisons, samples).
import type { FastifyPluginAsync } from 'fastify'
import { Type, type Static } from '@sinclair/typebox'
import { CapturePolicy, EdgeFleetError } from '@edgefleet/shared'
import type { ApiDeps } from '../server.js'

const DeviceParams = Type.Object({ id: Type.String({ maxLength: 64 }) })
const Sent = Type.Object({ cmdId: Type.String() })
const ModelVersion = {
  model: Type.String({ minLength: 1, maxLength: 64 }),
  version: Type.String({ minLength: 1, maxLength: 40 }),
}

const ShadowBody = Type.Object(
  { ...ModelVersion, fraction: Type.Number({ minimum: 0, maximum: 1 }) },
  { additionalProperties: false },
)
const PromoteBody = Type.Object(ModelVersion, { additionalProperties: false })
const DiscardBody = Type.Object(
  { model: ModelVersion.model, version: Type.Optional(ModelVersion.version) },
  { additionalProperties: false },
)
const CaptureBody = Type.Object(
  { policies: Type.Array(CapturePolicy, { maxItems: 64 }) },
  { additionalProperties: false },
)
const Net = Type.Union([Type.Literal('metered'), Type.Literal('unmetered'), Type.Literal('unknown'), Type.Null()])
const Power = Type.Union([Type.Literal('charging'), Type.Literal('battery'), Type.Literal('unknown'), Type.Null()])
const ConditionsBody = Type.Object(
  {
    network: Type.Optional(Net),
    power: Type.Optional(Power),
    idle: Type.Optional(Type.Union([Type.Boolean(), Type.Null()])),
  },
  { additionalProperties: false },
)

export const fleetCommandRoutes: FastifyPluginAsync<ApiDeps> = async (app, deps) => {
  const commands = () => {
    if (!deps.commands) throw new EdgeFleetError('EF_ERR_INTERNAL', 'command sender not configured')
    return deps.commands
  }
  const opts = <B>(body: B) => ({ schema: { params: DeviceParams, body, response: { 202: Sent } } })
  const id = (req: { params: unknown }) => (req.params as { id: string }).id

  app.post('/api/v1/devices/:id/shadow', opts(ShadowBody), async (req, res) => {
    const b = req.body as Static<typeof ShadowBody>
    return res.status(202).send({ cmdId: await commands().shadow(id(req), b.model, b.version, b.fraction) })
  })
  app.post('/api/v1/devices/:id/promote', opts(PromoteBody), async (req, res) => {
    const b = req.body as Static<typeof PromoteBody>
    return res.status(202).send({ cmdId: await commands().promote(id(req), b.model, b.version) })
  })
  app.post('/api/v1/devices/:id/discard', opts(DiscardBody), async (req, res) => {
    const b = req.body as Static<typeof DiscardBody>
    return res.status(202).send({ cmdId: await commands().discard(id(req), b.model, b.version) })
  })
  app.post('/api/v1/devices/:id/capture-policy', opts(CaptureBody), async (req, res) => {
    const b = req.body as Static<typeof CaptureBody>
    return res.status(202).send({ cmdId: await commands().capturePolicy(id(req), b.policies) })
  })
  app.post('/api/v1/devices/:id/conditions', opts(ConditionsBody), async (req, res) => {
    return res
      .status(202)
      .send({ cmdId: await commands().conditions(id(req), req.body as Static<typeof ConditionsBody>) })
  })

  app.get(
    '/api/v1/shadow',
    {
      schema: {
        querystring: Type.Object(
          { model: Type.Optional(Type.String({ maxLength: 64 })) },
          { additionalProperties: false },
        ),
      },
    },
    async (req) => ({ items: deps.store.telemetry.shadowSummary({ model: (req.query as { model?: string }).model }) }),
  )
  app.get(
    '/api/v1/samples',
    {
      schema: {
        querystring: Type.Object(
          {
            model: Type.Optional(Type.String({ maxLength: 64 })),
            cursor: Type.Optional(Type.Integer({ minimum: 0 })),
            limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }),
          },
          { additionalProperties: false },
        ),
      },
    },
    async (req) => {
      const q = req.query as { model?: string; cursor?: number; limit: number }
      return deps.store.telemetry.samples.list(q)
    },
  )
}
