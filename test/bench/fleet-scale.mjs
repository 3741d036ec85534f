#!/usr/bin/env node
// The scaling curve (issue 12): for each fleet size and broker, a real hub and
// N simulated devices (test/sim: one MQTT connection each, telemetry at
// --rate batches/s per device) and these figures: provisioning time (bulk
// API), time for all to connect, hub RSS and CPU with the fleet online and
// reporting, sustained ingest (events/s stored), `GET /api/v1/devices?limit=50`
// and the console's fleet summary and page latency (median of 5), a 1 MB model
// to every device (deploy → all activated), a 4-wave rollout with no soak
// (control-plane time), and the time for every device to be back after a hub
// restart. Beside the 1 MB deploy, in the same run and through the same
// broker, a raw fan-out of the same bytes: a bare mqtt.js publisher sends
// them in the hub's chunk size to a topic every simulated device subscribed
// to (issue 12's "≤ 2× the raw fan-out" target). Writes JSON and draws
// docs/benchmarks/fleet-scale.svg.
// Usage: node test/bench/fleet-scale.mjs [--points 1000,2000,5000,10000,20000] [--brokers aedes,mosquitto]
//          [--procs 4] [--rate 0.2] [--skip raw,deploy,rollout] [--out docs/benchmarks/fleet-scale.json] [--svg docs/benchmarks/fleet-scale.svg]
import { mkdtempSync, rmSync, readFileSync, writeFileSync, existsSync } from 'node:fs'
import { tmpdir, loadavg } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { connectRawPublisher, publishWindowed } from './support/raw-fanout.mjs'
import { api, startHub, waitFor, ROOT } from '../support/fleet.mjs'
import { startMosquitto } from '../support/mosquitto.mjs'
import { matmulModel } from '../support/models.mjs'
import { deviceSpec, provisionFleet, startSimulator } from '../sim/fleet.mjs'
import { drawFleetScale } from './support/fleet-scale-svg.mjs'

const { values: flags } = parseArgs({
  options: {
    points: { type: 'string' },
    brokers: { type: 'string' },
    procs: { type: 'string' },
    rate: { type: 'string' },
    out: { type: 'string' },
    svg: { type: 'string' },
    skip: { type: 'string' },
  },
})
const POINTS = (flags.points ?? '1000,2000,5000,10000,20000').split(',').map(Number)
const BROKERS = (flags.brokers ?? 'aedes,mosquitto').split(',')
const RATE = Number(flags.rate ?? 0.2)
const OUT = flags.out ?? join(ROOT, 'docs', 'benchmarks', 'fleet-scale.json')
const SVG = flags.svg ?? join(ROOT, 'docs', 'benchmarks', 'fleet-scale.svg')
const skip = new Set((flags.skip ?? '').split(',').filter(Boolean))
const PROFILES = ['gateway-rpi4', 'industrial-x86'] // two builds per model version, made at registration
const FP32 = encodeURIComponent(JSON.stringify({ precision: 'fp32' }))

const proc = (pid) => {
  try {
    const st = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')
    const rss = Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) / 1024
    return { cpuS: (Number(st[11]) + Number(st[12])) / 100, rssMiB: rss }
  } catch {
    return { cpuS: NaN, rssMiB: NaN }
  }
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
async function latencyMs(hub, path, n = 5) {
  const ms = []
  for (let i = 0; i < n; i++) {
    const t0 = performance.now()
    if (path.startsWith('/api/')) await api(hub.httpUrl, 'GET', path)
    else await (await fetch(new URL(path, hub.httpUrl))).text()
    ms.push(performance.now() - t0)
  }
  return median(ms)
}
const secs = (t0) => (performance.now() - t0) / 1000

async function deployedWithin(hub, body, what) {
  const t0 = performance.now()
  const dep = await api(hub.httpUrl, 'POST', '/api/v1/deployments', body)
  const v = await waitFor(
    async () => {
      const x = await api(hub.httpUrl, 'GET', `/api/v1/deployments/${dep.deployment.id}`)
      return x.deployment.done ? x : undefined
    },
    { timeoutMs: 900_000, intervalMs: 500, what },
  )
  return { s: secs(t0), counts: v.deployment.counts }
}

const RAW_FILTER = `ef/v1/art/${'f'.repeat(64)}/+`
const CHUNK = 256 * 1024 // the hub's broadcast chunk size (shared DEFAULT_CHUNK_SIZE)

