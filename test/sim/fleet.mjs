// The fleet simulator's driver: provisions N devices through the real bulk
// API [EF-1.3.5], splits them over P worker processes (worker.mjs, one MQTT
// connection per device) and sums their counters. Tests and benchmarks use
// it directly; `pnpm sim` (run.mjs) is its command line.
import { fork } from 'node:child_process'
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { api, ROOT } from '../support/fleet.mjs'

const WORKER = fileURLToPath(new URL('./worker.mjs', import.meta.url))

/** Every firmware profile shipped in the repo: devices cycle through them. */
const PROFILES = readdirSync(join(ROOT, 'firmware-profiles'))
  .filter((f) => f.endsWith('.json') && f !== 'profile.schema.json')
  .map((f) => f.slice(0, -5))
  .sort()

/** Mixed fleets: one or two models per device, at different versions, with profile-dependent latency. */
export function deviceSpec(prefix, i, profiles = PROFILES) {
  const profile = profiles[i % profiles.length]
  const latencyMs = 2 + (i % profiles.length) * 3
  const models = [{ name: 'wake', version: i % 3 === 0 ? '1.1.0' : '1.0.0', latencyMs }]
  if (i % 2 === 1) models.push({ name: 'vad', version: i % 4 === 1 ? '2.0.0' : '2.1.0', latencyMs: latencyMs * 2 })
  return { id: `${prefix}-${String(i).padStart(6, '0')}`, profile, models, seed: i + 1 }
}

/** Provisions `specs` in imports of at most 10,000 (each all or none); returns them with their secrets. */
export async function provisionFleet(hubUrl, specs, headers = {}) {
  const out = []
  for (let i = 0; i < specs.length; i += 10_000) {
    const slice = specs.slice(i, i + 10_000)
    const body = { devices: slice.map((s) => ({ id: s.id, profile: s.profile, tags: { sim: '1' } })) }
    const r = await api(hubUrl, 'POST', '/api/v1/devices:batch', body, headers)
    r.devices.forEach((d, k) => out.push({ ...slice[k], secret: d.secret }))
  }
  return out
}

const sum = (list, key) => list.reduce((a, s) => a + (s?.[key] ?? 0), 0)

/**
 * Starts the simulated devices against `mqttUrl` (already provisioned specs).
 * `rate`: telemetry batches per device per second; `rampPerSec`: connects per
 * second per worker at start.
 */
export function startSimulator({ devices, mqttUrl, procs = 2, rate = 0.2, rampPerSec = 2000, execArgv = [] }) {
  const workers = []
  const latest = []
  for (let w = 0; w < procs; w++) {
    const slice = devices.filter((_, i) => i % procs === w)
    const child = fork(WORKER, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv })
    child.on('message', (m) => {
      if (m.type === 'stats') latest[w] = { ...m.stats, cpuUs: m.cpu.user + m.cpu.system, rss: m.rss }
    })
    child.send({ type: 'start', devices: slice, url: mqttUrl, rate, rampPerSec })
    workers.push(child)
  }
  const totals = () => {
    const keys = new Set(latest.flatMap((s) => Object.keys(s ?? {})))
    const t = Object.fromEntries([...keys].map((k) => [k, sum(latest, k)]))
    t.connackMsMax = Math.max(0, ...latest.map((s) => s?.connackMsMax ?? 0))
    return t
  }
  return {
    totals,
    /** Polls the summed counters until `pred(totals)` holds; rejects after timeoutMs. */
    async until(pred, timeoutMs, what = 'simulator condition') {
      const deadline = Date.now() + timeoutMs
      for (;;) {
        const t = totals()
        if (latest.length === procs && pred(t)) return t
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(t)}`)
        await new Promise((r) => setTimeout(r, 200))
      }
    },
    /** Every connected device subscribes to `filter` (ending in `+` or `#`) and counts what arrives there. */
    rawSubscribe(filter) {
      for (const w of workers) w.send({ type: 'rawSubscribe', filter })
    },
    /** Closes every device's connection at once, as a network outage would; they reconnect with back-off. */
    drop() {
      for (const w of workers) w.send({ type: 'drop' })
    },
    async stop() {
      await Promise.all(
        workers.map(
          (w) =>
            new Promise((res) => {
              if (w.exitCode !== null) return res()
              w.once('exit', res)
              w.send({ type: 'stop' })
              setTimeout(() => w.kill('SIGKILL'), 5000).unref()
            }),
        ),
      )
    },
  }
}
