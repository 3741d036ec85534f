// Deployments and per-device progress.
import type { FastifyInstance, FastifyPluginAsync } from 'fastify'
import { Type, type Static } from '@sinclair/typebox'
import { EdgeFleetError } from '@edgefleet/shared'
import type { ApiDeps } from '../server.js'
import { TERMINAL_STATES, type DeploymentDeviceRow } from '../../store/index.js'
import { windowOpensAt } from '../../distribution/hold.js'

const DeployBody = Type.Object(
  {
    model: Type.String({ minLength: 1, maxLength: 64 }),
    version: Type.String({ minLength: 1, maxLength: 40 }),
    target: Type.String({ minLength: 3, maxLength: 200 }),
    rollback: Type.Optional(Type.Boolean()),
    /** Send at once, ignoring maintenance windows and device conditions [EF-8.16]. */
    now: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
)

const DeploymentOut = Type.Object({
  id: Type.String(),
  model: Type.String(),
  version: Type.String(),
  target: Type.String(),
  rollback: Type.Boolean(),
  createdAt: Type.Integer(),
  counts: Type.Record(Type.String(), Type.Integer()),
  done: Type.Boolean(),
})

const DeviceProgress = Type.Object({
  deviceId: Type.String(),
  state: Type.String(),
  bytes: Type.Integer(),
  totalBytes: Type.Integer(),
  code: Type.Union([Type.String(), Type.Null()]),
  message: Type.Union([Type.String(), Type.Null()]),
  updatedAt: Type.Integer(),
  /** Whether the device is connected now: an offline device's assignment waits for it [EF-8.14]. */
  online: Type.Boolean(),
  /** A `waiting_window` assignment: when the device's next maintenance window opens (ms) [EF-8.16]. */
  windowOpensAt: Type.Optional(Type.Union([Type.Integer(), Type.Null()])),
})

const ShowOut = Type.Object({ deployment: DeploymentOut, devices: Type.Array(DeviceProgress) })

export const deploymentRoutes: FastifyPluginAsync<ApiDeps> = async (app, deps) => {
  createRoute(app, deps)
  listRoute(app, deps)
  showRoute(app, deps)
}

/** A deployment with its counts per state and every device's progress. */
function deploymentView(deps: ApiDeps, id: string): Static<typeof ShowOut> {
  const d = deps.store.deployments.get(id)
  if (!d) throw new EdgeFleetError('EF_ERR_DEPLOYMENT_NOT_FOUND', id)
  const devices = deps.store.deployments.devices(id)
  const counts: Record<string, number> = {}
  for (const x of devices) counts[x.state] = (counts[x.state] ?? 0) + 1
  const done = devices.every((x) => TERMINAL_STATES.has(x.state))
  return {
    deployment: { ...d, counts, done },
    devices: devices.map((assignment) => deviceProgress(deps, assignment)),
  }
}

/** One device's progress, with whether it is online [EF-8.14] and when its window opens [EF-8.16]. */
function deviceProgress(deps: ApiDeps, assignment: DeploymentDeviceRow): Static<typeof DeviceProgress> {
  const device = deps.store.devices.get(assignment.deviceId)
  const profile = device && deps.profiles.get(device.profile)
  return {
    deviceId: assignment.deviceId,
    state: assignment.state,
    bytes: assignment.bytes,
    totalBytes: assignment.totalBytes,
    code: assignment.code,
    message: assignment.message,
    updatedAt: assignment.updatedAt,
    online: device?.online ?? false,
    ...(assignment.state === 'waiting_window' && profile ? { windowOpensAt: windowOpensAt(profile, deps.now()) } : {}),
  }
}

/** POST /api/v1/deployments: deploys a build to a target and answers with the new deployment. */
function createRoute(app: FastifyInstance, deps: ApiDeps): void {
  app.post('/api/v1/deployments', { schema: { body: DeployBody, response: { 201: ShowOut } } }, async (req, res) => {
    const body = req.body as Static<typeof DeployBody>
    const d = await deps.deployer.deploy(body)
    return res.status(201).send(deploymentView(deps, d.id))
  })
}

/** GET /api/v1/deployments: a page of deployments, newest first, with the total. */
function listRoute(app: FastifyInstance, deps: ApiDeps): void {
  app.get(
    '/api/v1/deployments',
    {
      schema: {
        querystring: Type.Object(
          {
            limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }),
            offset: Type.Integer({ minimum: 0, default: 0 }),
          },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ items: Type.Array(DeploymentOut), total: Type.Integer() }) },
      },
    },
    async (req) => {
      const q = req.query as { limit: number; offset: number }
      return {
        total: deps.store.deployments.count(),
        items: deps.store.deployments.list(q.limit, q.offset).map((d) => ({
          ...d,
          done: Object.keys(d.counts).every((s) => TERMINAL_STATES.has(s)),
        })),
      }
    },
  )
}

/** GET /api/v1/deployments/:id: one deployment and its devices' progress. */
function showRoute(app: FastifyInstance, deps: ApiDeps): void {
  app.get(
    '/api/v1/deployments/:id',
    { schema: { params: Type.Object({ id: Type.String({ maxLength: 64 }) }), response: { 200: ShowOut } } },
    async (req) => deploymentView(deps, (req.params as { id: string }).id),
  )
}
