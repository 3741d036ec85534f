// Model registration (raw ONNX bytes in the body) and the registry views.
import type { FastifyInstance, FastifyPluginAsync } from 'fastify'
import { Type, type Static } from '@sinclair/typebox'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import { EdgeFleetError, OutputSemantics, Precision } from '@edgefleet/shared'
import type { ApiDeps } from '../server.js'
import type { VersionOptions } from '../../build/builder.js'
import { validateGates, type Gates } from '../../rollouts/spec.js'
import type { BuildRow, VersionRow } from '../../store/index.js'
import { parseModelMeta } from '../../registry/meta.js'

/** Options for compiling a version, sent as JSON in the `options` query parameter. */
const VersionOptionsSchema = Type.Object(
  {
    inputShapes: Type.Optional(Type.Record(Type.String(), Type.Array(Type.Integer({ minimum: 1 }), { maxItems: 16 }))),
    inputValues: Type.Optional(Type.Record(Type.String(), Type.Number())),
    precision: Type.Optional(Type.Union([Type.Literal('auto'), Precision])),
    /** Output name → what it means, for the manifest's semantics [EF-2.6.4]. */
    outputs: Type.Optional(
      Type.Record(Type.String({ minLength: 1, maxLength: 256 }), OutputSemantics.properties.kind, {
        maxProperties: 64,
      }),
    ),
  },
  { additionalProperties: false },
)

const AddQuery = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 64 }),
    version: Type.String({ minLength: 1, maxLength: 40 }),
    options: Type.Optional(Type.String({ maxLength: 8192 })),
    /** The model's metadata (`--meta`), JSON of `ModelMeta` [EF-3.7]. */
    meta: Type.Optional(Type.String({ maxLength: 12288 })),
    parent: Type.Optional(Type.String({ maxLength: 110 })),
    runId: Type.Optional(Type.String({ maxLength: 128 })),
    /** Intake policy [EF-9.11]: `canary` starts a rollout once every profile built. */
    policy: Type.Optional(Type.Union([Type.Literal('none'), Type.Literal('canary')])),
    /** Rollout settings for the canary policy (JSON: selector, waves, soakMs, gates, …); default waves and gates otherwise. */
    rollout: Type.Optional(Type.String({ maxLength: 8192 })),
  },
  { additionalProperties: false },
)

const IntakeOut = Type.Object({
  rollout: Type.Union([Type.Object({ id: Type.String(), state: Type.String() }), Type.Null()]),
  skipped: Type.Union([Type.String(), Type.Null()]),
})

const BuildOut = Type.Object({
  id: Type.Integer(),
  profile: Type.String(),
  status: Type.String(),
  precision: Type.Union([Type.String(), Type.Null()]),
  artifact: Type.Union([Type.String(), Type.Null()]),
  sizeBytes: Type.Union([Type.Integer(), Type.Null()]),
  report: Type.Union([Type.Record(Type.String(), Type.Unknown()), Type.Null()]),
  errorCode: Type.Union([Type.String(), Type.Null()]),
  error: Type.Union([Type.String(), Type.Null()]),
})

const VersionOut = Type.Object({
  model: Type.String(),
  version: Type.String(),
  digest: Type.String(),
  size: Type.Integer(),
  inputs: Type.Array(Type.Unknown()),
  outputs: Type.Array(Type.Unknown()),
  options: Type.Record(Type.String(), Type.Unknown()),
  parent: Type.Union([Type.String(), Type.Null()]),
  runId: Type.Union([Type.String(), Type.Null()]),
  createdAt: Type.Integer(),
})

const buildOut = (build: BuildRow): Static<typeof BuildOut> => ({
  id: build.id,
  profile: build.profile,
  status: build.status,
  precision: build.precision,
  artifact: build.artifact,
  sizeBytes: build.manifest?.artifact.size ?? null,
  report: build.report,
  errorCode: build.errorCode,
  error: build.error,
})
const versionOut = (v: VersionRow): Static<typeof VersionOut> => ({ ...v })

export const modelRoutes: FastifyPluginAsync<ApiDeps> = async (app, deps) => {
  addRoute(app, deps)
  readRoutes(app, deps)
}