/** Seconds for `bytes` to reach every simulated device by raw fan-out, after a probe shows all subscribed. */
async function rawFanoutS(hub, mosq, tmp, sim, deviceCount, bytes) {
  sim.rawSubscribe(RAW_FILTER)
  const hubSecret = JSON.parse(readFileSync(join(tmp, 'hub', 'hub-keys.json'), 'utf8')).hubSecret
  const pub = await connectRawPublisher({ mqttUrl: hub.mqttUrl, hubSecret, mosq })
  const prefix = RAW_FILTER.slice(0, -1)
  try {
    // Probes until one reaches every device: every subscription is live (SUBACKs are not counted).
    for (let i = 0; ; i++) {
      const before = sim.totals().rawMessages ?? 0
      await publishWindowed(pub, [Buffer.from('probe')], () => `${prefix}probe${i}`)
      try {
        await sim.until((t) => t.rawMessages - before >= deviceCount, 5000, 'probe')
        break
      } catch {
        if (i === 20) throw new Error('raw fan-out: not every device subscribed')
      }
    }
    const payloads = []
    for (let off = 0; off < bytes; off += CHUNK) payloads.push(Buffer.alloc(Math.min(CHUNK, bytes - off), off & 0xff))
    await new Promise((r) => setTimeout(r, 1000)) // the last probe's stragglers counted before the baseline
    const base = sim.totals().rawBytes
    const t0 = performance.now()
    await publishWindowed(pub, payloads, (n) => `${prefix}${n}`)
    await sim.until((t) => t.rawBytes - base >= deviceCount * bytes, 900_000, 'raw fan-out')
    return secs(t0)
  } finally {
    await pub.endAsync()
  }
}

