#!/usr/bin/env node
// Rollout and console figures (issue 6):
//   1. control-plane overhead of a 4-wave rollout (1% → 10% → 50% → 100%) over
//      N simulated devices: wall time from create to completed minus the sum of
//      the soak times. Hub = a real `edgefleet hub start` process (embedded
//      aedes, SQLite); devices = test/support/sim-devices.mjs, one real MQTT
//      connection each with device credentials, answering deploys with
//      received → activated and sending a telemetry batch every second (they
//      download nothing and run no model: this measures the control plane).
//      Run at the hub's default 1 s rollout tick and at 200 ms.
//   2. console load time in Debian's Chromium (playwright-core) for a fleet of
//      M devices provisioned through the API: navigation → fleet page drawn
//      (cards, both plots, first device page), cold and warm.
// Usage: node test/bench/rollout.mjs [--devices 1000] [--soak-ms 2000] [--console-devices 10000] [--loads 5]   (after `pnpm build`)
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir, cpus, totalmem } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { chromium } from 'playwright-core'
import { startHub, api, waitFor } from '../support/fleet.mjs'
import { startSimFleet } from '../support/sim-devices.mjs'
import { batchModel } from '../support/rollout-models.mjs'

const { values: flags } = parseArgs({
  options: {
    devices: { type: 'string' },
    'soak-ms': { type: 'string' },
    'console-devices': { type: 'string' },
    loads: { type: 'string' },
    skip: { type: 'string' },
  },
})
const deviceCount = Number(flags.devices ?? 1000)
const SOAK = Number(flags['soak-ms'] ?? 2000)
const consoleDeviceCount = Number(flags['console-devices'] ?? 10_000)
const LOADS = Number(flags.loads ?? 5)
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const PROFILES = ['gateway-rpi4', 'industrial-x86', 'vehicle-x86-ecu', 'phone-android-arm64']

async function provision(hub, n, prefix, withTags = true) {
  const out = []
  for (let i = 0; i < n; i += 50) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(50, n - i) }, (_, k) => {
        const id = `${prefix}${String(i + k).padStart(5, '0')}`
        const profile = PROFILES[(i + k) % PROFILES.length]
        return api(hub.httpUrl, 'POST', '/api/v1/devices', {
          id,
          profile,
          tags: withTags ? { fleet: 'bench', region: (i + k) % 3 ? 'eu' : 'us' } : {},
        }).then((d) => ({ id, profile, secret: d.secret }))
      }),
    )
    out.push(...batch)
  }
  return out
}

async function registerModel(hub, version, seed) {
  const q = new URLSearchParams({ name: 'clf', version, options: JSON.stringify({ precision: 'fp32' }) })
  await api(hub.httpUrl, 'POST', `/api/v1/models?${q}`, await batchModel({ seed }))
}

async function rolloutBench(tickMs) {
  const tmp = mkdtempSync(join(tmpdir(), 'ef-bench-rollout-'))
  const hub = await startHub({ dataDir: join(tmp, 'hub'), extraArgs: ['--rollout-tick-ms', String(tickMs)] })
  let fleet
  try {
    const t0 = Date.now()
    const specs = await provision(hub, deviceCount, 'sim')
    const tProv = Date.now() - t0
    await registerModel(hub, '1.0.0', 1)
    await registerModel(hub, '2.0.0', 2)
    const t1 = Date.now()
    fleet = await startSimFleet({
      mqttUrl: hub.mqttUrl,
      devices: specs.map((s) => ({ ...s, model: 'clf', version: '1.0.0' })),
      behavior: () => ({ requests: 30, errors: 0, latencyMs: 3 }),
    })
    await waitFor(async () => (await api(hub.httpUrl, 'GET', '/api/v1/fleet/summary')).online === deviceCount, {
      timeoutMs: 120_000,
      intervalMs: 250,
      what: 'sim devices online',
    })
    const tConn = Date.now() - t1
    // Builds for every profile exist before the clock starts (compiling is not the control plane).
    const warm = await api(hub.httpUrl, 'POST', '/api/v1/deployments', {
      model: 'clf',
      version: '2.0.0',
      target: 'device=nonexistent',
    }).catch((e) => e.body)
    void warm
    const telemetry = setInterval(() => void fleet.telemetry().catch(() => undefined), 1000)
    const tStart = Date.now()
    const created = await api(hub.httpUrl, 'POST', '/api/v1/rollouts', {
      model: 'clf',
      version: '2.0.0',
      selector: 'tag=fleet=bench',
      waves: [{ percent: 1 }, { percent: 10 }, { percent: 50 }, { percent: 100 }],
      soakMs: SOAK,
      gates: { minRequests: 10 },
      schedule: { maintenanceWindows: false },
    })
    const tCreate = Date.now() - tStart
    const final = await waitFor(
      async () => {
        const v = await api(hub.httpUrl, 'GET', `/api/v1/rollouts/${created.rollout.id}`)
        return ['completed', 'paused', 'rolled_back', 'aborted'].includes(v.rollout.state) ? v : undefined
      },
      { timeoutMs: 600_000, intervalMs: 100, what: 'rollout end' },
    )
    const total = Date.now() - tStart
    clearInterval(telemetry)
    const waves = final.decisions.filter(
      (d) => d.kind === 'wave' && (d.decision === 'start' || d.decision === 'deployed' || d.decision === 'completed'),
    )
    const gates = final.decisions.filter((d) => d.kind === 'gate')
    // Per wave: start → all devices activated (deploy), and the rest of the wave past its soak.
    const starts = [
      final.decisions.find((d) => d.decision === 'create').ts,
      ...waves.filter((d) => d.decision === 'start').map((d) => d.ts),
    ]
    const deployed = waves.filter((d) => d.decision === 'deployed').map((d) => d.ts)
    const perWave = deployed.map((ts, i) => ({
      wave: i + 1,
      devices: final.rollout.waves[i].devices,
      deployMs: ts - starts[i],
      gateMs: (gates[i]?.ts ?? ts) - ts - SOAK,
    }))
    return {
      tickMs,
      state: final.rollout.state,
      total,
      overhead: total - 4 * SOAK,
      tProv,
      tConn,
      tCreate,
      perWave,
      deploys: fleet.deploys.length,
      gates: gates.map((g) => g.decision),
    }
  } finally {
    await fleet?.close()
    await hub.stop()
    rmSync(tmp, { recursive: true, force: true })
  }
}

