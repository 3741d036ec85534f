#!/usr/bin/env node
// The demo fleet: a hub on the embedded broker, six agents as separate
// processes on six device profiles, a real wake-word model registered,
// compiled per profile, deployed, and served under live traffic.
//   pnpm demo [--data DIR] [--duration SECONDS] [--rate REQ_PER_S_PER_AGENT] [--loop]
// --loop: then the retraining loop (scripts/demo-loop.mjs): drift → feed → re-fit → canary → promoted.
import { mkdtempSync, rmSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { startHub, startFleet, api, waitFor, wakeInput, MODELS } from '../test/support/fleet.mjs'

const { values: args } = parseArgs({
  options: {
    data: { type: 'string' },
    duration: { type: 'string' },
    rate: { type: 'string' },
    precision: { type: 'string' },
    loop: { type: 'boolean' },
  },
})
const tmp = args.data ? resolve(args.data) : mkdtempSync(join(tmpdir(), 'edgefleet-demo-'))
const rate = Number(args.rate ?? 20)
const FLEET = [
  { id: 'truck-017', profile: 'vehicle-arm64-gpu', tags: { fleet: 'demo', region: 'eu' } },
  { id: 'truck-042', profile: 'vehicle-x86-ecu', tags: { fleet: 'demo', region: 'eu' } },
  { id: 'phone-ana', profile: 'phone-android-arm64', tags: { fleet: 'demo', region: 'us' } },
  { id: 'gw-lobby', profile: 'gateway-rpi4', tags: { fleet: 'demo', region: 'us' } },
  { id: 'gw-shed', profile: 'gateway-armv7-small', tags: { fleet: 'demo', region: 'eu' } },
  { id: 'plc-line3', profile: 'industrial-x86', tags: { fleet: 'demo', region: 'eu' } },
]

let hub
let agents = []
let stopping = false
let traffic
async function shutdown(code = 0) {
  if (stopping) return
  stopping = true
  clearInterval(traffic)
  process.stdout.write('\nstopping agents and hub…\n')
  await Promise.all(agents.map((a) => a.stop()))
  await hub?.stop()
  if (!args.data) rmSync(tmp, { recursive: true, force: true })
  process.stdout.write('stopped; no process left behind\n')
  process.exit(code)
}
process.on('SIGINT', () => void shutdown(0))
process.on('SIGTERM', () => void shutdown(0))

const t0 = Date.now()
const step = (s) => process.stdout.write(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(5)}s] ${s}\n`)
try {
  // --loop: the retraining loop's hub settings (short windows) [scripts/demo-loop.mjs].
  const loop = args.loop ? await import('./demo-loop.mjs') : undefined
  hub = await startHub({
    dataDir: join(tmp, 'hub'),
    ...(loop ? { env: { EF_RETRAINING: JSON.stringify(loop.LOOP_RETRAINING) } } : {}),
  })
  step(`hub up — console ${hub.httpUrl}/  broker ${hub.mqttUrl}`)
  step(`admin token (sign in to the console, or export EDGEFLEET_TOKEN for the CLI): ${hub.token}`)
  agents = await startFleet(hub, FLEET, { tmp, telemetryMs: 2000 })
  step(`${agents.length} agents started: ${agents.map((a) => `${a.id} (${a.profile})`).join(', ')}`)
  await waitFor(async () => (await api(hub.httpUrl, 'GET', '/api/v1/devices')).items.every((d) => d.online), {
    what: 'agents online',
  })
  step('all agents online')
  const query = new URLSearchParams({ name: 'wake-hello', version: '1.0.0' })
  if (args.precision || loop)
    query.set(
      'options',
      JSON.stringify({
        ...(args.precision ? { precision: args.precision } : {}),
        ...(loop ? { outputs: loop.LOOP_OUTPUTS } : {}),
      }),
    )
  const reg = await api(hub.httpUrl, 'POST', `/api/v1/models?${query}`, readFileSync(MODELS.wakeHello))
  step(`registered wake-hello@1.0.0 (openwakeword head), built per profile:`)
  for (const b of reg.builds)
    process.stdout.write(
      `         ${b.profile.padEnd(22)} ${b.status.padEnd(6)} ${String(b.precision).padEnd(13)} ${b.sizeBytes ?? '-'} bytes${b.errorCode ? ' ' + b.errorCode : ''}\n`,
    )
  const tDeploy = Date.now()
  const dep = await api(hub.httpUrl, 'POST', '/api/v1/deployments', {
    model: 'wake-hello',
    version: '1.0.0',
    target: 'tag=fleet=demo',
  })
  const done = await waitFor(
    async () => {
      const v = await api(hub.httpUrl, 'GET', `/api/v1/deployments/${dep.deployment.id}`)
      return v.deployment.done ? v : undefined
    },
    { timeoutMs: 120_000, what: 'deployment' },
  )
  step(
    `deployed to ${done.devices.length} devices in ${Date.now() - tDeploy} ms: ${done.devices.map((d) => `${d.deviceId}=${d.state}`).join(' ')}`,
  )

  // Live traffic: each agent gets `rate` requests per second on its local API.
  let sent = 0
  let failed = 0
  let inputOf = wakeInput // --loop swaps in drifted inputs
  traffic = setInterval(() => {
    for (const a of agents)
      for (let i = 0; i < Math.max(1, Math.round(rate / 10)); i++) {
        sent++
        fetch(`${a.url}/v1/models/wake-hello/infer`, {
          method: 'POST',
          body: JSON.stringify({ inputs: inputOf(sent) }),
        })
          .then((r) => (r.ok ? r.arrayBuffer() : Promise.reject(new Error(String(r.status)))))
          .catch(() => failed++)
      }
  }, 100)

  const summary = async () => {
    const [devs, tel] = await Promise.all([
      api(hub.httpUrl, 'GET', '/api/v1/devices'),
      api(hub.httpUrl, 'GET', '/api/v1/telemetry/summary'),
    ])
    const online = devs.items.filter((d) => d.online).length
    const lines = [
      `\n=== EdgeFleet demo — ${online}/${devs.total} devices online — console ${hub.httpUrl}/ (token ${hub.token.slice(0, 10)}…) — Ctrl-C to stop ===`,
    ]
    for (const d of devs.items)
      lines.push(
        `  ${d.id.padEnd(10)} ${d.profile.padEnd(21)} ${d.online ? 'online ' : 'offline'} ${d.models.map((m) => `${m.name}@${m.version} ${m.precision}`).join(', ')}`,
      )
    for (const t of tel.items)
      lines.push(
        `  ${t.model}@${t.version}: ${t.requests} requests on ${t.devices} devices, ${t.errors} errors, p50 ${t.p50Ms?.toFixed(2)} ms, p95 ${t.p95Ms?.toFixed(2)} ms`,
      )
    lines.push(`  traffic sent by the demo: ${sent} requests, ${failed} failed`)
    process.stdout.write(lines.join('\n') + '\n')
  }
  if (loop) await loop.runLoop({ hub, agents, tmp, step, setInput: (f) => (inputOf = f) })
  const until = args.duration ? Date.now() + Number(args.duration) * 1000 : Infinity
  while (!stopping && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 3000))
    if (!stopping) await summary().catch((e) => process.stdout.write(`summary failed: ${e.message}\n`))
  }
  await shutdown(failed > 0 ? 1 : 0)
} catch (err) {
  process.stderr.write(`demo failed: ${err.stack ?? err}\n`)
  await shutdown(1)
}
