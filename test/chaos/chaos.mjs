#!/usr/bin/env node
// Chaos suite (issue 18): while a real hub deploys to real agents and they
// serve inference, inject one fault at a random moment of each deploy — agent
// kill -9, hub kill -9, broker kill -9 (embedded: the hub is the broker;
// Mosquitto), agent disk full (a real tmpfs), a partition between an agent and
// the broker (a TCP proxy that drops or stalls), a clock jump on an agent
// (libfaketime) — heal it, and check the invariants:
//   - the deployment reaches a final state within the settle time, every
//     assignment `activated`, and each device serves that version (verified:
//     an agent serves only verified slots) — the hub's row matches the device;
//   - no inference request fails because of storage (the disk agent keeps
//     answering while its disk is full);
//   - processes we did not kill are still the same processes (no crash loop);
//   - telemetry: per device the hub's request count lies between the requests
//     answered in agent lives that ended cleanly and all requests answered
//     (a kill -9 loses at most the window not yet cut; never a duplicate), and
//     equals the answered count exactly for a device that was never killed
//     and never had a full disk.
// First half of the time against the embedded broker, second half against
// Mosquitto. Usage: pnpm chaos --minutes N [--seed S] [--json FILE]
import { mkdtempSync, rmSync, writeFileSync, mkdirSync, existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { fileURLToPath } from 'node:url'
import { startHub, startAgent, api, waitFor, startTcpProxy } from '../support/fleet.mjs'
import { startMosquitto, freePort } from '../support/mosquitto.mjs'
import { matmulModel } from '../support/models.mjs'
import { canMount, mountTmpfs, fillDisk } from '../support/faults.mjs'
import { mulberry32 } from '../support/prng.mjs'

const FP32 = encodeURIComponent(JSON.stringify({ precision: 'fp32' }))
const FAKETIME_LIB = '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1'
const VERSIONS = ['1.0.0', '2.0.0', '3.0.0', '4.0.0']
const SETTLE_MS = 180_000
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

const alive = (pid) => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/** One phase: a hub (embedded broker or Mosquitto) and three agents with their fault handles. */
async function startPhase(mode, tmp, log) {
  const dir = join(tmp, mode)
  mkdirSync(dir, { recursive: true })
  const ph = { mode, dir, mosq: undefined, agents: [], unmounts: [] }
  ph.httpPort = await freePort()
  ph.mqttPort = mode === 'embedded' ? await freePort() : 0
  if (mode === 'mosquitto') ph.mosq = await startMosquitto(join(dir, 'mosquitto'))
  ph.launchHub = () =>
    startHub({
      dataDir: join(dir, 'hub'),
      timeoutMs: 120_000, // a loaded machine: a start can take tens of seconds
      mqttPort: ph.mqttPort,
      httpPort: ph.httpPort,
      extraArgs: ph.mosq
        ? ['--broker', ph.mosq.url, '--mosquitto-dir', ph.mosq.dir, '--mosquitto-pid-file', ph.mosq.pidFile]
        : [],
    })
  ph.hub = await ph.launchHub()
  ph.brokerUrl = ph.mosq ? ph.mosq.url : ph.hub.mqttUrl
  ph.proxy = await startTcpProxy(ph.brokerUrl)
  ph.clockFile = join(dir, 'faketime')
  writeFileSync(ph.clockFile, '+0\n')
  const mount = canMount()
  const specs = [
    { id: `${mode}-clock`, role: 'clock' },
    { id: `${mode}-net`, role: 'net' },
    { id: `${mode}-disk`, role: 'disk' },
  ]
  for (const s of specs) {
    const d = await api(ph.hub.httpUrl, 'POST', '/api/v1/devices', {
      id: s.id,
      profile: 'industrial-x86',
      tags: { chaos: mode },
    })
    const dataDir = join(dir, s.id)
    if (s.role === 'disk' && mount) ph.unmounts.push(mountTmpfs(dataDir, 40 * 1024 * 1024))
    const agent = { ...s, secret: d.secret, dataDir, lives: [], killed: false, diskFull: false }
    agent.launch = async () => {
      const env =
        agent.role === 'clock' && existsSync(FAKETIME_LIB)
          ? {
              LD_PRELOAD: FAKETIME_LIB,
              FAKETIME_TIMESTAMP_FILE: ph.clockFile,
              FAKETIME_NO_CACHE: '1',
              FAKETIME_DONT_FAKE_MONOTONIC: '1',
            }
          : {}
      agent.proc = await startAgent({
        mqttUrl: agent.role === 'net' ? ph.proxy.url : ph.brokerUrl,
        deviceId: agent.id,
        secret: agent.secret,
        hubKey: ph.hub.publicKey,
        profile: 'industrial-x86',
        dataDir,
        env,
        timeoutMs: 120_000,
      })
      agent.url = `http://127.0.0.1:${agent.proc.apiPort}`
      agent.life = { ok: 0, clean: false }
      agent.lives.push(agent.life)
    }
    await agent.launch()
    ph.agents.push(agent)
  }
  for (const [i, v] of VERSIONS.entries())
    await api(
      ph.hub.httpUrl,
      'POST',
      `/api/v1/models?name=c&version=${v}&options=${FP32}`,
      await matmulModel(1e6, 100 + i),
    )
  log(`[chaos] ${mode}: hub, broker, 3 agents and ${VERSIONS.length} versions ready`)
  return ph
}

async function stopPhase(ph) {
  for (const a of ph.agents) {
    await a.proc?.stop()
    if (a.life) a.life.clean = true
  }
  await ph.proxy?.close()
  await ph.hub?.stop()
  await ph.mosq?.stop()
  for (const u of ph.unmounts) u()
}

/** Inference traffic to every agent, counting answers per agent life; failures by whether a fault was on. */
function startTraffic(ph, stats) {
  let on = true
  const input = { x: { type: 'float32', dims: [1, 1024], data: Array.from({ length: 1024 }, (_, i) => (i % 7) / 7) } }
  const loop = async (agent) => {
    while (on) {
      const life = agent.life
      try {
        const r = await api(agent.url, 'POST', '/v1/models/c/infer', { inputs: input })
        if (r.outputs) {
          life.ok++
          agent.served = true
        }
      } catch (err) {
        // Refused connections while the agent is down are expected; an answer with an error is not.
        if (err.status && !agent.killed) {
          // Before its first deploy lands an agent serves nothing (404 EF_ERR_INFER_MODEL_NOT_LOADED): counted, not a fault.
          if (!agent.served) stats.beforeFirstServe++
          else {
            // Once a device served, every answer must succeed through any fault (models swap atomically, EF-4.5;
            // storage faults never reach inference, EF-7.3); a killed agent refuses connections instead.
            stats.inferErrors.push(`${agent.id}: ${String(err.message).slice(0, 200)}`)
            stats.violations.push(
              `inference failed after the device served${agent.diskFull ? ' (disk full)' : ''}: ${agent.id}: ${err.message}`,
            )
          }
        }
      }
      await sleep(50)
    }
  }
  const runs = ph.agents.map(loop)
  return async () => {
    on = false
    await Promise.all(runs)
  }
}

/** Injects one fault; returns its heal. */
async function inject(kind, ph, rand) {
  const pick = ph.agents[Math.floor(rand() * ph.agents.length)]
  switch (kind) {
    case 'agent-kill': {
      pick.killed = true
      pick.proc.kill9()
      await new Promise((r) => pick.proc.proc.once('exit', r))
      return async () => {
        await pick.launch()
        pick.killed = false
      }
    }
    case 'hub-kill':
    case 'broker-kill-embedded': {
      ph.hub.proc.kill('SIGKILL')
      await new Promise((r) => ph.hub.proc.once('exit', r))
      return async () => {
        ph.hub = await ph.launchHub()
      }
    }
    case 'broker-kill-mosquitto': {
      const { dir, port } = ph.mosq
      await ph.mosq.kill9()
      return async () => {
        ph.mosq = await startMosquitto(dir, port)
      }
    }
    case 'disk-full': {
      const a = ph.agents.find((x) => x.role === 'disk')
      a.diskFull = true
      const file = join(a.dataDir, 'chaos-filler.bin')
      fillDisk(file, 0)
      return async () => {
        rmSync(file, { force: true })
        a.diskFull = false
      }
    }
    case 'partition-drop':
      ph.proxy.cut()
      return async () => ph.proxy.restore()
    case 'partition-stall':
      ph.proxy.stall(true)
      return async () => ph.proxy.stall(false)
    case 'clock-jump': {
      // Wall clock jumps an hour ahead (or 10 minutes back); monotonic time is left alone, as on a real device.
      writeFileSync(ph.clockFile, rand() < 0.5 ? '+3600\n' : '-600\n')
      return async () => writeFileSync(ph.clockFile, '+0\n')
    }
  }
  throw new Error(`unknown fault ${kind}`)
}

/** Waits for the deployment to end and checks it against every device. */
async function checkDeployment(ph, id, version, stats, label) {
  let rows
  try {
    rows = await waitFor(
      async () => {
        const v = await api(ph.hub.httpUrl, 'GET', `/api/v1/deployments/${id}`)
        return v.deployment.done ? v.devices : undefined
      },
      { timeoutMs: SETTLE_MS, intervalMs: 500, what: `deployment of ${version} final` },
    )
  } catch (err) {
    stats.violations.push(`${label}: ${err.message}`)
    return
  }
  for (const row of rows) {
    const a = ph.agents.find((x) => x.id === row.deviceId)
    let serving
    try {
      serving = (await api(a.url, 'GET', '/v1/models')).items.find((m) => m.name === 'c')?.version
    } catch (err) {
      serving = `unreachable (${err.message})`
    }
    if (row.state !== 'activated')
      stats.violations.push(`${label}: ${row.deviceId} ended ${row.state} (${row.code ?? ''})`)
    if (serving !== version) stats.violations.push(`${label}: ${row.deviceId} serves ${serving}, hub says ${row.state}`)
  }
}

function checkProcesses(ph, pids, stats, label) {
  for (const a of ph.agents)
    if (!alive(a.proc.pid) || (pids.get(a.id) !== a.proc.pid && !a.restarted))
      stats.violations.push(`${label}: agent ${a.id} is not the process we left running`)
  if (!alive(ph.hub.proc.pid)) stats.violations.push(`${label}: hub died`)
}

/** After the phase's agents stopped cleanly: the hub's request counts against the answers counted. */
async function checkTelemetry(ph, stats) {
  // The last batches were cut at close; give the hub a moment to commit them.
  await sleep(3000)
  for (const agent of ph.agents) {
    const s = await api(ph.hub.httpUrl, 'GET', `/api/v1/telemetry/summary?device=${encodeURIComponent(agent.id)}`)
    const stored = s.items.reduce((n, it) => n + it.requests, 0)
    const all = agent.lives.reduce((n, l) => n + l.ok, 0)
    const clean = agent.lives.filter((l) => l.clean).reduce((n, l) => n + l.ok, 0)
    const exact = agent.lives.length === 1 && !agent.everDiskFull
    stats.telemetry.push({
      device: agent.id,
      stored,
      answered: all,
      answeredInCleanLives: clean,
      lives: agent.lives.length,
    })
    if (stored > all) stats.violations.push(`telemetry: ${agent.id} stored ${stored} > ${all} answered (duplicates)`)
    else if (exact && stored !== all)
      stats.violations.push(`telemetry: ${agent.id} stored ${stored} != ${all} answered`)
    else if (!agent.everDiskFull && stored < clean)
      stats.violations.push(`telemetry: ${agent.id} stored ${stored} < ${clean} answered in cleanly ended lives`)
  }
}

/** Runs one phase for `ms`, and at least one round of every fault kind (seeded shuffled round-robin). */
async function runPhase(mode, ms, rand, tmp, stats, log) {
  const ph = await startPhase(mode, tmp, log)
  const kinds = [
    'agent-kill',
    'hub-kill',
    mode === 'embedded' ? 'broker-kill-embedded' : 'broker-kill-mosquitto',
    ...(canMount() ? ['disk-full'] : []),
    'partition-drop',
    'partition-stall',
    ...(existsSync(FAKETIME_LIB) ? ['clock-jump'] : []),
  ]
  for (let i = kinds.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1))
    ;[kinds[i], kinds[j]] = [kinds[j], kinds[i]]
  }
  const stopTraffic = startTraffic(ph, stats)
  const end = Date.now() + ms
  let current = 0
  try {
    for (let round = 0; round < kinds.length || Date.now() < end; round++) {
      const kind = kinds[round % kinds.length]
      const next = (current + 1) % VERSIONS.length
      const version = VERSIONS[next]
      const pids = new Map(ph.agents.map((a) => [a.id, a.proc.pid]))
      for (const a of ph.agents) a.restarted = false
      const body = { model: 'c', version, target: `tag=chaos=${mode}`, ...(next < current ? { rollback: true } : {}) }
      const t0 = Date.now()
      const id = (await api(ph.hub.httpUrl, 'POST', '/api/v1/deployments', body)).deployment.id
      await sleep(Math.floor(rand() * 1500))
      const heal = await inject(kind, ph, rand)
      for (const a of ph.agents) if (a.killed) a.restarted = true
      if (kind === 'disk-full') ph.agents.find((x) => x.role === 'disk').everDiskFull = true
      await sleep(1000 + Math.floor(rand() * 4000))
      await heal()
      const label = `${mode} #${round} ${kind} → ${version}`
      await checkDeployment(ph, id, version, stats, label)
      checkProcesses(ph, pids, stats, label)
      current = next
      stats.faults[kind] = (stats.faults[kind] ?? 0) + 1
      stats.iterations++
      log(`[chaos] ${label}: settled in ${Date.now() - t0} ms; violations so far ${stats.violations.length}`)
    }
  } finally {
    await stopTraffic()
    // Let the last windows be cut and acknowledged while still connected: a batch cut at close may not get
    // its PUBACK before the link goes down (it stays in that agent's queue, but the agent is not started again).
    await sleep(4000)
    for (const a of ph.agents) {
      await a.proc?.stop()
      a.life.clean = true
    }
    await checkTelemetry(ph, stats).catch((err) => stats.violations.push(`telemetry check: ${err.message}`))
    await stopPhase(ph)
  }
}

