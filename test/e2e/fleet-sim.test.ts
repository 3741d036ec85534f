// The fleet simulator against a real hub process, 2,000 devices (issue 12's
// CI smoke test): provisioned through the bulk API, one MQTT connection each
// (test/sim), all online; a deploy to one profile's devices answered by
// joining the broadcast and checking every chunk's sha256 (bytes counted, not
// stored); a reconnect storm (every connection dropped at once, all back at
// once with back-off from 0.5 s and full jitter) with the API answering
// throughout; and telemetry, across the storm, counted against the senders'
// own numbers.
import { afterAll, beforeAll, expect, it } from 'vitest'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { api, startHub, waitFor } from '../support/fleet.mjs'
import { matmulModel } from '../support/models.mjs'
import { deviceSpec, provisionFleet, startSimulator, type Simulator } from '../sim/fleet.mjs'

const DEVICES = 2000
const tmp = mkdtempSync(join(tmpdir(), 'ef-sim-e2e-'))
let hub: Awaited<ReturnType<typeof startHub>>
let sim: Simulator | undefined

/** A counter from the hub's /metrics (summed over its label sets). */
async function metric(name: string, label = ''): Promise<number> {
  const res = await fetch(new URL('/metrics', hub.httpUrl))
  const lines = (await res.text()).split('\n').filter((l) => l.startsWith(name) && l.includes(label))
  return lines.reduce((a, l) => a + Number(l.split(' ').pop()), 0)
}

beforeAll(async () => {
  hub = await startHub({ dataDir: join(tmp, 'hub'), logLevel: 'warn' })
}, 60_000)
afterAll(async () => {
  await sim?.stop()
  await hub?.stop()
  rmSync(tmp, { recursive: true, force: true })
})

const t0 = Date.now()
const mark = (what: string) => console.log(`fleet-sim: ${what} at ${((Date.now() - t0) / 1000).toFixed(1)} s`)

/** Polls the devices list until stopped; every answer's status (0: none) and the slowest time. */
function pollApi(): { stop: () => Promise<{ statuses: number[]; maxMs: number }> } {
  const statuses: number[] = []
  let maxMs = 0
  let running = true
  const loop = (async () => {
    while (running) {
      const began = performance.now()
      const status = await api(hub.httpUrl, 'GET', '/api/v1/devices?limit=50').then(
        () => 200,
        (err: unknown) => (err as { status?: number }).status ?? 0,
      )
      statuses.push(status)
      maxMs = Math.max(maxMs, performance.now() - began)
      await new Promise((r) => setTimeout(r, 250))
    }
  })()
  return {
    stop: async () => {
      running = false
      await loop
      return { statuses, maxMs }
    },
  }
}

it('2,000 simulated devices: online, a deploy verified chunk by chunk', async () => {
  const FP32 = encodeURIComponent(JSON.stringify({ precision: 'fp32' }))
  // 600 KB: three chunks of 256 KiB. Registered before the fleet exists, so only the deploy's profile is built.
  await api(hub.httpUrl, 'POST', `/api/v1/models?name=wake&version=2.0.0&options=${FP32}`, await matmulModel(600_000))
  const devices = await provisionFleet(
    hub.httpUrl,
    Array.from({ length: DEVICES }, (_, i) => deviceSpec('smoke', i)),
  )
  mark('provisioned and registered')
  sim = startSimulator({ devices, mqttUrl: hub.mqttUrl, procs: 2, rate: 0.25 })
  await sim.until((t) => t.connected === DEVICES, 120_000, 'every device connected')
  await waitFor(async () => (await metric('edgefleet_devices_online')) === DEVICES, {
    timeoutMs: 30_000,
    what: 'hub sees all online',
  })
  mark('all online')
  const page = await api(hub.httpUrl, 'GET', '/api/v1/devices?limit=50')
  expect(page.total).toBe(DEVICES)
  expect(page.items).toHaveLength(50)

  const target = devices.filter((d) => d.profile === 'industrial-x86')
  const dep = await api(hub.httpUrl, 'POST', '/api/v1/deployments', {
    model: 'wake',
    version: '2.0.0',
    target: 'profile=industrial-x86',
  })
  const done = await waitFor(
    async () => {
      const v = await api(hub.httpUrl, 'GET', `/api/v1/deployments/${dep.deployment.id}`)
      return v.deployment.done ? v : undefined
    },
    { timeoutMs: 60_000, intervalMs: 250, what: 'the deployment' },
  )
  expect(done.deployment.counts).toEqual({ activated: target.length })
  mark('deployed')
  const t = await sim.until((x) => x.deploysDone === target.length, 10_000, 'simulator deploys')
  expect(t.badChunks).toBe(0)
  expect(t.deploysFailed).toBe(0)
  // Every device of the target received every byte of its build at least once (the build's size, not the
  // source model's: the compiler's passes may shave bytes off the 600 KB input).
  const buildBytes = (done.devices as { totalBytes: number }[]).reduce((sum, x) => sum + x.totalBytes, 0)
  expect(buildBytes).toBeGreaterThan(target.length * 500_000)
  expect(t.chunkBytes).toBeGreaterThanOrEqual(buildBytes)
}, 240_000)

