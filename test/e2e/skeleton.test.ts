// The whole loop with real processes: hub (embedded aedes + SQLite) and agent
// processes on loopback; model add → deploy → every agent serves it → the
// result equals a direct onnxruntime-node run → telemetry lands in the hub DB.
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as ort from 'onnxruntime-node'
import Database from 'better-sqlite3'
import { startHub, startFleet, api, cli, waitFor, waitAllOnline, wakeInput, MODELS } from '../support/fleet.mjs'

type Agent = Awaited<ReturnType<typeof startFleet>>[number]

describe('walking skeleton: hub → agents → telemetry', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'ef-e2e-'))
  let hub: Awaited<ReturnType<typeof startHub>>
  let agents: Agent[]

  beforeAll(async () => {
    hub = await startHub({ dataDir: join(tmp, 'hub') })
    agents = await startFleet(
      hub,
      [
        { id: 'gw-1', profile: 'gateway-rpi4', tags: { site: 'north' } },
        { id: 'pc-1', profile: 'industrial-x86', tags: { site: 'north' } },
        { id: 'ecu-1', profile: 'vehicle-x86-ecu', tags: { site: 'south' } },
      ],
      { tmp },
    )
    await waitAllOnline(hub)
  })

  afterAll(async () => {
    await Promise.all((agents ?? []).map((a) => a.stop()))
    await hub?.stop()
    rmSync(tmp, { recursive: true, force: true })
  })

  it('registers a model through the CLI and builds it for every profile in the fleet', async () => {
    // fp32 so that devices must match a direct float run exactly; quantized builds are the compiler suite's business.
    const result = await cli([
      'model',
      'add',
      MODELS.wakeHello,
      '--name',
      'wake',
      '--version',
      '1.0.0',
      '--precision',
      'fp32',
      '--hub',
      hub.httpUrl,
      '--json',
    ])
    expect(result.code, result.err).toBe(0)
    const out = JSON.parse(result.out)
    expect(out.version).toMatchObject({ model: 'wake', version: '1.0.0' })
    expect(out.builds.map((b: { profile: string }) => b.profile).sort()).toEqual([
      'gateway-rpi4',
      'industrial-x86',
      'vehicle-x86-ecu',
    ])
    for (const b of out.builds) expect(b).toMatchObject({ status: 'ok', precision: 'fp32' })
  })

  it('deploys by tag and by device, and every targeted agent activates it', async () => {
    const north = await cli([
      'deploy',
      'wake@1.0.0',
      '--target',
      'tag=site=north',
      '--wait',
      '--timeout',
      '60',
      '--hub',
      hub.httpUrl,
      '--json',
    ])
    expect(north.code, north.err + north.out).toBe(0)
    const view = JSON.parse(north.out)
    expect(view.devices.map((d: { deviceId: string; state: string }) => `${d.deviceId}:${d.state}`).sort()).toEqual([
      'gw-1:activated',
      'pc-1:activated',
    ])
    const one = await cli([
      'deploy',
      'wake@1.0.0',
      '--target',
      'device=ecu-1',
      '--wait',
      '--timeout',
      '60',
      '--hub',
      hub.httpUrl,
      '--json',
    ])
    expect(one.code, one.err + one.out).toBe(0)
    for (const a of agents) {
      const models = await api(a.url, 'GET', '/v1/models')
      expect(models.items).toEqual([expect.objectContaining({ name: 'wake', version: '1.0.0', precision: 'fp32' })])
    }
    const devices = await api(hub.httpUrl, 'GET', '/api/v1/devices')
    for (const d of devices.items)
      expect(d.models).toEqual([expect.objectContaining({ name: 'wake', version: '1.0.0' })])
  })

  it('serves results equal to a direct onnxruntime-node run of the same model', async () => {
    const input = wakeInput(3)
    const session = await ort.InferenceSession.create(MODELS.wakeHello)
    const t = input['onnx::Flatten_0']
    const direct = await session.run({
      'onnx::Flatten_0': new ort.Tensor('float32', Float32Array.from(t.data), t.dims),
    })
    const want = Array.from(direct['39'].data as Float32Array)
    await session.release()
    for (const a of agents) {
      const r = await api(a.url, 'POST', '/v1/models/wake/infer', { inputs: input })
      expect(r.version).toBe('1.0.0')
      expect(r.outputs['39'].dims).toEqual([1, 1])
      r.outputs['39'].data.forEach((v: number, i: number) => expect(Math.abs(v - want[i])).toBeLessThan(1e-6))
    }
  })

  it('lands telemetry rows in the hub database with request counts and latency histograms', async () => {
    for (const a of agents)
      for (let i = 0; i < 20; i++) await api(a.url, 'POST', '/v1/models/wake/infer', { inputs: wakeInput(i) })
    const db = new Database(join(tmp, 'hub', 'hub.db'), { readonly: true })
    try {
      const rows = await waitFor(
        () => {
          const r = db
            .prepare(
              'SELECT device_id, sum(requests) AS n, sum(errors) AS e FROM telemetry WHERE model = ? GROUP BY device_id',
            )
            .all('wake') as { device_id: string; n: number; e: number }[]
          return r.length === 3 && r.every((x) => x.n >= 20) ? r : undefined
        },
        { timeoutMs: 20_000, what: 'telemetry rows' },
      )
      for (const r of rows) expect(r.e).toBe(0)
      const hist = db.prepare('SELECT latency FROM telemetry WHERE model = ? LIMIT 1').get('wake') as {
        latency: string
      }
      expect(JSON.parse(hist.latency).length).toBe(17)
    } finally {
      db.close()
    }
    const summary = await api(hub.httpUrl, 'GET', '/api/v1/telemetry/summary?model=wake')
    expect(summary.items[0]).toMatchObject({ model: 'wake', version: '1.0.0', devices: 3 })
    expect(summary.items[0].requests).toBeGreaterThanOrEqual(63)
    expect(summary.items[0].p95Ms).toBeGreaterThan(0)
  })

  it('exposes Prometheus metrics on every agent and on the hub', async () => {
    for (const a of agents) {
      const text = await (await fetch(`${a.url}/metrics`)).text()
      const m = /edgefleet_agent_requests_total\{model="wake",version="1.0.0"\} (\d+)/.exec(text)
      expect(Number(m?.[1])).toBeGreaterThanOrEqual(21)
      expect(text).toContain('edgefleet_agent_inference_seconds_bucket{model="wake",version="1.0.0",le="+Inf"}')
      expect(text).toMatch(/edgefleet_agent_connected 1/)
    }
    const hubText = await (await fetch(new URL('/metrics', hub.httpUrl))).text()
    expect(hubText).toMatch(/edgefleet_devices_online 3/)
  })

  it('pages the model and deployment lists with totals', async () => {
    const models = await api(hub.httpUrl, 'GET', '/api/v1/models?limit=1&offset=0')
    expect(models).toMatchObject({ total: 1, items: [expect.objectContaining({ name: 'wake' })] })
    expect((await api(hub.httpUrl, 'GET', '/api/v1/models?limit=1&offset=1')).items).toEqual([])
    const deps = await api(hub.httpUrl, 'GET', '/api/v1/deployments?limit=1')
    expect(deps.total).toBe(2)
    expect(deps.items).toHaveLength(1)
  })

  it('serves the console page listing devices', async () => {
    const res = await fetch(new URL('/', hub.httpUrl))
    expect(res.status).toBe(200)
    // The bundle is loaded under a content-hashed name, cached for a year.
    const script = /<script src="(\/console\.[0-9a-f]+\.js)" defer>/.exec(await res.text())?.[1]
    expect(script).toBeDefined()
    const bundle = await fetch(new URL(script ?? '', hub.httpUrl))
    expect(bundle.headers.get('cache-control')).toContain('immutable')
    // The console reads the fleet through the token-protected API [EF-8.10].
    expect(await bundle.text()).toContain('/api/v1/fleet/devices')
  })
})
