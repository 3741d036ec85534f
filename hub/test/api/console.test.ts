// The console's assets and the read endpoints it plots from.
import { createHash } from 'node:crypto'
import { Script } from 'node:vm'
import { gzipSync } from 'node:zlib'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { provision, startTestHub, type TestHub } from '../fixtures/hub.js'

let testHub: TestHub
beforeAll(async () => {
  testHub = await startTestHub()
  for (let i = 0; i < 5; i++)
    await provision(testHub.hub, `c${i}`, i % 2 ? 'gateway-rpi4' : 'industrial-x86', {
      site: i < 3 ? 'north' : 'south',
    })
  const now = Date.now()
  testHub.hub.store.devices.setState(
    'c0',
    {
      v: 1,
      deviceId: 'c0',
      online: true,
      ts: now,
      profile: 'industrial-x86',
      models: [{ name: 'm', version: '1.0.0', precision: 'fp32', artifact: 'a'.repeat(64), slot: 'a' }],
    },
    now,
  )
  const lat = (i: number) => Object.assign(new Array(17).fill(0), { [i]: 10 })
  for (let round = 0; round < 3; round++)
    testHub.hub.store.telemetry.ingest(
      {
        v: 1,
        deviceId: 'c0',
        batchId: `batch-${round}-xxxx`,
        from: now - 60_000 + round * 10_000,
        to: now - 50_000 + round * 10_000,
        models: [
          {
            model: 'm',
            version: '1.0.0',
            requests: 10,
            errors: round,
            latency: lat(4 + round),
            latencySumMs: 10,
            confidence: Object.assign(new Array(10).fill(0), { 9: 10 }),
          },
        ],
      },
      now,
    )
})
afterAll(() => testHub?.close())

describe('console', () => {
  it('serves the page and the bundled script under its content hash, cached for good, and the script parses', async () => {
    const page = await testHub.hub.api.inject({ method: 'GET', url: '/' })
    expect(page.headers['content-type']).toMatch(/text\/html/)
    expect(page.headers['cache-control']).toBe('no-cache')
    const src = /<script src="(\/console\.([0-9a-f]{16})\.js)" defer><\/script>/.exec(page.body)
    expect(src).not.toBeNull()
    const js = await testHub.hub.api.inject({ method: 'GET', url: src![1] })
    expect(js.statusCode).toBe(200)
    expect(js.headers['content-type']).toMatch(/javascript/)
    expect(js.headers['cache-control']).toBe('public, max-age=31536000, immutable')
    expect(createHash('sha256').update(js.body).digest('hex').slice(0, 16)).toBe(src![2])
    expect(js.body).not.toContain('The console is not built') // the real bundle, built by pnpm build
    expect(() => new Script(js.body)).not.toThrow() // compiles it (a syntax check) without running it
    // Small: Preact and the views, minified; docs/CONSOLE.md states the size.
    expect(gzipSync(js.body).length).toBeLessThan(32 * 1024)
    const alias = await testHub.hub.api.inject({ method: 'GET', url: '/console.js' })
    expect(alias.body).toBe(js.body)
    expect(alias.headers['cache-control']).toBe('no-cache')
    // What the page tells the script: final deployment states, the failed ones, the gates' defaults.
    const meta = /<meta name="edgefleet-config" content="([^"]*)">/.exec(page.body)
    const config = JSON.parse(
      meta![1]
        .replace(/&quot;/g, '"')
        .replace(/&lt;/g, '<')
        .replace(/&amp;/g, '&'),
    )
    expect(config.deployFailed).toEqual(['rejected', 'health_failed', 'failed', 'rolled_back'])
    expect(config.deployDone).toEqual(expect.arrayContaining(['activated', ...config.deployFailed]))
    expect(config.gates.map((g: { name: string }) => g.name)).toContain('maxP95Ratio')
  })

  it('summarises the fleet in SQL: by profile and online state, by model version', async () => {
    const s = (await testHub.hub.api.inject({ method: 'GET', url: '/api/v1/fleet/summary' })).json()
    expect(s).toEqual({
      total: 5,
      online: 1,
      byProfile: [
        { profile: 'gateway-rpi4', online: 0, offline: 2 },
        { profile: 'industrial-x86', online: 1, offline: 2 },
      ],
      byVersion: [{ model: 'm', version: '1.0.0', devices: 1 }],
    })
  })

  it('pages and filters devices', async () => {
    const r = (
      await testHub.hub.api.inject({ method: 'GET', url: '/api/v1/fleet/devices?limit=2&offset=0&q=south' })
    ).json()
    expect(r.total).toBe(2)
    expect(r.items.map((d: { id: string }) => d.id)).toEqual(['c3', 'c4'])
  })

  it('returns telemetry as a time series per version with percentiles, error counts and confidence bins', async () => {
    const r = (
      await testHub.hub.api.inject({ method: 'GET', url: '/api/v1/telemetry/series?model=m&bucketMs=10000&sinceMs=0' })
    ).json()
    expect(r.items).toHaveLength(3)
    expect(r.items.map((p: { errors: number }) => p.errors)).toEqual([0, 1, 2])
    expect(r.items[0].confidence[9]).toBe(10)
    expect(r.items[2].p95Ms).toBeGreaterThan(r.items[0].p95Ms)
  })
})
