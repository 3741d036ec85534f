// The console's assets and the read endpoints it plots from.
import { Script } from 'node:vm'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CONSOLE_JS } from '../../src/console/app.js'
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
  it('serves the page, stylesheet and a script that parses', async () => {
    const page = await testHub.hub.api.inject({ method: 'GET', url: '/' })
    expect(page.headers['content-type']).toMatch(/text\/html/)
    expect(page.body).toContain('<script src="/console.js">')
    const js = await testHub.hub.api.inject({ method: 'GET', url: '/console.js' })
    expect(js.headers['content-type']).toMatch(/javascript/)
    expect(() => new Script(CONSOLE_JS)).not.toThrow() // compiles it (a syntax check) without running it
    expect(Buffer.byteLength(js.body) + Buffer.byteLength(page.body)).toBeLessThan(64 * 1024) // small: no framework
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