/** Runs the chaos suite for `minutes` (half embedded broker, half Mosquitto); `minutes: 0` is one round of each fault kind per broker. */
export async function runChaos({ minutes, seed = Date.now() % 1e9, log = console.log }) {
  const rand = mulberry32(seed) // a run is repeatable from its seed
  const tmp = mkdtempSync(join(tmpdir(), 'ef-chaos-'))
  const stats = {
    seed,
    minutes,
    iterations: 0,
    faults: {},
    violations: [],
    inferErrors: [],
    beforeFirstServe: 0,
    telemetry: [],
  }
  const t0 = Date.now()
  try {
    for (const mode of ['embedded', 'mosquitto']) await runPhase(mode, (minutes * 60_000) / 2, rand, tmp, stats, log)
  } finally {
    rmSync(tmp, { recursive: true, force: true })
  }
  stats.elapsedMs = Date.now() - t0
  return stats
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({
    options: { minutes: { type: 'string', default: '3' }, seed: { type: 'string' }, json: { type: 'string' } },
  })
  const stats = await runChaos({ minutes: Number(values.minutes), seed: values.seed ? Number(values.seed) : undefined })
  console.log(JSON.stringify(stats, null, 2))
  if (values.json) writeFileSync(values.json, JSON.stringify(stats, null, 2))
  process.exitCode = stats.violations.length ? 1 : 0
}