it('a reconnect storm: all 2,000 dropped at once come back, none refused, the API answering throughout', async () => {
  if (!sim) throw new Error('the fleet did not start')
  const before = sim.totals()
  const poll = pollApi()
  const began = performance.now()
  sim.drop()
  await sim.until((x) => x.disconnects - before.disconnects >= DEVICES, 30_000, 'every connection dropped')
  const back = await sim.until(
    (x) => x.connected === DEVICES && x.connects - before.connects >= DEVICES,
    180_000,
    'every device back',
  )
  await waitFor(async () => (await metric('edgefleet_devices_online')) === DEVICES, {
    timeoutMs: 60_000,
    what: 'hub sees all back',
  })
  const { statuses, maxMs } = await poll.stop()
  mark(
    `storm over in ${((performance.now() - began) / 1000).toFixed(1)} s, ${back.closedBeforeConnack - before.closedBeforeConnack} ` +
      `shed before CONNACK, ${statuses.length} API requests, slowest ${maxMs.toFixed(0)} ms`,
  )
  // No valid device refused by a CONNACK return code (the simulator counts those as refusedN); shed ones retried.
  expect(Object.keys(back).filter((k) => k.startsWith('refused'))).toEqual([])
  expect(statuses.length).toBeGreaterThan(0)
  expect([...new Set(statuses)]).toEqual([200])
}, 300_000)

it('telemetry across the storm: every acknowledged batch stored once, none refused', async () => {
  if (!sim) throw new Error('the fleet did not start')
  // A few more seconds of it, then the senders stop and the hub's counts are compared with theirs.
  const acked = sim.totals().telemetryAcked
  await sim.until((x) => x.telemetryAcked >= acked + DEVICES, 60_000, 'telemetry')
  mark('telemetry')
  await sim.stop()
  const sent = sim.totals()
  sim = undefined
  expect(sent.refused4 ?? 0).toBe(0)
  const status = (await api(hub.httpUrl, 'GET', '/api/v1/retraining/status')) as {
    ingest: { batches: number; duplicateBatches: number }
  }
  // Each device reports the versions its state announced a moment before: none is refused [EF-2.6.8], and every
  // acknowledged batch is stored.
  const refused = await metric('edgefleet_mqtt_dropped_total', 'EF_ERR_TELEMETRY_UNKNOWN_VERSION')
  expect(refused).toBe(0)
  expect(status.ingest.batches).toBeGreaterThanOrEqual(sent.telemetryAcked)
  expect(status.ingest.batches).toBeLessThanOrEqual(sent.telemetrySent)
  expect(status.ingest.duplicateBatches + status.ingest.batches).toBeLessThanOrEqual(
    sent.telemetrySent + (sent.telemetryResent ?? 0),
  )
}, 120_000)
