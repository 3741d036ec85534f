// The retraining loop's views for operators and the console: drift per
// version, profile and subject [EF-9.5], baselines [EF-9.4], rollups
// [EF-9.2], lineage of retrained versions [EF-9.11] and one status summary.
import type { FastifyInstance, FastifyPluginAsync } from 'fastify'
import { Type, type Static } from '@sinclair/typebox'
import { EdgeFleetError } from '@edgefleet/shared'
import type { ApiDeps } from '../server.js'
import { FEED_KINDS } from '../../store/index.js'
import { checkPostedBaseline } from '../../telemetry/baselines.js'

const VersionParams = Type.Object({ name: Type.String({ maxLength: 64 }), version: Type.String({ maxLength: 40 }) })
const Counts = Type.Array(Type.Integer({ minimum: 0 }), { maxItems: 64 })
const BaselineBody = Type.Object(
  {
    profile: Type.String({ minLength: 1, maxLength: 64, default: '*' }),
    requests: Type.Optional(Type.Integer({ minimum: 0 })),
    confidence: Type.Optional(Type.Union([Counts, Type.Null()])),
    features: Type.Optional(Type.Record(Type.String({ minLength: 1, maxLength: 256 }), Counts, { maxProperties: 16 })),
  },
  { additionalProperties: false },
)
const DriftItem = Type.Object({
  model: Type.String(),
  version: Type.String(),
  profile: Type.String(),
  subject: Type.String(),
  psi: Type.Union([Type.Number(), Type.Null()]),
  count: Type.Integer(),
  baselineSource: Type.Union([Type.String(), Type.Null()]),
  open: Type.Boolean(),
  /** `no_baseline_yet` until a field baseline is frozen or one is posted (no PSI against a build baseline) [EF-9.4]. */
  status: Type.Union([Type.Literal('no_baseline_yet'), Type.Literal('drifting'), Type.Literal('stable')]),
  evaluatedAt: Type.Integer(),
})

/** What the console and CLI show for a drift value [EF-9.4]: nothing is measured against a build baseline. */
function driftStatus(drift: { psi: number | null; baselineSource: string | null; open: boolean }) {
  if (drift.psi === null || drift.baselineSource === null || drift.baselineSource === 'build')
    return 'no_baseline_yet' as const
  return drift.open ? ('drifting' as const) : ('stable' as const)
}

export const retrainingRoutes: FastifyPluginAsync<ApiDeps> = async (app, deps) => {
  driftRoutes(app, deps)
  baselineRoutes(app, deps)
  rollupRoutes(app, deps)
  lineageRoute(app, deps)
  statusRoute(app, deps)
}

/** Drift states [EF-9.5], and an evaluation on demand. */
function driftRoutes(app: FastifyInstance, deps: ApiDeps): void {
  const telemetry = deps.store.telemetry
  const retraining = () => {
    if (!deps.retraining) throw new EdgeFleetError('EF_ERR_INTERNAL', 'the retraining loop is not configured')
    return deps.retraining
  }

  app.get(
    '/api/v1/drift',
    {
      schema: {
        querystring: Type.Object(
          {
            model: Type.Optional(Type.String({ maxLength: 64 })),
            version: Type.Optional(Type.String({ maxLength: 40 })),
          },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ items: Type.Array(DriftItem), threshold: Type.Number() }) },
      },
    },
    async (req) => {
      const q = req.query as { model?: string; version?: string }
      const items = telemetry.baselines.listDrift(q).map((drift) => ({ ...drift, status: driftStatus(drift) }))
      return { items, threshold: deps.retraining?.drift.options.threshold ?? 0.2 }
    },
  )

  // An evaluation now instead of at the next interval (demos, pipelines that just posted a baseline).
  app.post(
    '/api/v1/drift/evaluate',
    {
      schema: {
        response: {
          200: Type.Object({ evaluated: Type.Integer(), events: Type.Array(Type.Integer()), ms: Type.Number() }),
        },
      },
    },
    async () => {
      const d = retraining().drift
      const r = d.evaluate()
      return { evaluated: r.values.length, events: r.events.map((e) => e.cursor), ms: d.stats.lastMs }
    },
  )
}

