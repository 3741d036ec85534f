#!/usr/bin/env node
// Artifact origin figures [EF-4.13]: a MB-sized model to N agents through an
// nginx origin (the hub's --blob-dir served as a CDN origin would) beside the
// same fleet through the hub's MQTT broadcast, alternating in one run, each
// `--runs` times with a fresh build: wall time from the deploy request to every
// agent activated, bytes nginx served (its access log), bytes the hub sent
// over MQTT, and the hub's CPU seconds. For the MQTT rounds nginx is stopped,
// so the agents' origin attempt is refused at once and they fall back.
// Usage: node test/bench/origin.mjs [--agents 20] [--procs 2] [--mb 20] [--runs 3]
import { mkdtempSync, rmSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir, cpus, loadavg } from 'node:os'
import { join } from 'node:path'
import { startHub, api, waitFor, spawnJson, stopProcess, ROOT } from '../support/fleet.mjs'
import { startNginx } from '../support/nginx.mjs'
import { freePort } from '../support/mosquitto.mjs'
import { matmulModel } from '../support/models.mjs'
import { benchArgs } from './support/args.mjs'

const { values: args } = benchArgs(['agents', 'procs', 'mb', 'runs'])
const AGENTS = Number(args.agents ?? 20)
const PROCS = Number(args.procs ?? 2)
const MB = Number(args.mb ?? 20)
const RUNS = Number(args.runs ?? 3)
const FP32 = encodeURIComponent(JSON.stringify({ precision: 'fp32' }))
const tmp = mkdtempSync(join(tmpdir(), 'ef-bench-origin-'))
const blobDir = join(tmp, 'blobs')

/** The hub process's CPU seconds so far (user + system, all threads). */
const cpuSeconds = (pid) => {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')
  return (Number(fields[11]) + Number(fields[12])) / 100 // utime, stime in clock ticks (100 Hz on Linux)
}
const stats = (xs) => {
  const s = [...xs].sort((a, b) => a - b)
  return { min: s[0], median: s[Math.floor(s.length / 2)], max: s[s.length - 1] }
}

const port = await freePort()
let nginx = await startNginx(join(tmp, 'nginx'), blobDir, { port })
const hub = await startHub({
  dataDir: join(tmp, 'hub'),
  extraArgs: ['--blob-dir', blobDir, '--artifact-url', nginx.url],
})
const pools = []
try {
  const specs = []
  for (let i = 0; i < AGENTS; i++) {
    const id = `org-${String(i).padStart(3, '0')}`
    const d = await api(hub.httpUrl, 'POST', '/api/v1/devices', {
      id,
      profile: 'industrial-x86',
      tags: { b: 'origin' },
    })
    specs.push({ deviceId: id, secret: d.secret, profile: 'industrial-x86', dataDir: join(tmp, 'agents', id) })
  }
  const per = Math.ceil(AGENTS / PROCS)
  for (let p = 0; p < PROCS; p++) {
    const file = join(tmp, `pool-${p}.json`)
    writeFileSync(file, JSON.stringify(specs.slice(p * per, (p + 1) * per)))
    const pool = join(ROOT, 'test', 'bench', 'support', 'agent-pool.mjs')
    pools.push(
      (await spawnJson(pool, [hub.mqttUrl, hub.publicKey, file, 'mqtt'], 'ready', { timeoutMs: 120_000 })).proc,
    )
  }
  await waitFor(
    async () => (await api(hub.httpUrl, 'GET', '/api/v1/devices?limit=1000')).items.every((d) => d.online),
    { timeoutMs: 120_000, what: 'agents online' },
  )

  const round = async (path, run) => {
    // Rising versions in the order deployed: an older one would be refused as a downgrade.
    const version = `1.${2 * run + (path === 'origin' ? 0 : 1)}.0`
    const model = await matmulModel(MB * 1e6, path === 'origin' ? 100 + run : 200 + run)
    const reg = await api(hub.httpUrl, 'POST', `/api/v1/models?name=big&version=${version}&options=${FP32}`, model)
    const { artifact, sizeBytes } = reg.builds[0]
    if (path === 'origin') nginx = await startNginx(join(tmp, `nginx-${run}`), blobDir, { port })
    const before = (await api(hub.httpUrl, 'GET', '/api/v1/hub')).distribution
    const cpu0 = cpuSeconds(hub.proc.pid)
    const t0 = performance.now()
    const dep = await api(hub.httpUrl, 'POST', '/api/v1/deployments', { model: 'big', version, target: 'tag=b=origin' })
    const done = await waitFor(
      async () => {
        const v = await api(hub.httpUrl, 'GET', `/api/v1/deployments/${dep.deployment.id}`)
        return v.deployment.done ? v : undefined
      },
      { timeoutMs: 600_000, intervalMs: 200, what: `${path} round ${run}` },
    )
    const seconds = (performance.now() - t0) / 1000
    const hubCpu = cpuSeconds(hub.proc.pid) - cpu0
    const after = (await api(hub.httpUrl, 'GET', '/api/v1/hub')).distribution
    const activated = done.devices.filter((d) => d.state === 'activated').length
    const failures = [...new Set(done.devices.filter((d) => d.state !== 'activated').map((d) => d.code))]
    const originBytes = path === 'origin' ? nginx.bytesServed(`/${artifact}`) : 0
    await nginx.stop() // MQTT rounds run with the origin down
    const mqttBytes = after.broadcastBytes + after.repairBytes - (before.broadcastBytes + before.repairBytes)
    const row = {
      path,
      run,
      sizeBytes,
      activated,
      failures,
      seconds,
      originBytes,
      mqttBytes,
      hubCpu,
      load1: loadavg()[0],
    }
    console.log(JSON.stringify(row))
    return row
  }

  await nginx.stop()
  const rows = []
  for (let run = 1; run <= RUNS; run++) rows.push(await round('origin', run), await round('mqtt', run))
  const summary = {}
  for (const path of ['origin', 'mqtt']) {
    const mine = rows.filter((r) => r.path === path)
    summary[path] = {
      seconds: stats(mine.map((r) => r.seconds)),
      hubCpuSeconds: stats(mine.map((r) => r.hubCpu)),
      originMB: stats(mine.map((r) => r.originBytes / 1e6)),
      hubMqttMB: stats(mine.map((r) => r.mqttBytes / 1e6)),
      allActivated: mine.every((r) => r.activated === AGENTS),
    }
  }
  console.log(
    JSON.stringify({
      machine: `${cpus().length} × ${cpus()[0].model}, node ${process.version}`,
      agents: AGENTS,
      mb: MB,
      runs: RUNS,
      summary,
    }),
  )
} finally {
  await Promise.all(pools.map((p) => stopProcess(p)))
  await hub.stop()
  await nginx.stop()
  rmSync(tmp, { recursive: true, force: true })
}
