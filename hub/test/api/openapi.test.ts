// The OpenAPI document validates as 3.1 with a real validator, every operation
// documents its 4xx answers with their EF_ERR_* codes [EF-8.11], and /metrics
// carries the latency, ingest, build and download histograms [EF-8.12].
import { Validator } from '@seriousme/openapi-schema-validator'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ERRORS, isErrorCode } from '@edgefleet/shared'
import { ROUTE_ERRORS } from '../../src/api/error-docs.js'
import { startTestHub, type TestHub } from '../fixtures/hub.js'
import { registerVersions } from '../fixtures/rollouts.js'

interface Response {
  description: string
  content?: {
    'application/json': { schema: { properties?: { error?: { properties: { code: { enum: string[] } } } } } }
  }
}
interface Doc {
  openapi: string
  paths: Record<string, Record<string, { responses: Record<string, Response>; 'x-edgefleet-role'?: string }>>
}

let testHub: TestHub
let admin: string
let doc: Doc
const call = (method: 'GET' | 'POST' | 'DELETE' | 'PUT', url: string, token?: string, payload?: unknown) =>
  testHub.hub.api.inject({
    method,
    url,
    ...(payload !== undefined ? { payload: payload as object } : {}),
    headers: token ? { authorization: `Bearer ${token}` } : {},
  })

/** The codes an operation documents for one status. */
const documented = (path: string, method: string, status: number) =>
  doc.paths[path]?.[method]?.responses[String(status)]?.content?.['application/json'].schema.properties?.error
    ?.properties.code.enum ?? []

beforeAll(async () => {
  testHub = await startTestHub({ auth: true })
  admin = testHub.hub.adminToken!
  expect((await call('POST', '/api/v1/devices', admin, { id: 'a1', profile: 'gateway-rpi4' })).statusCode).toBe(201)
  await registerVersions(testHub, 'm', ['1.0.0'])
  doc = (await call('GET', '/docs/openapi.json')).json<Doc>()
})
afterAll(() => testHub?.close())

describe('OpenAPI 3.1 [EF-8.11]', () => {
  it('validates as OpenAPI 3.1 with @seriousme/openapi-schema-validator', async () => {
    expect(doc.openapi).toBe('3.1.0')
    const validator = new Validator()
    const res = await validator.validate(structuredClone(doc) as unknown as Record<string, unknown>)
    expect(res.errors ?? []).toEqual([])
    expect(res.valid).toBe(true)
    expect(validator.version).toBe('3.1')
  })

  it('the validator is real: a 3.1 document with a broken operation fails it', async () => {
    const broken = structuredClone(doc) as unknown as { paths: Record<string, Record<string, unknown>> }
    broken.paths['/api/v1/devices'].get = { responses: { 200: { content: {} } } } // a response without description
    const res = await new Validator().validate(broken)
    expect(res.valid).toBe(false)
  })

  it('every operation documents 4xx answers; /api/v1 ones 401 with the token codes, writes 403', () => {
    let ops = 0
    for (const [path, methods] of Object.entries(doc.paths))
      for (const [method, op] of Object.entries(methods)) {
        ops++
        const fourXX = Object.keys(op.responses).filter((s) => s.startsWith('4'))
        expect(fourXX.length, `${method} ${path}`).toBeGreaterThan(0)
        for (const s of fourXX) {
          const codes = documented(path, method, Number(s))
          expect(codes.length, `${method} ${path} ${s}`).toBeGreaterThan(0)
          for (const c of codes) {
            expect(isErrorCode(c)).toBe(true)
            expect(ERRORS[c as keyof typeof ERRORS].status, `${c} under ${s}`).toBe(Number(s))
            expect(op.responses[s].description).toContain(c)
          }
        }
        if (op['x-edgefleet-role']) expect(documented(path, method, 401)).toContain('EF_ERR_AUTH_TOKEN_INVALID')
        if (op['x-edgefleet-role'] === 'operator' || op['x-edgefleet-role'] === 'admin')
          expect(documented(path, method, 403)).toContain('EF_ERR_AUTH_FORBIDDEN_ROLE')
      }
    expect(ops).toBeGreaterThan(40)
    expect(documented('/api/v1/rollouts/{id}/pause', 'post', 409)).toContain('EF_ERR_ROLLOUT_STATE')
    expect(documented('/api/v1/devices/{id}', 'get', 404)).toEqual(['EF_ERR_DEVICE_NOT_FOUND'])
  })

  it('every handler-specific entry names a route that exists (no stale documentation)', () => {
    const ops = new Set(
      Object.entries(doc.paths).flatMap(([p, m]) => Object.keys(m).map((x) => `${x.toUpperCase()} ${p}`)),
    )
    expect(Object.keys(ROUTE_ERRORS).filter((k) => !ops.has(k))).toEqual([])
  })

  it.each([
    ['GET', '/api/v1/devices/nope', 404, 'EF_ERR_DEVICE_NOT_FOUND'],
    ['GET', '/api/v1/deployments/nope', 404, 'EF_ERR_DEPLOYMENT_NOT_FOUND'],
    ['GET', '/api/v1/rollouts/nope', 404, 'EF_ERR_ROLLOUT_NOT_FOUND'],
    ['DELETE', '/api/v1/tokens/nope', 404, 'EF_ERR_TOKEN_NOT_FOUND'],
    ['GET', '/api/v1/models/nope/versions/1.0.0', 404, 'EF_ERR_MODEL_NOT_FOUND'],
  ] as const)('%s %s answers %i %s, as documented', async (method, url, status, code) => {
    const res = await call(method, url, admin)
    expect({ status: res.statusCode, code: res.json().error.code }).toEqual({ status, code })
    const path = url.replace(/nope\/versions\/1\.0\.0$/, '{name}/versions/{version}').replace(/nope$/, '{id}')
    expect(documented(path, method.toLowerCase(), status)).toContain(code)
  })
})