/** One point of the curve: N devices on one broker. */
async function point(broker, deviceCount) {
  const tmp = mkdtempSync(join(tmpdir(), `ef-scale-${broker}-${deviceCount}-`))
  const mosq = broker === 'mosquitto' ? await startMosquitto(join(tmp, 'mosquitto')) : undefined
  const extraArgs = mosq
    ? ['--broker', mosq.url, '--mosquitto-dir', mosq.dir, '--mosquitto-pid-file', mosq.pidFile]
    : []
  const env = { EF_RETRAINING: JSON.stringify({ drift: { intervalMs: 0 }, retention: { enabled: false } }) }
  let hub = await startHub({ dataDir: join(tmp, 'hub'), logLevel: 'warn', extraArgs, env })
  const result = { broker, devices: deviceCount, loadBefore: loadavg()[0] }
  let sim
  try {
    let t0 = performance.now()
    const devices = await provisionFleet(
      hub.httpUrl,
      Array.from({ length: deviceCount }, (_, i) => deviceSpec(`n${deviceCount}`, i, PROFILES)),
    )
    result.provisionS = secs(t0)
    let buildBytes = 0
    for (const v of ['2.0.0', '3.0.0']) {
      const reg = await api(
        hub.httpUrl,
        'POST',
        `/api/v1/models?name=wake&version=${v}&options=${FP32}`,
        await matmulModel(1_000_000, Number(v[0])),
      )
      buildBytes ||= reg.builds[0].sizeBytes
    }
    const procs = Number(flags.procs ?? Math.max(2, Math.min(8, Math.ceil(deviceCount / 2500))))
    t0 = performance.now()
    sim = startSimulator({ devices, mqttUrl: hub.mqttUrl, procs, rate: RATE })
    await sim.until((t) => t.connected === deviceCount, 900_000, 'all connected')
    result.connectS = secs(t0)
    // Steady state: the fleet online and reporting, 20 s.
    await new Promise((res) => setTimeout(res, 5000))
    const s0 = await api(hub.httpUrl, 'GET', '/api/v1/retraining/status')
    const p0 = proc(hub.pid)
    const w0 = performance.now()
    await new Promise((res) => setTimeout(res, 20_000))
    const s1 = await api(hub.httpUrl, 'GET', '/api/v1/retraining/status')
    const p1 = proc(hub.pid)
    const wS = secs(w0)
    const eventsPerBatch = 1.5 // deviceSpec: every device runs wake, every other one vad too
    result.ingestEventsPerS = ((s1.ingest.batches - s0.ingest.batches) * eventsPerBatch) / wS
    result.hubCpuCores = (p1.cpuS - p0.cpuS) / wS
    result.hubRssMiB = p1.rssMiB
    if (mosq) result.mosquittoRssMiB = proc(mosq.proc.pid).rssMiB
    result.devicesListMs = await latencyMs(hub, '/api/v1/devices?limit=50')
    result.fleetSummaryMs = await latencyMs(hub, '/api/v1/fleet/summary')
    result.fleetPageMs = await latencyMs(hub, '/api/v1/fleet/devices?limit=50')
    if (!skip.has('raw')) result.rawFanout1MbS = await rawFanoutS(hub, mosq, tmp, sim, deviceCount, buildBytes)
    if (!skip.has('deploy')) {
      const d = await deployedWithin(hub, { model: 'wake', version: '2.0.0', target: 'tag=sim=1' }, '1 MB to all')
      result.model1MbS = d.s
      result.model1MbCounts = d.counts
      if (result.rawFanout1MbS) result.model1MbRatio = d.s / result.rawFanout1MbS
      result.hubRssAfterDeployMiB = proc(hub.pid).rssMiB
    }
    if (!skip.has('rollout')) {
      t0 = performance.now()
      const ro = await api(hub.httpUrl, 'POST', '/api/v1/rollouts', {
        model: 'wake',
        version: '3.0.0',
        selector: 'tag=sim=1',
        waves: [{ percent: 1 }, { percent: 10 }, { percent: 50 }, { percent: 100 }],
        soakMs: 0,
        gates: { minRequests: 0 },
        schedule: { maintenanceWindows: false },
      })
      const id = ro.rollout?.id ?? ro.id
      const done = await waitFor(
        async () => {
          const x = await api(hub.httpUrl, 'GET', `/api/v1/rollouts/${id}`)
          const st = x.rollout?.state ?? x.state
          return ['completed', 'paused', 'aborted', 'rolled_back'].includes(st) ? st : undefined
        },
        { timeoutMs: 900_000, intervalMs: 500, what: 'rollout' },
      )
      result.rollout4WavesS = secs(t0)
      result.rolloutState = done
    }
    // Restart: every device drops, the hub comes back on the same ports and data.
    const ports = { mqttPort: Number(new URL(hub.mqttUrl).port), httpPort: Number(new URL(hub.httpUrl).port) }
    if (!mosq) {
      await hub.stop()
      await sim.until((t) => t.connected === 0, 120_000, 'all dropped')
      t0 = performance.now()
      hub = await startHub({ dataDir: join(tmp, 'hub'), logLevel: 'warn', extraArgs, env, ...ports })
      await sim.until((t) => t.connected === deviceCount, 900_000, 'all back')
      result.reconnectAfterRestartS = secs(t0)
    } else {
      // With Mosquitto the devices' connections do not go through the hub: restart the broker instead.
      await mosq.stop()
      await sim.until((t) => t.connected === 0, 120_000, 'all dropped')
      t0 = performance.now()
      const again = await startMosquitto(mosq.dir, mosq.port)
      Object.assign(mosq, again)
      await sim.until((t) => t.connected === deviceCount, 900_000, 'all back')
      result.reconnectAfterRestartS = secs(t0)
    }
    const t = sim.totals()
    result.sim = {
      connects: t.connects,
      refused: Object.keys(t).filter((k) => k.startsWith('refused')),
      shed: t.closedBeforeConnack,
      cpuS: t.cpuUs / 1e6,
    }
  } catch (err) {
    result.error = String(err?.message ?? err).slice(0, 300)
  } finally {
    await sim?.stop()
    await hub.stop()
    await mosq?.stop()
    rmSync(tmp, { recursive: true, force: true })
  }
  result.loadAfter = loadavg()[0]
  return result
}

const results = existsSync(OUT) ? JSON.parse(readFileSync(OUT, 'utf8')) : []
for (const broker of BROKERS)
  for (const N of POINTS) {
    const r = { ...(await point(broker, N)), at: new Date().toISOString() }
    console.log(JSON.stringify(r))
    const i = results.findIndex((x) => x.broker === broker && x.devices === N)
    if (i >= 0) results[i] = r
    else results.push(r)
    writeFileSync(OUT, JSON.stringify(results, null, 2) + '\n')
    writeFileSync(SVG, drawFleetScale(results))
  }
