// API tokens [EF-8.10]: admins create (the plaintext is answered once, with an
// optional lifetime), list (with each token's expiry) and revoke.
import type { FastifyPluginAsync } from 'fastify'
import { Type, type Static } from '@sinclair/typebox'
import { EdgeFleetError } from '@edgefleet/shared'
import type { ApiDeps } from '../server.js'
import { issueToken } from '../auth.js'

const Role = Type.Union([Type.Literal('viewer'), Type.Literal('operator'), Type.Literal('admin')])
const TokenOut = Type.Object({
  id: Type.String(),
  name: Type.String(),
  role: Role,
  createdAt: Type.Integer(),
  lastUsedAt: Type.Union([Type.Integer(), Type.Null()]),
  revokedAt: Type.Union([Type.Integer(), Type.Null()]),
  expiresAt: Type.Union([Type.Integer(), Type.Null()]),
})
/** Longest token lifetime: ten years (an unbounded token omits the field). */
const MAX_TOKEN_LIFETIME_S = 10 * 366 * 24 * 3600
const Body = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 64 }),
    role: Role,
    /** Lifetime in seconds from now; without it the token never expires. */
    expiresInSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_TOKEN_LIFETIME_S })),
  },
  { additionalProperties: false },
)

/** The token itself is returned once, here; the store keeps only its hash. */
const IssuedToken = Type.Object({
  id: Type.String(),
  name: Type.String(),
  role: Role,
  token: Type.String(),
  expiresAt: Type.Union([Type.Integer(), Type.Null()]),
})

const ListQuery = Type.Object(
  {
    limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }),
    offset: Type.Integer({ minimum: 0, default: 0 }),
  },
  { additionalProperties: false },
)

export const tokenRoutes: FastifyPluginAsync<ApiDeps> = async (app, deps) => {
  const admin = { role: 'admin' as const }
  app.post(
    '/api/v1/tokens',
    {
      config: admin,
      schema: {
        body: Body,
        response: {
          201: IssuedToken,
        },
      },
    },
    async (req, res) => {
      const b = req.body as Static<typeof Body>
      const now = deps.now()
      const expiresAt = b.expiresInSeconds === undefined ? null : now + b.expiresInSeconds * 1000
      const { id, token } = issueToken(deps.store, b.name, b.role, now, expiresAt)
      return res.status(201).send({ id, name: b.name, role: b.role, token, expiresAt })
    },
  )
  app.get(
    '/api/v1/tokens',
    {
      config: admin,
      schema: {
        querystring: ListQuery,
        response: { 200: Type.Object({ items: Type.Array(TokenOut), total: Type.Integer() }) },
      },
    },
    async (req) => {
      const q = req.query as { limit: number; offset: number }
      return { items: deps.store.tokens.list(q.limit, q.offset), total: deps.store.tokens.count() }
    },
  )
  app.delete(
    '/api/v1/tokens/:id',
    {
      config: admin,
      schema: { params: Type.Object({ id: Type.String({ maxLength: 64 }) }), response: { 204: Type.Null() } },
    },
    async (req, res) => {
      if (!deps.store.tokens.revoke((req.params as { id: string }).id, deps.now()))
        throw new EdgeFleetError('EF_ERR_TOKEN_NOT_FOUND', (req.params as { id: string }).id)
      return res.status(204).send()
    },
  )
  /** Who am I: the console shows the role and hides buttons it may not use. */
  app.get(
    '/api/v1/whoami',
    { schema: { response: { 200: Type.Object({ name: Type.String(), role: Role }) } } },
    async (req) => ({ name: req.principal?.name ?? 'anonymous', role: req.principal?.role ?? 'viewer' }),
  )
}
