// The rollout engine at fleet scale [EF-8.9]: 10,000 devices provisioned in
// one bulk import, a 4-wave rollout over all of them. A tick reads no whole
// fleet: while nobody is provisioned or changes status, the joiner lookup
// reads no device row at all; a device provisioned later is read alone and
// joins the current wave. Counted on the real store, not timed (the tick
// time at 10,000 is a benchmark figure: test/bench/fleet-scale.mjs).
import { afterAll, beforeAll, expect, it } from 'vitest'
import { startTestHub, type TestHub } from '../fixtures/hub.js'
import { registerVersions } from '../fixtures/rollouts.js'

const FLEET_SIZE = 10_000
let testHub: TestHub
let clock = Date.parse('2026-01-10T12:00:00Z')
const reads = { list: 0, activeSince: 0, rows: 0 }

beforeAll(async () => {
  testHub = await startTestHub({ now: () => clock })
  const devices = Array.from({ length: FLEET_SIZE }, (_, i) => ({
    id: `s${i}`,
    profile: 'gateway-rpi4',
    tags: { fleet: 't' },
  }))
  for (let i = 0; i < FLEET_SIZE; i += 5000) {
    const res = await testHub.hub.api.inject({
      method: 'POST',
      url: '/api/v1/devices:batch',
      payload: { devices: devices.slice(i, i + 5000) },
    })
    expect(res.statusCode).toBe(201)
  }
  await registerVersions(testHub, 'm', ['1.0.0', '2.0.0'])
  // Count what the engine reads of the fleet through the real store's methods.
  const store = testHub.hub.store.devices
  const list = store.list.bind(store)
  const activeSince = store.activeSince.bind(store)
  store.list = (...a) => (reads.list++, list(...a))
  store.activeSince = (...a) => {
    reads.activeSince++
    const rows = activeSince(...a)
    reads.rows += rows.length
    return rows
  }
}, 120_000)
afterAll(() => testHub?.close())

it('ticks without reading the fleet; a late device is read alone and joins the current wave', async () => {
  const rollout = testHub.hub.rollouts.create(
    {
      model: 'm',
      version: '2.0.0',
      selector: 'tag=fleet=t',
      waves: [{ percent: 1 }, { percent: 10 }, { percent: 50 }, { percent: 100 }],
      soakMs: 60_000,
      schedule: { maintenanceWindows: false },
    },
    'test',
  )
  expect(reads.rows).toBe(FLEET_SIZE) // creation reads the active fleet once
  const ticks: number[] = []
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now()
    await testHub.hub.rollouts.tick()
    ticks.push(performance.now() - t0)
    clock += 1000
  }
  console.log(`rollout tick at ${FLEET_SIZE} devices, ms: ${ticks.map((x) => x.toFixed(1)).join(', ')}`)
  expect(reads.list).toBe(0)
  expect(reads.activeSince).toBe(1)
  expect(reads.rows).toBe(FLEET_SIZE)
  const wave0 = testHub.hub.store.rollouts.devices(rollout.id).filter((d) => d.wave === 0)
  expect(wave0).toHaveLength(FLEET_SIZE / 100)
  expect(wave0.every((d) => d.status === 'deploying')).toBe(true)

  const res = await testHub.hub.api.inject({
    method: 'POST',
    url: '/api/v1/devices',
    payload: { id: 'late', profile: 'gateway-rpi4', tags: { fleet: 't' } },
  })
  expect(res.statusCode).toBe(201)
  await testHub.hub.rollouts.tick()
  expect(reads.activeSince).toBe(2)
  expect(reads.rows).toBe(FLEET_SIZE + 1)
  const late = testHub.hub.store.rollouts.devices(rollout.id).find((d) => d.deviceId === 'late')
  expect(late).toMatchObject({ wave: 0 })
  await testHub.hub.rollouts.tick()
  expect(reads.activeSince).toBe(2)
}, 120_000)
