// API tokens and roles [EF-8.10], rollout validation codes [EF-8.2-8.5],
// OpenAPI at /docs [EF-8.11] and /metrics [EF-8.12], on an in-process hub
// with tokens on.
import { readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestHub, type TestHub } from '../fixtures/hub.js'
import { registerVersions } from '../fixtures/rollouts.js'

let testHub: TestHub
let admin: string
const tokens: Record<string, string> = {}
const call = (method: 'GET' | 'POST' | 'DELETE', url: string, token?: string, payload?: unknown) =>
  testHub.hub.api.inject({
    method,
    url,
    ...(payload !== undefined ? { payload: payload as object } : {}),
    headers: token ? { authorization: `Bearer ${token}` } : {},
  })

beforeAll(async () => {
  testHub = await startTestHub({ auth: true })
  admin = testHub.hub.adminToken!
  for (const role of ['viewer', 'operator'] as const) {
    const res = await call('POST', '/api/v1/tokens', admin, { name: `${role}-1`, role })
    expect(res.statusCode).toBe(201)
    tokens[role] = res.json<{ token: string }>().token
  }
  expect(
    (
      await call('POST', '/api/v1/devices', admin, {
        id: 'a1',
        profile: 'gateway-rpi4',
        tags: { fleet: 'x', region: 'eu' },
      })
    ).statusCode,
  ).toBe(201)
  await registerVersions(testHub, 'm', ['1.0.0', '2.0.0'])
})
afterAll(() => testHub?.close())

describe('API tokens', () => {
  it('the first start writes one admin token to <dataDir>/admin-token, mode 0600, stored hashed', () => {
    const file = join(testHub.dir, 'admin-token')
    expect(readFileSync(file, 'utf8').trim()).toBe(admin)
    expect(statSync(file).mode & 0o777).toBe(0o600)
    const row = testHub.hub.store.db.prepare('SELECT token_hash FROM api_tokens WHERE role = ?').get('admin') as {
      token_hash: string
    }
    expect(row.token_hash).not.toContain(admin)
  })

  it('no token or an unknown one is 401 EF_ERR_AUTH_TOKEN_INVALID; /healthz, /docs and /metrics stay open', async () => {
    for (const tok of [undefined, 'ef_nope']) {
      const res = await call('GET', '/api/v1/devices', tok)
      expect(res.statusCode).toBe(401)
      expect(res.json()).toEqual({ error: { code: 'EF_ERR_AUTH_TOKEN_INVALID', message: expect.any(String) } })
    }
    for (const url of ['/healthz', '/docs', '/docs/openapi.json', '/metrics'])
      expect((await call('GET', url)).statusCode).toBe(200)
  })

  it('a viewer reads but cannot create a rollout (403 EF_ERR_AUTH_FORBIDDEN_ROLE); an operator can, and cannot provision', async () => {
    expect((await call('GET', '/api/v1/rollouts', tokens.viewer)).statusCode).toBe(200)
    const body = {
      model: 'm',
      version: '2.0.0',
      selector: 'tag=fleet=x',
      waves: [{ percent: 100 }],
      schedule: { maintenanceWindows: false },
    }
    const denied = await call('POST', '/api/v1/rollouts', tokens.viewer, body)
    expect(denied.statusCode).toBe(403)
    expect(denied.json().error.code).toBe('EF_ERR_AUTH_FORBIDDEN_ROLE')
    expect(testHub.hub.store.rollouts.count()).toBe(0)
    const ok = await call('POST', '/api/v1/rollouts', tokens.operator, body)
    expect(ok.statusCode).toBe(201)
    expect(ok.json().rollout).toMatchObject({
      state: 'running',
      createdBy: 'operator-1',
      selectorText: 'tag=fleet=x',
      devices: 1,
    })
    expect(
      (await call('POST', '/api/v1/devices', tokens.operator, { id: 'a2', profile: 'gateway-rpi4' })).json().error.code,
    ).toBe('EF_ERR_AUTH_FORBIDDEN_ROLE')
    expect((await call('POST', '/api/v1/tokens', tokens.operator, { name: 'x', role: 'admin' })).statusCode).toBe(403)
  })

  it('checks the token before parsing the body: a malformed request without a token is 401, not 400', async () => {
    const res = await testHub.hub.api.inject({
      method: 'POST',
      url: '/api/v1/deployments',
      payload: '{"model":',
      headers: { 'content-type': 'application/json' },
    })
    expect(res.statusCode).toBe(401)
    const art = await call('GET', `/api/v1/artifacts/${'0'.repeat(64)}`)
    expect(art.json().error.code).toBe('EF_ERR_AUTH_BAD_CREDENTIALS') // devices use HTTP Basic there [EF-4.10]
  })

  it('a revoked token stops working', async () => {
    const res = await call('POST', '/api/v1/tokens', admin, { name: 'temp', role: 'viewer' })
    const { id, token } = res.json<{ id: string; token: string }>()
    expect((await call('GET', '/api/v1/whoami', token)).json()).toEqual({ name: 'temp', role: 'viewer' })
    expect((await call('DELETE', `/api/v1/tokens/${id}`, admin)).statusCode).toBe(204)
    expect((await call('GET', '/api/v1/whoami', token)).statusCode).toBe(401)
    expect((await call('DELETE', `/api/v1/tokens/${id}`, admin)).json().error.code).toBe('EF_ERR_TOKEN_NOT_FOUND')
  })
})