/** A version's baselines, read and posted [EF-9.4]. */
function baselineRoutes(app: FastifyInstance, deps: ApiDeps): void {
  const telemetry = deps.store.telemetry
  app.get('/api/v1/models/:name/versions/:version/baseline', { schema: { params: VersionParams } }, async (req) => {
    const p = req.params as Static<typeof VersionParams>
    deps.registry.version(p.name, p.version)
    const items = telemetry.baselines.list(p.name, p.version)
    // Drift is measured only against a field or posted baseline [EF-9.4].
    return { items, status: items.some((b) => b.source !== 'build') ? 'ready' : 'no_baseline_yet' }
  })

  app.put(
    '/api/v1/models/:name/versions/:version/baseline',
    { schema: { params: VersionParams, body: BaselineBody } },
    async (req) => {
      const p = req.params as Static<typeof VersionParams>
      const body = req.body as Static<typeof BaselineBody>
      const v = deps.registry.version(p.name, p.version)
      checkPostedBaseline(v.inputs, body)
      const sum = (a: readonly number[]) => a.reduce((x, y) => x + y, 0)
      const baseline = {
        model: p.name,
        version: p.version,
        profile: body.profile,
        source: 'api' as const,
        fromMs: null,
        toMs: null,
        requests: body.requests ?? (body.confidence ? sum(body.confidence) : 0),
        confidence: body.confidence ?? null,
        features: body.features ?? {},
        createdAt: deps.now(),
      }
      telemetry.baselines.put(baseline)
      return { baseline }
    },
  )
}

/** Rollup rows of a model [EF-9.2]. */
function rollupRoutes(app: FastifyInstance, deps: ApiDeps): void {
  const telemetry = deps.store.telemetry
  app.get(
    '/api/v1/rollups',
    {
      schema: {
        querystring: Type.Object(
          {
            model: Type.String({ minLength: 1, maxLength: 64 }),
            version: Type.Optional(Type.String({ maxLength: 40 })),
            from: Type.Optional(Type.Integer({ minimum: 0 })),
            to: Type.Optional(Type.Integer({ minimum: 0 })),
          },
          { additionalProperties: false },
        ),
      },
    },
    async (req) => {
      const q = req.query as { model: string; version?: string; from?: number; to?: number }
      const to = q.to ?? deps.now() + 1
      const from = q.from ?? to - 24 * 60 * 60_000
      return { items: telemetry.rollups.rows(q.model, q.version ?? null, from, to).slice(-10_000) }
    },
  )
}

/** A model's versions with parents, builds, rollouts, baselines and open drift [EF-9.11]. */
function lineageRoute(app: FastifyInstance, deps: ApiDeps): void {
  const telemetry = deps.store.telemetry
  app.get(
    '/api/v1/models/:name/lineage',
    { schema: { params: Type.Object({ name: Type.String({ maxLength: 64 }) }) } },
    async (req) => {
      const { name } = req.params as { name: string }
      const model = deps.store.registry.listModels().find((m) => m.name === name)
      if (!model) throw new EdgeFleetError('EF_ERR_MODEL_NOT_FOUND', name)
      const rollouts = deps.store.rollouts.list(10_000, 0).filter((r) => r.model === name)
      const drift = telemetry.baselines.listDrift({ model: name })
      return {
        model: name,
        items: model.versions.map((version) => {
          const v = deps.registry.version(name, version)
          return {
            version,
            parent: v.parent,
            runId: v.runId,
            createdAt: v.createdAt,
            builds: deps.store.registry
              .listBuilds(name, version)
              .map((b) => ({ profile: b.profile, status: b.status, precision: b.precision, errorCode: b.errorCode })),
            rollouts: rollouts
              .filter((r) => r.version === version)
              .map((r) => ({ id: r.id, state: r.state, wave: r.wave, createdAt: r.createdAt })),
            baselines: telemetry.baselines
              .list(name, version)
              .map((b) => ({ profile: b.profile, source: b.source, requests: b.requests })),
            drifting: drift
              .filter((d) => d.version === version && d.open)
              .map((d) => ({ profile: d.profile, subject: d.subject, psi: d.psi })),
          }
        }),
      }
    },
  )
}

function statusRoute(app: FastifyInstance, deps: ApiDeps): void {
  // One summary for the console's "Retraining loop" panel.
  app.get('/api/v1/retraining/status', async () => {
    const telemetry = deps.store.telemetry
    const retraining = deps.retraining
    return {
      feed: {
        last: telemetry.feed.last(),
        floor: telemetry.feed.floor(),
        byKind: Object.fromEntries(FEED_KINDS.map((k) => [k, telemetry.feed.count({ kind: k })])),
      },
      ingest: retraining
        ? { ...retraining.ingest.stats, queued: retraining.ingest.queued, options: retraining.ingest.options }
        : null,
      drift: retraining
        ? {
            ...retraining.drift.stats,
            options: retraining.drift.options,
            open: telemetry.baselines.listDrift().filter((d) => d.open),
          }
        : null,
      live: retraining ? retraining.live.stats : null,
      rollups: telemetry.rollups.count(),
    }
  })
}