async function consoleBench() {
  const tmp = mkdtempSync(join(tmpdir(), 'ef-bench-console-'))
  const hub = await startHub({ dataDir: join(tmp, 'hub') })
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    headless: true,
  })
  try {
    const t0 = Date.now()
    await provision(hub, consoleDeviceCount, 'dev')
    const tProv = Date.now() - t0
    const api0 = Date.now()
    await api(hub.httpUrl, 'GET', '/api/v1/fleet/summary')
    const apiMs = Date.now() - api0
    const loads = []
    const ctx = await browser.newContext()
    await ctx.addInitScript((t) => sessionStorage.setItem('edgefleet-token', t), hub.token)
    for (let i = 0; i < LOADS; i++) {
      const page = await ctx.newPage()
      const startedAt = Date.now()
      await page.goto(hub.httpUrl + '/#/fleet')
      await page.waitForSelector(`#c-devices:has-text("${consoleDeviceCount}")`)
      await page.waitForSelector('[data-chart="profiles"] svg rect', { state: 'attached' })
      await page.waitForSelector('#devices tbody tr:nth-child(100)')
      loads.push(Date.now() - startedAt)
      const bytes = await page.evaluate(
        () =>
          performance.getEntriesByType('resource').reduce((a, e) => a + (e.transferSize || 0), 0) +
          (performance.getEntriesByType('navigation')[0]?.transferSize ?? 0),
      )
      loads[loads.length - 1] = { ms: Date.now() - startedAt, bytes }
      await page.close()
    }
    return {
      devices: consoleDeviceCount,
      tProv,
      apiMs,
      cold: loads[0],
      warmMedian: median(loads.slice(1).map((l) => l.ms)),
      loads,
    }
  } finally {
    await browser.close()
    await hub.stop()
    rmSync(tmp, { recursive: true, force: true })
  }
}

const machine = `${cpus().length}× ${cpus()[0]?.model ?? 'cpu'}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB, Node ${process.version}`
process.stdout.write(`machine: ${machine}\n`)
const skip = new Set((flags.skip ?? '').split(',').filter(Boolean))
if (!skip.has('rollout')) {
  for (const tick of [1000, 200]) {
    const r = await rolloutBench(tick)
    process.stdout.write(
      `\nrollout over ${deviceCount} simulated devices, 4 waves 1/10/50/100%, soak ${SOAK} ms each, tick ${r.tickMs} ms: ${r.state} in ${(r.total / 1000).toFixed(2)} s → control-plane overhead ${(r.overhead / 1000).toFixed(2)} s beyond ${(4 * SOAK) / 1000} s of soaks\n` +
        `  create call ${r.tCreate} ms; provisioning ${deviceCount} devices over the API ${(r.tProv / 1000).toFixed(1)} s; ${deviceCount} MQTT connections online ${(r.tConn / 1000).toFixed(1)} s; deploy commands answered ${r.deploys}; gates ${r.gates.join(',')}\n` +
        r.perWave
          .map(
            (w) =>
              `  wave ${w.wave}: ${w.devices} devices, start → all activated ${w.deployMs} ms, soak end → gate decision ${w.gateMs} ms`,
          )
          .join('\n') +
        '\n',
    )
  }
}
if (!skip.has('console')) {
  const c = await consoleBench()
  process.stdout.write(
    `\nconsole, fleet of ${c.devices} devices (provisioned over the API in ${(c.tProv / 1000).toFixed(1)} s): GET /api/v1/fleet/summary ${c.apiMs} ms; ` +
      `fleet page drawn in Chromium: cold ${c.cold.ms} ms, warm median ${c.warmMedian} ms over ${LOADS - 1} loads; ${(c.cold.bytes / 1024).toFixed(1)} KiB transferred cold\n`,
  )
}