describe('rollout validation', () => {
  const base = { model: 'm', version: '2.0.0', selector: 'tag=fleet=x' }
  it.each([
    [{ selector: 'tag=fleet' }, 'EF_ERR_SELECTOR_INVALID'],
    [{ selector: 'colour=red' }, 'EF_ERR_SELECTOR_INVALID'],
    [{ selector: 'profile=a and (region=eu' }, 'EF_ERR_SELECTOR_INVALID'],
    [{ selector: { and: [] } }, 'EF_ERR_SELECTOR_INVALID'],
    [{ selector: { profile: 'a', tag: 'b=c' } }, 'EF_ERR_SELECTOR_INVALID'],
    [{ selector: { devices: ['../etc'] } }, 'EF_ERR_SELECTOR_INVALID'],
    [{ waves: [] }, 'EF_ERR_WAVES_INVALID'],
    [{ waves: [{ percent: 50 }, { percent: 10 }, { percent: 100 }] }, 'EF_ERR_WAVES_INVALID'],
    [{ waves: [{ percent: 10 }, { percent: 50 }] }, 'EF_ERR_WAVES_INVALID'],
    [{ waves: [{ percent: 150 }] }, 'EF_ERR_WAVES_INVALID'],
    [{ waves: [{ percent: 10, count: 3 }, { percent: 100 }] }, 'EF_ERR_WAVES_INVALID'],
    [{ waves: [{ count: 2.5 }, { percent: 100 }] }, 'EF_ERR_WAVES_INVALID'],
    [{ gates: { maxP95Ratio: 0.5 } }, 'EF_ERR_GATES_INVALID'],
    [{ gates: { minShadowAgreement: 2 } }, 'EF_ERR_GATES_INVALID'],
    [{ schedule: { start: 'every day' } }, 'EF_ERR_SCHEDULE_INVALID'],
    [{ schedule: { start: '0 1 * * *', timezone: 'Mars/Base' } }, 'EF_ERR_SCHEDULE_INVALID'],
    [{ schedule: { conditions: ['sunny'] } }, 'EF_ERR_SCHEDULE_INVALID'],
    [{ selector: 'tag=fleet=nobody' }, 'EF_ERR_TARGET_EMPTY'],
    [{ version: '9.9.9' }, 'EF_ERR_MODEL_NOT_FOUND'],
    [{ onFail: 'explode' }, 'EF_ERR_HTTP_BAD_REQUEST'],
  ])('%j → %s', async (patch, code) => {
    const res = await call('POST', '/api/v1/rollouts', admin, { ...base, ...patch })
    expect(res.json().error.code).toBe(code)
  })

  it('selectors combine profile, tags, region and ids with and/or/not', async () => {
    const { parseSelector, matches, selectorText } = await import('../../src/rollouts/selector.js')
    const s = parseSelector('profile=gateway-rpi4 and (region=eu or tag=ring=canary) and not devices=a3,a4')
    const dev = (id: string, tags: Record<string, string>) => ({ id, profile: 'gateway-rpi4', tags })
    expect(matches(s, dev('a1', { region: 'eu' }))).toBe(true)
    expect(matches(s, dev('a2', { ring: 'canary' }))).toBe(true)
    expect(matches(s, dev('a3', { region: 'eu' }))).toBe(false)
    expect(matches(s, dev('a5', { region: 'us' }))).toBe(false)
    expect(parseSelector(selectorText(s))).toEqual(s)
  })

  it('rollout actions answer EF_ERR_ROLLOUT_NOT_FOUND / EF_ERR_ROLLOUT_STATE', async () => {
    expect((await call('POST', '/api/v1/rollouts/nope/pause', admin)).json().error.code).toBe(
      'EF_ERR_ROLLOUT_NOT_FOUND',
    )
    const id = (await call('GET', '/api/v1/rollouts', admin)).json().items[0].id
    expect((await call('POST', `/api/v1/rollouts/${id}/approve`, admin)).json().error.code).toBe('EF_ERR_ROLLOUT_STATE')
    expect((await call('POST', `/api/v1/rollouts/${id}/pause`, tokens.viewer)).statusCode).toBe(403)
    const paused = await call('POST', `/api/v1/rollouts/${id}/pause`, tokens.operator)
    expect(paused.json().rollout.state).toBe('paused')
    const list = await call('GET', '/api/v1/rollouts?limit=1&offset=0&state=paused', tokens.viewer)
    expect(list.json()).toMatchObject({ total: 1, items: [{ id }] })
    const devs = await call('GET', `/api/v1/rollouts/${id}/devices?limit=10`, tokens.viewer)
    expect(devs.json()).toMatchObject({ total: 1, items: [{ deviceId: 'a1' }] })
  })
})

