// Read endpoints the console plots from: telemetry time series, fleet
// aggregates and a filtered device page [EF-8.11].
import type { FastifyPluginAsync } from 'fastify'
import { Type } from '@sinclair/typebox'
import type { ApiDeps } from '../server.js'
import { deviceOut } from './devices.js'

const Num = Type.Union([Type.Number(), Type.Null()])

const SeriesQuery = Type.Object(
  {
    model: Type.String({ minLength: 1, maxLength: 64 }),
    device: Type.Optional(Type.String({ maxLength: 64 })),
    sinceMs: Type.Optional(Type.Integer({ minimum: 0 })),
    bucketMs: Type.Integer({ minimum: 1000, maximum: 86_400_000, default: 60_000 }),
  },
  { additionalProperties: false },
)

const SeriesPoint = Type.Object({
  ts: Type.Integer(),
  version: Type.String(),
  requests: Type.Integer(),
  errors: Type.Integer(),
  p50Ms: Num,
  p95Ms: Num,
  confidence: Type.Array(Type.Integer()),
})

const FleetSummary = Type.Object({
  total: Type.Integer(),
  online: Type.Integer(),
  byProfile: Type.Array(Type.Object({ profile: Type.String(), online: Type.Integer(), offline: Type.Integer() })),
  byVersion: Type.Array(Type.Object({ model: Type.String(), version: Type.String(), devices: Type.Integer() })),
})

export const consoleDataRoutes: FastifyPluginAsync<ApiDeps> = async (app, deps) => {
  const queries = deps.store.console
  app.get(
    '/api/v1/telemetry/series',
    {
      schema: {
        querystring: SeriesQuery,
        response: { 200: Type.Object({ items: Type.Array(SeriesPoint) }) },
      },
    },
    async (req) => {
      const p = req.query as { model: string; device?: string; sinceMs?: number; bucketMs: number }
      return {
        items: queries.series({
          model: p.model,
          deviceId: p.device,
          sinceMs: p.sinceMs ?? deps.now() - 3_600_000,
          bucketMs: p.bucketMs,
        }),
      }
    },
  )
  app.get(
    '/api/v1/fleet/summary',
    {
      schema: {
        response: { 200: FleetSummary },
      },
    },
    async () => queries.fleet(),
  )
  app.get(
    '/api/v1/fleet/devices',
    {
      schema: {
        querystring: Type.Object(
          {
            limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }),
            offset: Type.Integer({ minimum: 0, default: 0 }),
            q: Type.Optional(Type.String({ maxLength: 64 })),
          },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ items: Type.Array(Type.Unknown()), total: Type.Integer() }) },
      },
    },
    async (req) => {
      const p = req.query as { limit: number; offset: number; q?: string }
      const { ids, total } = queries.devicePage(p.limit, p.offset, p.q)
      return {
        items: ids
          .map((id) => deps.store.devices.get(id))
          .filter((d) => d !== undefined)
          .map(deviceOut),
        total,
      }
    },
  )
}
