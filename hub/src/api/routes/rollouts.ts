// Rollouts over HTTP [EF-8]: create, list, show (waves, decisions, gate values
// over time), per-device status, and the operator actions [EF-8.7].
import type { FastifyInstance, FastifyPluginAsync } from 'fastify'
import { Type, type Static } from '@sinclair/typebox'
import { EdgeFleetError } from '@edgefleet/shared'
import type { ApiDeps } from '../server.js'
import type { RolloutRow, HubStore } from '../../store/index.js'
import type { RolloutAction, RolloutEngine } from '../../rollouts/engine.js'
import type { RolloutSpec } from '../../rollouts/spec.js'
import { selectorText } from '../../rollouts/selector.js'

const Num = Type.Union([Type.Number(), Type.Null()])
const Int = Type.Integer({ minimum: 0 })

// Types only: ranges and relations are checked by rollouts/spec.ts so each answers its own code [EF-8.3, EF-8.5].
const WaveIn = Type.Object(
  {
    percent: Type.Optional(Type.Number()),
    count: Type.Optional(Type.Number()),
    soakMs: Type.Optional(Type.Number()),
    approval: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
)
// Gate values are left untyped here on purpose: the validator coerces (`coerceTypes`), which would turn
// a null (off) into 0, the strictest gate, and "1.5" into 1.5; spec.ts checks each value strictly and
// answers EF_ERR_GATES_INVALID [EF-8.5].
const GateValue = Type.Unknown({ description: "a number in the gate's range, or null (off) where the gate can be off" })
const GatesIn = Type.Object(
  {
    maxErrorRateDelta: Type.Optional(GateValue),
    maxP95Ratio: Type.Optional(GateValue),
    p95FloorMs: Type.Optional(GateValue),
    minShadowAgreement: Type.Optional(GateValue),
    maxConfidencePsi: Type.Optional(GateValue),
    minRequests: Type.Optional(GateValue),
    maxFailedDevices: Type.Optional(GateValue),
    baselineMs: Type.Optional(GateValue),
    confidence: Type.Optional(GateValue),
  },
  { additionalProperties: false },
)
const ScheduleIn = Type.Object(
  {
    start: Type.Optional(Type.String({ maxLength: 120 })),
    timezone: Type.Optional(Type.String({ maxLength: 64 })),
    startAt: Type.Optional(Type.Number()),
    maintenanceWindows: Type.Optional(Type.Boolean()),
    conditions: Type.Optional(Type.Array(Type.String({ maxLength: 32 }), { maxItems: 3 })),
    jitterMs: Type.Optional(Type.Number()),
  },
  { additionalProperties: false },
)
const RolloutBody = Type.Object(
  {
    model: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    version: Type.Optional(Type.String({ minLength: 1, maxLength: 40 })),
    /** An agent rollout: this agent release's version instead of model and version [EF-8.17]. */
    agent: Type.Optional(Type.String({ minLength: 1, maxLength: 40 })),
    selector: Type.Union([Type.String({ maxLength: 4096 }), Type.Object({}, { additionalProperties: true })]),
    waves: Type.Optional(Type.Array(WaveIn, { maxItems: 64 })),
    soakMs: Type.Optional(Type.Number()),
    gates: Type.Optional(GatesIn),
    onFail: Type.Optional(Type.Union([Type.Literal('pause'), Type.Literal('rollback')])),
    schedule: Type.Optional(ScheduleIn),
    approval: Type.Optional(Type.Boolean()),
    rollback: Type.Optional(Type.Boolean()),
    shadow: Type.Optional(
      Type.Union([
        Type.Object({ fraction: Type.Number(), soakMs: Type.Optional(Type.Number()) }, { additionalProperties: false }),
        Type.Null(),
      ]),
    ),
  },
  { additionalProperties: false },
)

const WaveOut = Type.Object({
  index: Int,
  percent: Num,
  count: Num,
  soakMs: Int,
  approval: Type.Boolean(),
  devices: Int,
  counts: Type.Record(Type.String(), Int),
})
const RolloutOut = Type.Object({
  id: Type.String(),
  model: Type.String(),
  version: Type.String(),
  state: Type.String(),
  wave: Int,
  phase: Type.String(),
  soakUntil: Type.Union([Type.Integer(), Type.Null()]),
  reason: Type.Union([Type.String(), Type.Null()]),
  selector: Type.Unknown(),
  selectorText: Type.String(),
  onFail: Type.String(),
  spec: Type.Unknown(),
  waves: Type.Array(WaveOut),
  totals: Type.Record(Type.String(), Int),
  devices: Int,
  createdBy: Type.Union([Type.String(), Type.Null()]),
  createdAt: Type.Integer(),
  updatedAt: Type.Integer(),
})
const Decision = Type.Object({
  id: Type.Integer(),
  ts: Type.Integer(),
  wave: Int,
  kind: Type.String(),
  decision: Type.String(),
  detail: Type.Record(Type.String(), Type.Unknown()),
  actor: Type.Union([Type.String(), Type.Null()]),
})
const GateSample = Type.Object({ ts: Type.Integer(), wave: Int, values: Type.Record(Type.String(), Num) })
const ShowOut = Type.Object({
  rollout: RolloutOut,
  decisions: Type.Array(Decision),
  gateSamples: Type.Array(GateSample),
})
const RolloutDevice = Type.Object({
  deviceId: Type.String(),
  wave: Type.Union([Int, Type.Null()]),
  status: Type.String(),
  previousVersion: Type.Union([Type.String(), Type.Null()]),
  dueAt: Type.Union([Type.Integer(), Type.Null()]),
  deploymentId: Type.Union([Type.String(), Type.Null()]),
  code: Type.Union([Type.String(), Type.Null()]),
  updatedAt: Type.Integer(),
})
const IdParams = Type.Object({ id: Type.String({ maxLength: 64 }) })
const Page = {
  limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }),
  offset: Type.Integer({ minimum: 0, default: 0 }),
}

