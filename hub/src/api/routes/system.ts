// Health, hub identity, profiles and telemetry summaries.
import type { FastifyInstance, FastifyPluginAsync } from 'fastify'
import { Type } from '@sinclair/typebox'
import type { ApiDeps } from '../server.js'

export const systemRoutes: FastifyPluginAsync<ApiDeps> = async (app, deps) => {
  healthzRoute(app, deps)
  hubRoutes(app, deps)
  telemetrySummaryRoute(app, deps)
}

/** Liveness, and whether this replica leads [EF-12.5]. */
function healthzRoute(app: FastifyInstance, deps: ApiDeps): void {
  app.get(
    '/healthz',
    {
      schema: {
        response: {
          200: Type.Object({
            ok: Type.Boolean(),
            devices: Type.Integer(),
            mqttUrl: Type.String(),
            leader: Type.Boolean(),
            term: Type.Integer(),
            replica: Type.String(),
          }),
        },
      },
    },
    // `leader` tells load balancers and operators which replica runs the fleet's leader-only work [EF-12.5].
    async () => ({
      ok: true,
      devices: deps.store.devices.count(),
      mqttUrl: deps.mqttUrl,
      leader: deps.leadership?.isLeader() ?? true,
      term: deps.leadership?.term() ?? 0,
      replica: deps.leadership?.replicaId ?? 'sole',
    }),
  )
}

/** The hub's identity and counters, and the firmware profiles. */
function hubRoutes(app: FastifyInstance, deps: ApiDeps): void {
  app.get(
    '/api/v1/hub',
    {
      schema: {
        response: {
          200: Type.Object({
            publicKey: Type.String(),
            mqttUrl: Type.String(),
            metrics: Type.Object({
              messagesIn: Type.Integer(),
              dropped: Type.Record(Type.String(), Type.Integer()),
              duplicateBatches: Type.Integer(),
            }),
            distribution: Type.Object({
              broadcastChunks: Type.Integer(),
              broadcastBytes: Type.Integer(),
              repairChunks: Type.Integer(),
              repairBytes: Type.Integer(),
              prematureRepairs: Type.Integer(),
            }),
          }),
        },
      },
    },
    async () => ({
      publicKey: deps.keys.publicKey,
      mqttUrl: deps.mqttUrl,
      metrics: deps.metrics,
      distribution: deps.distribution ?? {
        broadcastChunks: 0,
        broadcastBytes: 0,
        repairChunks: 0,
        repairBytes: 0,
        prematureRepairs: 0,
      },
    }),
  )

  app.get(
    '/api/v1/profiles',
    { schema: { response: { 200: Type.Object({ items: Type.Array(Type.Unknown()) }) } } },
    async () => ({
      items: [...deps.profiles.values()],
    }),
  )
}

const Num = Type.Union([Type.Number(), Type.Null()])
const SummaryItem = Type.Object({
  model: Type.String(),
  version: Type.String(),
  devices: Type.Integer(),
  requests: Type.Integer(),
  errors: Type.Integer(),
  p50Ms: Num,
  p95Ms: Num,
  p99Ms: Num,
  meanMs: Num,
  overflowRequests: Type.Integer(),
})

/** Requests, errors and latency percentiles per model version. */
function telemetrySummaryRoute(app: FastifyInstance, deps: ApiDeps): void {
  app.get(
    '/api/v1/telemetry/summary',
    {
      schema: {
        querystring: Type.Object(
          {
            model: Type.Optional(Type.String()),
            device: Type.Optional(Type.String()),
            sinceMs: Type.Optional(Type.Integer({ minimum: 0 })),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({ items: Type.Array(SummaryItem), batches: Type.Integer() }),
        },
      },
    },
    async (req) => {
      const q = req.query as { model?: string; device?: string; sinceMs?: number }
      return {
        items: deps.store.telemetry.summary({ model: q.model, deviceId: q.device, sinceMs: q.sinceMs }),
        batches: deps.store.telemetry.countRows().batches,
      }
    },
  )
}
