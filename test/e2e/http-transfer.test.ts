// The optional HTTP path: range requests against the hub, device-authenticated,
// used by an agent started with --transfer http; MQTT stays the default.
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createHash } from 'node:crypto'
import { startHub, startAgent, api, waitFor } from '../support/fleet.mjs'
import { matmulModel } from '../support/models.mjs'

describe('artifacts over HTTP range requests', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'ef-http-'))
  let hub: Awaited<ReturnType<typeof startHub>>
  let agent: Awaited<ReturnType<typeof startAgent>>
  let secret: string
  let artifact: string
  let size: number
  let model: Uint8Array

  beforeAll(async () => {
    hub = await startHub({ dataDir: join(tmp, 'hub') })
    secret = (await api(hub.httpUrl, 'POST', '/api/v1/devices', { id: 'web1', profile: 'industrial-x86' })).secret
    agent = await startAgent({
      mqttUrl: hub.mqttUrl,
      deviceId: 'web1',
      secret,
      hubKey: hub.publicKey,
      profile: 'industrial-x86',
      dataDir: join(tmp, 'web1'),
      extraArgs: ['--transfer', 'http'],
    })
    model = await matmulModel(3e6, 9)
    const reg = await api(
      hub.httpUrl,
      'POST',
      `/api/v1/models?name=big&version=1.0.0&options=${encodeURIComponent('{"precision":"fp32"}')}`,
      model,
    )
    artifact = reg.builds[0].artifact
    size = reg.builds[0].sizeBytes
  })

  afterAll(async () => {
    await agent?.stop()
    await hub?.stop()
    rmSync(tmp, { recursive: true, force: true })
  })

  const url = () => new URL(`/api/v1/artifacts/${artifact}`, hub.httpUrl)
  const basic = (user: string, pass: string) => `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`

  it('refuses downloads without valid device credentials', async () => {
    for (const headers of [
      {},
      { authorization: basic('web1', 'wrong') },
      { authorization: basic('nobody', secret) },
    ] as Record<string, string>[]) {
      const res = await fetch(url(), { headers })
      expect(res.status).toBe(401)
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('EF_ERR_AUTH_BAD_CREDENTIALS')
    }
  })

  it('serves byte ranges, and refuses ranges past the end', async () => {
    const first = await fetch(url(), { headers: { authorization: basic('web1', secret) } })
    const whole = Buffer.from(await first.arrayBuffer())
    expect(first.status, whole.toString().slice(0, 200)).toBe(200)
    expect(whole.length).toBe(size)
    expect(createHash('sha256').update(whole).digest('hex')).toBe(artifact)
    const res = await fetch(url(), { headers: { authorization: basic('web1', secret), range: 'bytes=100-199' } })
    expect(res.status).toBe(206)
    expect(res.headers.get('content-range')).toBe(`bytes 100-199/${size}`)
    expect(Buffer.from(await res.arrayBuffer())).toEqual(whole.subarray(100, 200))
    const bad = await fetch(url(), { headers: { authorization: basic('web1', secret), range: `bytes=${size + 10}-` } })
    expect(bad.status).toBe(416)
    expect(((await bad.json()) as { error: { code: string } }).error.code).toBe('EF_ERR_HTTP_RANGE')
  })

  it('an agent with --transfer http installs the build without chunks crossing MQTT', async () => {
    const before = (await api(hub.httpUrl, 'GET', '/api/v1/hub')).distribution
    const dep = await api(hub.httpUrl, 'POST', '/api/v1/deployments', {
      model: 'big',
      version: '1.0.0',
      target: 'device=web1',
    })
    const v = await waitFor(
      async () => {
        const x = await api(hub.httpUrl, 'GET', `/api/v1/deployments/${dep.deployment.id}`)
        return x.deployment.done ? x : undefined
      },
      { what: 'deployment' },
    )
    expect(v.devices[0].state).toBe('activated')
    const after = (await api(hub.httpUrl, 'GET', '/api/v1/hub')).distribution
    const sent = (d: { broadcastBytes: number; repairBytes: number }) => d.broadcastBytes + d.repairBytes
    expect(sent(after)).toBe(sent(before))
    const ev = (
      (await api(hub.httpUrl, 'GET', '/api/v1/devices/web1')).events as { kind: string; receivedBytes?: number }[]
    ).find((e) => e.kind === 'downloaded')
    expect(ev?.receivedBytes).toBe(size)
  })
})