describe('docs and metrics', () => {
  it('serves an OpenAPI 3 document built from the route schemas', async () => {
    const doc = (await call('GET', '/docs/openapi.json')).json<{
      openapi: string
      paths: Record<string, Record<string, { requestBody?: unknown; responses: Record<string, unknown> }>>
    }>()
    expect(doc.openapi).toBe('3.1.0')
    expect(doc.paths['/api/v1/rollouts'].post.requestBody).toBeDefined()
    expect(Object.keys(doc.paths['/api/v1/rollouts/{id}'].get.responses)).toContain('200')
    expect(doc.paths['/api/v1/devices'].get).toBeDefined()
  })

  it('/metrics speaks the Prometheus text format', async () => {
    const res = await call('GET', '/metrics')
    expect(res.headers['content-type']).toMatch(/^text\/plain; version=0.0.4/)
    const body = res.body
    for (const name of [
      'edgefleet_devices_online',
      'edgefleet_deployment_devices',
      'edgefleet_telemetry_batches_total',
      'edgefleet_broker_clients',
      'edgefleet_rollouts',
      'edgefleet_mqtt_messages_in_total',
      'edgefleet_ingest_failed_transactions_total',
      'edgefleet_ingest_queued',
    ])
      expect(body).toMatch(new RegExp(`^# TYPE ${name} (gauge|counter)$`, 'm'))
    expect(body).toMatch(/^edgefleet_broker_clients \d+$/m)
    expect(body).toMatch(/^edgefleet_rollouts\{state="paused"\} 1$/m)
  })
})
