// Agent releases and agent updates over HTTP [EF-11.3, EF-11.4, EF-11.9]: operators
// register packages and send updates; devices download a release's package
// with HTTP Basic and range requests, as they do model artifacts (EF-4.10).
import type { FastifyInstance, FastifyPluginAsync } from 'fastify'
import { Type, type Static } from '@sinclair/typebox'
import { AgentPackageArch, AgentRelease, EdgeFleetError } from '@edgefleet/shared'
import type { ApiDeps } from '../server.js'
import { deviceFrom } from './artifacts.js'
import { sendFileRange } from '../file-range.js'
import { registerRelease } from '../../agent-releases/releases.js'

const VersionField = Type.String({ pattern: '^\\d{1,9}(\\.\\d{1,9}){0,3}$' })
const ReleaseOut = Type.Object({ release: AgentRelease, createdAt: Type.Integer() })
const UpdateBody = Type.Object(
  {
    target: Type.String({ minLength: 1, maxLength: 200 }),
    version: VersionField,
    rollback: Type.Optional(Type.Boolean()),
    deadlineMs: Type.Optional(Type.Integer({ minimum: 1000, maximum: 3_600_000 })),
    arch: Type.Optional(AgentPackageArch),
  },
  { additionalProperties: false },
)
const Outcome = Type.Object({ device: Type.String(), arch: Type.String(), cmdId: Type.String() })
const Skipped = Type.Object({ device: Type.String(), code: Type.String(), message: Type.String() })

export const agentReleaseRoutes: FastifyPluginAsync<ApiDeps> = async (app, deps) => {
  releaseUploadRoute(app, deps)
  releaseListRoute(app, deps)
  packageDownloadRoute(app, deps)
  agentUpdateRoute(app, deps)
}

/** POST /api/v1/agent-releases: an operator registers a release package [EF-11.3]. */
function releaseUploadRoute(app: FastifyInstance, deps: ApiDeps): void {
  app.post(
    '/api/v1/agent-releases',
    {
      config: { role: 'admin' }, // a release is code every device will run
      schema: {
        querystring: Type.Object({ version: VersionField }, { additionalProperties: false }),
        response: { 201: Type.Object({ release: AgentRelease, created: Type.Boolean() }) },
      },
    },
    async (req, res) => {
      if (!Buffer.isBuffer(req.body))
        throw new EdgeFleetError('EF_ERR_HTTP_BAD_REQUEST', 'send the .tar.gz as application/octet-stream')
      const { version } = req.query as { version: string }
      const r = await registerRelease(deps, req.body, version)
      return res.status(201).send({ release: r.release, created: r.created })
    },
  )
}

/** GET /api/v1/agent-releases: the registered releases. */
function releaseListRoute(app: FastifyInstance, deps: ApiDeps): void {
  app.get(
    '/api/v1/agent-releases',
    { schema: { response: { 200: Type.Object({ items: Type.Array(ReleaseOut) }) } } },
    () => ({
      items: deps.store.agentReleases.list().map((r) => ({ release: r.release, createdAt: r.createdAt })),
    }),
  )
}

/** GET a release's package: devices download it with HTTP Basic and range requests, as model artifacts [EF-4.10]. */
function packageDownloadRoute(app: FastifyInstance, deps: ApiDeps): void {
  app.get(
    '/api/v1/agent-releases/:version/:arch/package',
    {
      config: { role: 'none' }, // devices authenticate with HTTP Basic [EF-4.10]
      schema: { params: Type.Object({ version: VersionField, arch: Type.String({ maxLength: 16 }) }) },
    },
    async (req, res) => {
      deviceFrom(req, (id) => deps.store.devices.secretHash(id))
      const { version, arch } = req.params as { version: string; arch: string }
      const row = deps.store.agentReleases.get(version, arch)
      if (!row || !deps.blobs.has(row.release.sha256))
        throw new EdgeFleetError('EF_ERR_AGENT_RELEASE_NOT_FOUND', `agent ${version} for ${arch}`)
      return sendFileRange(req, res, {
        path: deps.blobs.path(row.release.sha256),
        size: row.release.size,
        contentType: 'application/gzip',
      })
    },
  )
}

/** POST /api/v1/agent-updates: sends an agent update to the devices of a target [EF-11.4]. */
function agentUpdateRoute(app: FastifyInstance, deps: ApiDeps): void {
  app.post(
    '/api/v1/agent-updates',
    {
      schema: {
        body: UpdateBody,
        response: {
          202: Type.Object({ batch: Type.String(), sent: Type.Array(Outcome), skipped: Type.Array(Skipped) }),
        },
      },
    },
    async (req, res) => {
      if (!deps.agentUpdates) throw new EdgeFleetError('EF_ERR_INTERNAL', 'agent updates not configured')
      // Devices fetch the package from the address the operator reached the hub at.
      const httpBase = `${req.protocol}://${req.host}`
      const out = await deps.agentUpdates.sendTarget(req.body as Static<typeof UpdateBody>, httpBase)
      return res.status(202).send(out)
    },
  )
}
