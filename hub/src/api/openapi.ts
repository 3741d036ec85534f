// OpenAPI 3.1 from the routes' own JSON schemas [EF-8.11]: every route is
// recorded as it is added, and /docs/openapi.json is generated from that list,
// so the document cannot drift from what the server validates. 3.1 because its
// schemas are plain JSON Schema 2020-12, which is what TypeBox emits
// (`type: 'null'`, unions as anyOf); hub/test/api/openapi.test.ts validates the
// document with @seriousme/openapi-schema-validator.
import type { FastifyInstance, RouteOptions } from 'fastify'
import type { Role } from '../store/index.js'
import { requiredRole } from './auth.js'
import { documentedErrors, errorResponses } from './error-docs.js'

interface Recorded {
  method: string
  url: string
  schema: Record<string, unknown>
  role: Role | 'none'
}

/** Call before any route is registered. */
export function recordRoutes(app: FastifyInstance): Recorded[] {
  const routes: Recorded[] = []
  app.addHook('onRoute', (r: RouteOptions) => {
    const methods = Array.isArray(r.method) ? r.method : [r.method]
    for (const m of methods)
      if (m !== 'HEAD')
        routes.push({
          method: m.toLowerCase(),
          url: r.url,
          schema: (r.schema ?? {}) as Record<string, unknown>,
          role: requiredRole(m, r.url, r.config?.role),
        })
  })
  return routes
}

// `::` is find-my-way's literal colon (`/api/v1/devices::batch` serves `/api/v1/devices:batch`), not a parameter.
const pathOf = (url: string) =>
  url.replace(/::|:([A-Za-z0-9_]+)/g, (_m, name: string | undefined) => (name ? `{${name}}` : ':'))

function params(schema: unknown, where: 'path' | 'query'): unknown[] {
  const props = (schema as { properties?: Record<string, unknown>; required?: string[] } | undefined)?.properties
  if (!props) return []
  const req = new Set((schema as { required?: string[] }).required ?? [])
  return Object.entries(props).map(([name, s]) => ({
    name,
    in: where,
    required: where === 'path' || req.has(name),
    schema: s,
  }))
}

function successResponses(schema: Record<string, unknown>): Record<string, unknown> {
  const declared = (schema.response as Record<string, unknown> | undefined) ?? { 200: {} }
  return Object.fromEntries(
    Object.entries(declared).map(([code, s]) => [
      code,
      code === '204'
        ? { description: 'No content' }
        : { description: `HTTP ${code}`, content: { 'application/json': { schema: s } } },
    ]),
  )
}

function operation(route: Recorded): Record<string, unknown> {
  const path = pathOf(route.url)
  const errors = documentedErrors({
    method: route.method,
    path,
    hasBody: route.schema.body !== undefined,
    role: route.role,
  })
  const op: Record<string, unknown> = {
    operationId: `${route.method}${path.replace(/[^A-Za-z0-9]+(.)?/g, (_m, c: string | undefined) => (c ?? '').toUpperCase())}`,
    parameters: [...params(route.schema.params, 'path'), ...params(route.schema.querystring, 'query')],
    responses: { ...successResponses(route.schema), ...errorResponses(errors) },
  }
  if (route.schema.body)
    op.requestBody = { required: true, content: { 'application/json': { schema: route.schema.body } } }
  if (route.role !== 'none') {
    op.security = [{ bearer: [] }]
    op['x-edgefleet-role'] = route.role
  }
  return op
}

function openApiDocument(routes: Recorded[], info: { version: string }): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {}
  for (const r of routes) {
    if (r.url.startsWith('/docs')) continue
    ;(paths[pathOf(r.url)] ??= {})[r.method] = operation(r)
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'EdgeFleet hub API',
      version: info.version,
      description:
        'Errors: {"error":{"code":"EF_ERR_…","message":"…"}} (EF-6.2); each operation lists the codes it answers with. Tokens and roles: EF-8.10.',
    },
    components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    paths,
  }
}

export function docsRoutes(app: FastifyInstance, routes: Recorded[]): void {
  let cached: Record<string, unknown> | undefined
  const doc = () => (cached ??= openApiDocument(routes, { version: '1' }))
  app.get('/docs/openapi.json', async () => doc())
  app.get('/docs', async (_req, res) => {
    const d = doc() as { paths: Record<string, Record<string, unknown>> }
    const rows = Object.entries(d.paths)
      .flatMap(([p, ops]) =>
        Object.keys(ops).map(
          (m) => `<tr><td><code>${m.toUpperCase()}</code></td><td><code>${p.replace(/</g, '&lt;')}</code></td></tr>`,
        ),
      )
      .join('')
    return res
      .type('text/html; charset=utf-8')
      .send(
        `<!doctype html><meta charset="utf-8"><title>EdgeFleet API</title><style>body{font-family:system-ui;margin:24px}td{padding:2px 12px}</style><h1>EdgeFleet hub API</h1><p>OpenAPI 3.1 document: <a href="/docs/openapi.json">/docs/openapi.json</a>. Send <code>Authorization: Bearer &lt;token&gt;</code> on /api/v1.</p><table>${rows}</table>`,
      )
  })
}