/** `model add`: the ONNX file in the body, its options, meta and rollout policy in the query. */
function addRoute(app: FastifyInstance, deps: ApiDeps): void {
  app.post(
    '/api/v1/models',
    {
      schema: {
        querystring: AddQuery,
        response: { 201: Type.Object({ version: VersionOut, builds: Type.Array(BuildOut), intake: IntakeOut }) },
      },
    },
    async (req, res) => {
      const query = req.query as Static<typeof AddQuery>
      if (!Buffer.isBuffer(req.body))
        throw new EdgeFleetError('EF_ERR_HTTP_BAD_REQUEST', 'send the ONNX file as application/octet-stream')
      const options = parseOptions(query)
      const rollout = parseRollout(query.rollout)
      const policy =
        query.policy === 'canary' ? { kind: 'canary' as const, rollout, actor: req.principal?.name ?? null } : undefined
      const out = await deps.registry.add({
        name: query.name,
        version: query.version,
        bytes: req.body,
        options,
        parent: query.parent,
        runId: query.runId,
        policy,
      })
      const started = out.intake.rollout
      return res.status(201).send({
        version: versionOut(out.version),
        builds: out.builds.map(buildOut),
        intake: { rollout: started ? { id: started.id, state: started.state } : null, skipped: out.intake.skipped },
      })
    },
  )
}

/** The build options (JSON in `options`) and the model's meta (`meta`), checked against their schemas. */
function parseOptions(
  query: Static<typeof AddQuery>,
): Static<typeof VersionOptionsSchema> & Pick<VersionOptions, 'meta'> {
  let options: Static<typeof VersionOptionsSchema> & Pick<VersionOptions, 'meta'> = {}
  if (query.options) {
    try {
      options = JSON.parse(query.options) as Static<typeof VersionOptionsSchema>
    } catch {
      throw new EdgeFleetError('EF_ERR_HTTP_BAD_REQUEST', 'options is not JSON')
    }
    if (!validateOptions(options))
      throw new EdgeFleetError(
        'EF_ERR_HTTP_BAD_REQUEST',
        'options: expected {inputShapes?, inputValues?, precision?, outputs?: {NAME: scores|logits|probability|regression|other}}',
      )
  }
  // Checked here against its schema, and against the model once the registry has read it [EF-3.7].
  if (query.meta !== undefined) options = { ...options, meta: parseModelMeta(query.meta) }
  return options
}

/** The canary rollout settings (JSON in `rollout`), if any. */
function parseRollout(text: string | undefined): Record<string, unknown> | undefined {
  if (!text) return undefined
  let rollout: Record<string, unknown>
  try {
    rollout = JSON.parse(text) as Record<string, unknown>
  } catch {
    throw new EdgeFleetError('EF_ERR_HTTP_BAD_REQUEST', 'rollout is not JSON')
  }
  // Bad canary gates are refused before the version is registered, not after its builds [EF-8.5].
  validateGates(rollout?.gates as Partial<Gates> | undefined)
  return rollout
}

/** The model list and one version with its builds. */
function readRoutes(app: FastifyInstance, deps: ApiDeps): void {
  app.get(
    '/api/v1/models',
    {
      schema: {
        querystring: Type.Object(
          {
            limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }),
            offset: Type.Integer({ minimum: 0, default: 0 }),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({
            items: Type.Array(
              Type.Object({ name: Type.String(), createdAt: Type.Integer(), versions: Type.Array(Type.String()) }),
            ),
            total: Type.Integer(),
          }),
        },
      },
    },
    async (req) => {
      const q = req.query as { limit: number; offset: number }
      const all = deps.store.registry.listModels()
      return { items: all.slice(q.offset, q.offset + q.limit), total: all.length }
    },
  )

  app.get(
    '/api/v1/models/:name/versions/:version',
    {
      schema: {
        params: Type.Object({ name: Type.String({ maxLength: 64 }), version: Type.String({ maxLength: 40 }) }),
        response: { 200: Type.Object({ version: VersionOut, builds: Type.Array(BuildOut) }) },
      },
    },
    async (req) => {
      const { name, version } = req.params as { name: string; version: string }
      const v = deps.registry.version(name, version)
      return { version: versionOut(v), builds: deps.store.registry.listBuilds(name, version).map(buildOut) }
    },
  )
}

const optionsCheck = TypeCompiler.Compile(VersionOptionsSchema)
function validateOptions(v: unknown): boolean {
  return optionsCheck.Check(v)
}
