#!/usr/bin/env node
// Connect rate over TLS [EF-10, issue 11]: devices reconnecting to a TLS hub
// (embedded broker), authenticated by password vs by a hub-CA client
// certificate (mutual TLS), side by side in one run. Raw mqtt.js clients in a
// few worker processes each connect, wait for CONNACK, disconnect and start
// again, `--concurrency` at a time, for `--seconds`; the figure is CONNACKs
// per second and per minute over the measured window (the target is 10,000 reconnects within a minute).
// Usage: node test/bench/connect-rate.mjs [--devices 400] [--procs 4] [--concurrency 64] [--seconds 30]
import { fork } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { fileURLToPath } from 'node:url'
import mqtt from 'mqtt'

const self = fileURLToPath(import.meta.url)

if (process.argv[2] === '--worker') {
  // Worker: argv = --worker specFile url caFile mode seconds concurrency
  const [, , , specFile, url, caFile, mode, seconds, concurrency] = process.argv
  const specs = JSON.parse(readFileSync(specFile, 'utf8'))
  const ca = readFileSync(caFile)
  const deadline = Date.now() + Number(seconds) * 1000
  let ok = 0
  let failed = 0
  let next = 0
  const once = (s) =>
    new Promise((resolve) => {
      const client = mqtt.connect(url, {
        clientId: s.id,
        ca,
        reconnectPeriod: 0,
        connectTimeout: 10_000,
        clean: true,
        ...(mode === 'cert' ? { cert: s.cert, key: s.key } : { username: s.id, password: s.secret }),
      })
      client.once('connect', () => {
        ok++
        client.end(true, resolve)
      })
      client.once('error', () => {
        failed++
        client.end(true, resolve)
      })
    })
  const lane = async () => {
    while (Date.now() < deadline) await once(specs[next++ % specs.length])
  }
  // Each lane owns distinct ids (a device id is one session): lanes ≤ specs.
  await Promise.all(Array.from({ length: Math.min(Number(concurrency), specs.length) }, lane))
  process.send({ ok, failed })
  process.exit(0)
}

const { values: flags } = parseArgs({
  options: {
    devices: { type: 'string' },
    procs: { type: 'string' },
    concurrency: { type: 'string' },
    seconds: { type: 'string' },
  },
})
const DEVICES = Number(flags.devices ?? 400)
const PROCS = Number(flags.procs ?? 4)
const CONC = Number(flags.concurrency ?? 64)
const SECONDS = Number(flags.seconds ?? 30)
const { startHub, api } = await import('../support/fleet.mjs')
const tmp = mkdtempSync(join(tmpdir(), 'ef-bench-connect-'))
const hub = await startHub({ dataDir: join(tmp, 'hub'), logLevel: 'error', extraArgs: ['--tls', '--mqtts-port', '0'] })
const out = {
  machine: `${cpus().length} × ${cpus()[0].model}, node ${process.version}`,
  loadBefore: loadavg()
    .map((x) => x.toFixed(2))
    .join(' '),
  devices: DEVICES,
  processes: PROCS,
  concurrency: CONC * PROCS,
  seconds: SECONDS,
}
try {
  const specs = []
  for (let i = 0; i < DEVICES; i++) {
    const id = `cr-${String(i).padStart(5, '0')}`
    const d = await api(hub.httpUrl, 'POST', '/api/v1/devices', { id, profile: 'gateway-rpi4', cert: true })
    specs.push({ id, secret: d.secret, cert: d.tls.cert, key: d.tls.key })
  }
  for (const mode of ['password', 'cert']) {
    const per = Math.ceil(DEVICES / PROCS)
    const results = await Promise.all(
      Array.from({ length: PROCS }, (_, p) => {
        const file = join(tmp, `${mode}-${p}.json`)
        writeFileSync(file, JSON.stringify(specs.slice(p * per, (p + 1) * per)))
        const w = fork(self, ['--worker', file, hub.mqttUrl, hub.caFile, mode, String(SECONDS), String(CONC)])
        return new Promise((resolve) => w.once('message', resolve))
      }),
    )
    const ok = results.reduce((a, r) => a + r.ok, 0)
    const failed = results.reduce((a, r) => a + r.failed, 0)
    out[mode] = {
      connacks: ok,
      failed,
      perSecond: Math.round(ok / SECONDS), // every worker connects for --seconds
      perMinute: Math.round((ok / SECONDS) * 60),
    }
    console.error(mode, JSON.stringify(out[mode]))
  }
  out.loadAfter = loadavg()
    .map((x) => x.toFixed(2))
    .join(' ')
  console.log(JSON.stringify(out, null, 2))
} finally {
  await hub.stop()
  rmSync(tmp, { recursive: true, force: true })
}
