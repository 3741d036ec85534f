// The hub's HTTP API through fastify's inject() on a real in-process hub:
// every invalid request gets its status and {error:{code,message}} [EF-6.2];
// the happy paths provision a device and build a signed manifest.
import { readFileSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { LightMyRequestResponse } from 'fastify'
import { ERRORS, manifestCodec, publicKeyFromText, sha256Hex, verifyDocument, type ErrorCode } from '@edgefleet/shared'
import { MODELS, startTestHub, type TestHub } from '../fixtures/hub.js'

function expectError(res: LightMyRequestResponse, status: number, code: ErrorCode): void {
  const body = res.json<{ error?: { code?: string; message?: string } }>()
  expect({ status: res.statusCode, code: body.error?.code }).toEqual({ status, code })
  expect(ERRORS[code].status).toBe(status)
  expect(typeof body.error?.message).toBe('string')
  expect(body.error!.message!.length).toBeGreaterThan(0)
  expect(Object.keys(body)).toEqual(['error'])
}

const hello = readFileSync(MODELS.hello)

describe('hub HTTP API', () => {
  let testHub: TestHub
  beforeAll(async () => {
    testHub = await startTestHub()
  })
  afterAll(async () => {
    await testHub?.close()
  })

  const post = (url: string, payload: unknown) =>
    testHub.hub.api.inject({ method: 'POST', url, payload: payload as object })
  const addModel = (q: Record<string, string>, body: Buffer) =>
    testHub.hub.api.inject({
      method: 'POST',
      url: `/api/v1/models?${new URLSearchParams(q)}`,
      payload: body,
      headers: { 'content-type': 'application/octet-stream' },
    })

  describe('POST /api/v1/devices', () => {
    it('provisions a device: secret and hub public key', async () => {
      const res = await post('/api/v1/devices', { id: 'rpi-1', profile: 'gateway-rpi4', tags: { site: 'north' } })
      expect(res.statusCode).toBe(201)
      const body = res.json<{
        id: string
        secret: string
        hubPublicKey: string
        mqttUrl: string
        tags: Record<string, string>
      }>()
      expect(body.id).toBe('rpi-1')
      expect(body.tags).toEqual({ site: 'north' })
      expect(body.secret).toMatch(/^[A-Za-z0-9_-]{43}$/)
      expect(body.hubPublicKey).toBe(testHub.hub.keys.publicKey)
      expect(() => publicKeyFromText(body.hubPublicKey)).not.toThrow()
      expect(body.mqttUrl).toBe(testHub.hub.mqttUrl)
      // Only the secret's sha256 is stored [EF-1.3.1].
      expect(testHub.hub.store.devices.secretHash('rpi-1')).toBe(sha256Hex(body.secret))
      const list = await testHub.hub.api.inject({ method: 'GET', url: '/api/v1/devices' })
      expect(
        list.json<{ items: { id: string; online: boolean }[]; total: number }>().items.map((d) => [d.id, d.online]),
      ).toEqual([['rpi-1', false]])
    })

    it('empty body → 400 EF_ERR_HTTP_BAD_REQUEST', async () => {
      expectError(await post('/api/v1/devices', {}), 400, 'EF_ERR_HTTP_BAD_REQUEST')
    })

    it('malformed JSON → 400 EF_ERR_HTTP_BAD_REQUEST', async () => {
      const res = await testHub.hub.api.inject({
        method: 'POST',
        url: '/api/v1/devices',
        payload: '{"id": "x", ',
        headers: { 'content-type': 'application/json' },
      })
      expectError(res, 400, 'EF_ERR_HTTP_BAD_REQUEST')
    })

    it('unknown member → 400 EF_ERR_HTTP_BAD_REQUEST', async () => {
      expectError(
        await post('/api/v1/devices', { id: 'x1', profile: 'gateway-rpi4', admin: true }),
        400,
        'EF_ERR_HTTP_BAD_REQUEST',
      )
    })

    it.each(['a/b', '+', '#', '.hidden', 'with space', 'ünï'])(
      'bad id %j → 400 EF_ERR_DEVICE_ID_INVALID',
      async (id) => {
        expectError(await post('/api/v1/devices', { id, profile: 'gateway-rpi4' }), 400, 'EF_ERR_DEVICE_ID_INVALID')
      },
    )

    it('unknown profile → 400 EF_ERR_PROFILE_UNKNOWN', async () => {
      expectError(await post('/api/v1/devices', { id: 'x2', profile: 'toaster-9000' }), 400, 'EF_ERR_PROFILE_UNKNOWN')
      expect(testHub.hub.store.devices.get('x2')).toBeUndefined()
    })

    it('duplicate id → 409 EF_ERR_DEVICE_EXISTS and the first secret stays valid', async () => {
      const before = testHub.hub.store.devices.secretHash('rpi-1')
      expectError(
        await post('/api/v1/devices', { id: 'rpi-1', profile: 'industrial-x86' }),
        409,
        'EF_ERR_DEVICE_EXISTS',
      )
      expect(testHub.hub.store.devices.secretHash('rpi-1')).toBe(before)
      expect(testHub.hub.store.devices.get('rpi-1')!.profile).toBe('gateway-rpi4')
    })

    it('body over the limit → 413 EF_ERR_MSG_TOO_LARGE', async () => {
      const res = await testHub.hub.api.inject({
        method: 'POST',
        url: '/api/v1/devices',
        payload: JSON.stringify({ id: 'x'.repeat(2 * 1024 * 1024) }),
        headers: { 'content-type': 'application/json' },
      })
      expectError(res, 413, 'EF_ERR_MSG_TOO_LARGE')
    })

    it('unknown device → 404 EF_ERR_DEVICE_NOT_FOUND', async () => {
      expectError(
        await testHub.hub.api.inject({ method: 'GET', url: '/api/v1/devices/ghost' }),
        404,
        'EF_ERR_DEVICE_NOT_FOUND',
      )
    })
  })

  describe('POST /api/v1/models', () => {
    it('registers hello_deepa and builds it for the fleet: an ok fp32 build with a verifying manifest', async () => {
      const res = await addModel(
        { name: 'wake', version: '1.0', options: JSON.stringify({ precision: 'fp32' }) },
        hello,
      )
      expect(res.statusCode, res.body).toBe(201)
      const body = res.json<{
        version: { digest: string; size: number; inputs: { name: string }[] }
        builds: { profile: string; status: string; precision: string; artifact: string }[]
      }>()
      expect(body.version.digest).toBe(sha256Hex(hello))
      expect(body.version.size).toBe(hello.length)
      expect(body.version.inputs.map((i) => i.name)).toEqual(['onnx::Flatten_0'])
      expect(body.builds).toHaveLength(1)
      expect(body.builds[0]).toMatchObject({ profile: 'gateway-rpi4', status: 'ok', precision: 'fp32' })

      const build = testHub.hub.store.registry.getBuild('wake', '1.0', 'gateway-rpi4')!
      expect(build.manifest).not.toBeNull()
      const manifest = manifestCodec.check(build.manifest)
      const key = publicKeyFromText(testHub.hub.keys.publicKey)
      expect(verifyDocument(manifest, build.manifestSig!, key)).toBe(true)
      // The signature covers every member: a tampered manifest no longer verifies.
      expect(verifyDocument({ ...manifest, profile: 'industrial-x86' }, build.manifestSig!, key)).toBe(false)
      expect(manifest).toMatchObject({ model: 'wake', version: '1.0', profile: 'gateway-rpi4', precision: 'fp32' })
      expect(Object.keys(manifest.healthCheck.inputs)).toEqual(['onnx::Flatten_0'])
      expect(Object.keys(manifest.healthCheck.outputs)).toEqual(['39'])
      expect(manifest.healthCheck.inputs['onnx::Flatten_0'].dims).toEqual([1, 25, 96])
      // The artifact is stored, addressed by its sha256, and the chunk list adds up.
      const artifact = testHub.hub.store.registry.getArtifact(manifest.artifact.digest)!
      expect(artifact.size).toBe(manifest.artifact.size)
      expect(manifest.artifact.chunks.reduce((a, c) => a + c.size, 0)).toBe(manifest.artifact.size)
      expect(build.artifact).toBe(manifest.artifact.digest)
    })

    it('non-ONNX bytes → 400 EF_ERR_MODEL_INVALID and nothing registered', async () => {
      expectError(
        await addModel({ name: 'junk', version: '1' }, Buffer.from('this is not an onnx model at all')),
        400,
        'EF_ERR_MODEL_INVALID',
      )
      expect(testHub.hub.store.registry.getVersion('junk', '1')).toBeUndefined()
    })

    it.each(['v1', '1.', '1.2.3.4.5', '-1', 'latest'])(
      'bad version %j → 400 EF_ERR_VERSION_INVALID',
      async (version) => {
        expectError(await addModel({ name: 'wake', version }, hello), 400, 'EF_ERR_VERSION_INVALID')
      },
    )

    it('bad name → 400 EF_ERR_NAME_INVALID', async () => {
      expectError(await addModel({ name: 'a/b', version: '1' }, hello), 400, 'EF_ERR_NAME_INVALID')
    })

    it('duplicate version (also one that compares equal is not re-registered) → 409 EF_ERR_VERSION_EXISTS', async () => {
      expectError(await addModel({ name: 'wake', version: '1.0' }, hello), 409, 'EF_ERR_VERSION_EXISTS')
    })

    it('options that are not JSON → 400 EF_ERR_HTTP_BAD_REQUEST', async () => {
      expectError(
        await addModel({ name: 'wake', version: '2', options: '{precision:' }, hello),
        400,
        'EF_ERR_HTTP_BAD_REQUEST',
      )
    })

    it('options of the wrong shape → 400 EF_ERR_HTTP_BAD_REQUEST', async () => {
      expectError(
        await addModel({ name: 'wake', version: '2', options: JSON.stringify({ precision: 'int4' }) }, hello),
        400,
        'EF_ERR_HTTP_BAD_REQUEST',
      )
      expectError(
        await addModel({ name: 'wake', version: '2', options: JSON.stringify({ turbo: true }) }, hello),
        400,
        'EF_ERR_HTTP_BAD_REQUEST',
      )
      expect(testHub.hub.store.registry.getVersion('wake', '2')).toBeUndefined()
    })

    it('a JSON body instead of octet-stream → 400 EF_ERR_HTTP_BAD_REQUEST', async () => {
      expectError(
        await post('/api/v1/models?name=wake&version=3', { model: 'base64?' }),
        400,
        'EF_ERR_HTTP_BAD_REQUEST',
      )
    })

    it('missing query parameters → 400 EF_ERR_HTTP_BAD_REQUEST', async () => {
      expectError(await addModel({ name: 'wake' }, hello), 400, 'EF_ERR_HTTP_BAD_REQUEST')
    })

    it('unknown version → 404 EF_ERR_MODEL_NOT_FOUND', async () => {
      expectError(
        await testHub.hub.api.inject({ method: 'GET', url: '/api/v1/models/wake/versions/9' }),
        404,
        'EF_ERR_MODEL_NOT_FOUND',
      )
      const ok = await testHub.hub.api.inject({ method: 'GET', url: '/api/v1/models/wake/versions/1.0' })
      expect(ok.statusCode).toBe(200)
    })
  })

  describe('POST /api/v1/deployments', () => {
    it.each(['profile', 'group=x', 'tag=site', 'device=a/b'])(
      'bad target %j → 400 EF_ERR_TARGET_INVALID',
      async (target) => {
        expectError(
          await post('/api/v1/deployments', { model: 'wake', version: '1.0', target }),
          400,
          'EF_ERR_TARGET_INVALID',
        )
      },
    )

    it('unknown model → 404 EF_ERR_MODEL_NOT_FOUND', async () => {
      expectError(
        await post('/api/v1/deployments', { model: 'nope', version: '1', target: 'profile=gateway-rpi4' }),
        404,
        'EF_ERR_MODEL_NOT_FOUND',
      )
      expectError(
        await post('/api/v1/deployments', { model: 'wake', version: '7', target: 'profile=gateway-rpi4' }),
        404,
        'EF_ERR_MODEL_NOT_FOUND',
      )
    })

    it('no matching devices → 409 EF_ERR_TARGET_EMPTY and no deployment recorded', async () => {
      for (const target of ['profile=industrial-x86', 'tag=site=south', 'device=ghost']) {
        expectError(
          await post('/api/v1/deployments', { model: 'wake', version: '1.0', target }),
          409,
          'EF_ERR_TARGET_EMPTY',
        )
      }
      expect(testHub.hub.store.deployments.list()).toEqual([])
    })

    it('schema violations → 400 EF_ERR_HTTP_BAD_REQUEST', async () => {
      expectError(await post('/api/v1/deployments', { model: 'wake', version: '1.0' }), 400, 'EF_ERR_HTTP_BAD_REQUEST')
      expectError(
        await post('/api/v1/deployments', {
          model: 'wake',
          version: '1.0',
          target: 'profile=gateway-rpi4',
          rollback: 'yes please',
        }),
        400,
        'EF_ERR_HTTP_BAD_REQUEST',
      )
    })

    it('unknown deployment → 404 EF_ERR_DEPLOYMENT_NOT_FOUND', async () => {
      expectError(
        await testHub.hub.api.inject({ method: 'GET', url: '/api/v1/deployments/no-such-id' }),
        404,
        'EF_ERR_DEPLOYMENT_NOT_FOUND',
      )
    })
  })

  it.each([
    ['GET', '/api/v1/nothing'],
    ['DELETE', '/api/v1/devices'],
    ['GET', '/api/v2/devices'],
  ] as const)('%s %s → 404 EF_ERR_HTTP_NOT_FOUND', async (method, url) => {
    expectError(await testHub.hub.api.inject({ method, url }), 404, 'EF_ERR_HTTP_NOT_FOUND')
  })

  it('still healthy after every bad request', async () => {
    const res = await testHub.hub.api.inject({ method: 'GET', url: '/healthz' })
    expect(res.statusCode).toBe(200)
    // The only replica (no --cluster) always leads, in term 0 [EF-12.5].
    expect(res.json()).toEqual({
      ok: true,
      devices: 1,
      mqttUrl: testHub.hub.mqttUrl,
      leader: true,
      term: 0,
      replica: testHub.hub.leadership.replicaId,
    })
  })
})
