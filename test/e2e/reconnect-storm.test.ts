// Reconnect storm (issue 12): 2,000 simulated devices (test/sim, one MQTT
// connection each) are online when the hub restarts; they all drop at once
// and come back with back-off and jitter. All of them are back, none is
// refused (a CONNACK with a non-zero code; the broker may shed not-yet-
// authenticated connections under load, EF-1.7.3, and those retry), and the
// API answers throughout.
import { afterAll, expect, it } from 'vitest'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { api, startHub } from '../support/fleet.mjs'
import { deviceSpec, provisionFleet, startSimulator, type Simulator } from '../sim/fleet.mjs'

const N = 2000
const tmp = mkdtempSync(join(tmpdir(), 'ef-storm-'))
let hub: Awaited<ReturnType<typeof startHub>> | undefined
let sim: Simulator | undefined

afterAll(async () => {
  await sim?.stop()
  await hub?.stop()
  rmSync(tmp, { recursive: true, force: true })
})

it('2,000 devices reconnect at once after a hub restart: all back, none refused, the API answers throughout', async () => {
  hub = await startHub({ dataDir: join(tmp, 'hub'), logLevel: 'warn' })
  const ports = { mqttPort: Number(new URL(hub.mqttUrl).port), httpPort: Number(new URL(hub.httpUrl).port) }
  const devices = await provisionFleet(
    hub.httpUrl,
    Array.from({ length: N }, (_, i) => deviceSpec('storm', i)),
  )
  sim = startSimulator({ devices, mqttUrl: hub.mqttUrl, procs: 2, rate: 0.1 })
  await sim.until((t) => t.connected === N, 180_000, 'every device connected')
  const before = sim.totals()

  await hub.stop()
  await sim.until((t) => t.connected === 0, 30_000, 'every device dropped')
  const restarted = Date.now()
  hub = await startHub({ dataDir: join(tmp, 'hub'), logLevel: 'warn', ...ports })
  // The API is polled while the fleet comes back: every call must answer.
  const calls: { ok: boolean; ms: number }[] = []
  let polling = true
  const poll = (async () => {
    while (polling) {
      const t0 = Date.now()
      const ok = await api(hub!.httpUrl, 'GET', '/api/v1/devices?limit=50').then(
        (r: { total: number }) => r.total === N,
        () => false,
      )
      calls.push({ ok, ms: Date.now() - t0 })
      await new Promise((r) => setTimeout(r, 250))
    }
  })()
  const after = await sim.until((t) => t.connected === N, 180_000, 'every device back').finally(() => (polling = false))
  await poll
  console.log(
    `reconnect storm: ${N} devices back ${((Date.now() - restarted) / 1000).toFixed(1)} s after the restart; ` +
      `${after.closedBeforeConnack - before.closedBeforeConnack} connections shed before CONNACK; ` +
      `API ${calls.length} calls, slowest ${Math.max(...calls.map((c) => c.ms))} ms`,
  )
  expect(after.connects - before.connects).toBeGreaterThanOrEqual(N)
  expect(Object.keys(after).filter((k) => k.startsWith('refused'))).toEqual([])
  expect(calls.length).toBeGreaterThan(0)
  expect(calls.every((c) => c.ok)).toBe(true)
}, 480_000)