describe('/metrics histograms [EF-8.12]', () => {
  it('API latency by method, route template and status; build durations by profile', async () => {
    await call('GET', '/api/v1/devices/nope', admin)
    await call('GET', '/api/v1/devices/also-nope', admin)
    const body = (await call('GET', '/metrics')).body
    expect(body).toMatch(/^# TYPE edgefleet_api_request_duration_seconds histogram$/m)
    // Two requests to one template are one series (no raw URLs in labels).
    const count =
      /^edgefleet_api_request_duration_seconds_count\{method="GET",route="\/api\/v1\/devices\/:id",status="404"\} (\d+)$/m.exec(
        body,
      )
    expect(Number(count?.[1])).toBeGreaterThanOrEqual(2)
    expect(body).toMatch(
      /^edgefleet_api_request_duration_seconds_bucket\{method="GET",route="\/api\/v1\/devices\/:id",status="404",le="\+Inf"\} \d+$/m,
    )
    expect(body).not.toMatch(/also-nope/)
    // registerVersions built m@1.0.0 for the fleet's one profile.
    expect(body).toMatch(/^edgefleet_build_duration_seconds_count\{profile="gateway-rpi4",outcome="ok"\} 1$/m)
    expect(body).toMatch(/^# TYPE edgefleet_ingest_transaction_duration_seconds histogram$/m)
    expect(body).toMatch(/^# TYPE edgefleet_download_received_bytes histogram$/m)
    expect(body).toMatch(/^edgefleet_distribution_bytes_total\{kind="broadcast"\} \d+$/m)
  })

  it('buckets are cumulative and end at _count', async () => {
    const body = (await call('GET', '/metrics')).body
    const re =
      /^edgefleet_api_request_duration_seconds_bucket\{method="GET",route="\/api\/v1\/devices\/:id",status="404",le="([^"]+)"\} (\d+)$/gm
    const values = [...body.matchAll(re)].map((m) => Number(m[2]))
    expect(values.length).toBeGreaterThan(5)
    for (let i = 1; i < values.length; i++) expect(values[i]).toBeGreaterThanOrEqual(values[i - 1])
    const count =
      /^edgefleet_api_request_duration_seconds_count\{method="GET",route="\/api\/v1\/devices\/:id",status="404"\} (\d+)$/m.exec(
        body,
      )
    expect(values.at(-1)).toBe(Number(count?.[1]))
  })
})