function rolloutOut(store: HubStore, rollout: RolloutRow): Static<typeof RolloutOut> {
  const spec = rollout.spec as RolloutSpec
  const perWave = new Map<number, Record<string, number>>()
  const totals: Record<string, number> = {}
  let devices = 0
  for (const c of store.rollouts.waveCounts(rollout.id)) {
    totals[c.status] = (totals[c.status] ?? 0) + c.n
    devices += c.n
    if (c.wave === null) continue
    const m = perWave.get(c.wave) ?? {}
    m[c.status] = (m[c.status] ?? 0) + c.n
    perWave.set(c.wave, m)
  }
  return {
    id: rollout.id,
    model: rollout.model,
    version: rollout.version,
    state: rollout.state,
    wave: rollout.wave,
    phase: rollout.phase,
    soakUntil: rollout.soakUntil,
    reason: rollout.reason,
    selector: spec.selector,
    selectorText: selectorText(spec.selector),
    onFail: spec.onFail,
    spec,
    waves: spec.waves.map((w, i) => {
      const counts = perWave.get(i) ?? {}
      return {
        index: i,
        percent: w.percent ?? null,
        count: w.count ?? null,
        soakMs: w.soakMs ?? spec.soakMs,
        approval: spec.approval || w.approval === true,
        devices: Object.values(counts).reduce((a, b) => a + b, 0),
        counts,
      }
    }),
    totals,
    devices,
    createdBy: rollout.createdBy,
    createdAt: rollout.createdAt,
    updatedAt: rollout.updatedAt,
  }
}

export const rolloutRoutes: FastifyPluginAsync<ApiDeps> = async (app, deps) => {
  createRoute(app, deps)
  listRoute(app, deps)
  showRoute(app, deps)
  devicesRoute(app, deps)
  actionRoutes(app, deps)
}

function rolloutEngine(deps: ApiDeps): RolloutEngine {
  if (!deps.rollouts) throw new EdgeFleetError('EF_ERR_INTERNAL', 'rollout engine not configured')
  return deps.rollouts
}

function existingRollout(deps: ApiDeps, id: string): RolloutRow {
  const r = deps.store.rollouts.get(id)
  if (!r) throw new EdgeFleetError('EF_ERR_ROLLOUT_NOT_FOUND', id)
  return r
}

