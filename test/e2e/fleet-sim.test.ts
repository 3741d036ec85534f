// The fleet simulator against a real hub process, 1,000 devices (issue 12's
// CI smoke test): provisioned through the bulk API, one MQTT connection each
// (test/sim), all online, telemetry flowing and counted against the senders'
// own numbers, and a deploy to one profile's devices answered by joining the
// broadcast and checking every chunk's sha256 (bytes counted, not stored).
import { afterAll, beforeAll, expect, it } from 'vitest'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { api, startHub, waitFor } from '../support/fleet.mjs'
import { matmulModel } from '../support/models.mjs'
import { deviceSpec, provisionFleet, startSimulator, type Simulator } from '../sim/fleet.mjs'

const DEVICES = 1000
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

it('1,000 simulated devices: online, telemetry counted end to end, a deploy verified chunk by chunk', async () => {
  const t0 = Date.now()
  const mark = (what: string) => console.log(`fleet-sim: ${what} at ${((Date.now() - t0) / 1000).toFixed(1)} s`)
  const FP32 = encodeURIComponent(JSON.stringify({ precision: 'fp32' }))
  // 600 KB: three chunks of 256 KiB. Registered before the fleet exists, so only the deploy's profile is built.
  await api(hub.httpUrl, 'POST', `/api/v1/models?name=wake&version=2.0.0&options=${FP32}`, await matmulModel(600_000))
  const devices = await provisionFleet(
    hub.httpUrl,
    Array.from({ length: DEVICES }, (_, i) => deviceSpec('smoke', i)),
  )
  mark('provisioned and registered')
  sim = startSimulator({ devices, mqttUrl: hub.mqttUrl, procs: 2, rate: 0.5 })
  await sim.until((t) => t.connected === DEVICES, 90_000, 'every device connected')
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

  // Telemetry: a few more seconds of it, then the senders stop and the hub's counts are compared with theirs.
  await sim.until((x) => x.telemetryAcked >= 2 * DEVICES, 60_000, 'telemetry')
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
  expect(status.ingest.duplicateBatches + status.ingest.batches).toBeLessThanOrEqual(sent.telemetrySent)
}, 180_000)