/** A rollout with its last decisions and its gate values over time. */
function rolloutView(deps: ApiDeps, id: string) {
  const r = existingRollout(deps, id)
  return {
    rollout: rolloutOut(deps.store, r),
    decisions: deps.store.rollouts.decisions(id, 500),
    gateSamples: deps.store.rollouts.gateSamples(id),
  }
}

/** The engine's input for a rollout body: either a model version or an agent release [EF-8.17], never both or neither. */
function rolloutInput(body: Static<typeof RolloutBody>): Parameters<RolloutEngine['create']>[0] {
  const { model, version, agent, ...rest } = body
  const subject =
    agent !== undefined ? { agent } : model !== undefined && version !== undefined ? { model, version } : null
  if (!subject || (agent !== undefined && (model !== undefined || version !== undefined)))
    throw new EdgeFleetError('EF_ERR_HTTP_BAD_REQUEST', 'give model and version, or agent (an agent release version)')
  return { ...rest, ...subject } as Parameters<RolloutEngine['create']>[0]
}

/** POST /api/v1/rollouts: creates a rollout and runs the engine's first step at once. */
function createRoute(app: FastifyInstance, deps: ApiDeps): void {
  app.post('/api/v1/rollouts', { schema: { body: RolloutBody, response: { 201: ShowOut } } }, async (req, res) => {
    const input = rolloutInput(req.body as Static<typeof RolloutBody>)
    const r = rolloutEngine(deps).create(input, req.principal?.name ?? null)
    void rolloutEngine(deps).tick()
    return res.status(201).send(rolloutView(deps, r.id))
  })
}

/** GET /api/v1/rollouts: a page of rollouts, optionally in one state. */
function listRoute(app: FastifyInstance, deps: ApiDeps): void {
  app.get(
    '/api/v1/rollouts',
    {
      schema: {
        querystring: Type.Object(
          { ...Page, state: Type.Optional(Type.String({ maxLength: 32 })) },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ items: Type.Array(RolloutOut), total: Int }) },
      },
    },
    async (req) => {
      const q = req.query as { limit: number; offset: number; state?: string }
      return {
        items: deps.store.rollouts.list(q.limit, q.offset, q.state).map((r) => rolloutOut(deps.store, r)),
        total: deps.store.rollouts.count(q.state),
      }
    },
  )
}

/** GET /api/v1/rollouts/:id: one rollout with its waves, decisions and gate values. */
function showRoute(app: FastifyInstance, deps: ApiDeps): void {
  app.get('/api/v1/rollouts/:id', { schema: { params: IdParams, response: { 200: ShowOut } } }, async (req) =>
    rolloutView(deps, (req.params as { id: string }).id),
  )
}

/** GET /api/v1/rollouts/:id/devices: a page of the rollout's devices, optionally with one status. */
function devicesRoute(app: FastifyInstance, deps: ApiDeps): void {
  app.get(
    '/api/v1/rollouts/:id/devices',
    {
      schema: {
        params: IdParams,
        querystring: Type.Object(
          { ...Page, status: Type.Optional(Type.String({ maxLength: 32 })) },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ items: Type.Array(RolloutDevice), total: Int }) },
      },
    },
    async (req) => {
      const { id } = req.params as { id: string }
      const q = req.query as { limit: number; offset: number; status?: string }
      existingRollout(deps, id)
      const items = deps.store.rollouts.devicePage(id, q.limit, q.offset, q.status)
      const total = deps.store.rollouts
        .waveCounts(id)
        .filter((c) => !q.status || c.status === q.status)
        .reduce((a, c) => a + c.n, 0)
      return { items, total }
    },
  )
}

/** POST /api/v1/rollouts/:id/{action}: the operator actions [EF-8.7], each followed by an engine step. */
function actionRoutes(app: FastifyInstance, deps: ApiDeps): void {
  for (const action of ['pause', 'resume', 'abort', 'promote', 'rollback', 'approve'] as RolloutAction[]) {
    app.post(
      `/api/v1/rollouts/:id/${action}`,
      { schema: { params: IdParams, response: { 200: ShowOut } } },
      async (req) => {
        const { id } = req.params as { id: string }
        rolloutEngine(deps).action(id, action, req.principal?.name ?? null)
        void rolloutEngine(deps).tick()
        return rolloutView(deps, id)
      },
    )
  }
}
