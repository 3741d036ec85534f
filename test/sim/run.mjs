#!/usr/bin/env node
// `pnpm sim --devices N [--procs P] [--hub URL --token T] [--broker URL] [--rate R] [--duration S]`:
// N simulated devices against a real hub through the real protocol
// (fleet.mjs). Without --hub it starts a hub of its own in a temp folder.
// --broker: where devices connect when it is not the hub's own broker URL
// (a hub run with an external Mosquitto). Prints counters every 5 s and a
// summary: connects, telemetry sent vs acknowledged vs stored by the hub.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { api, setToken, startHub } from '../support/fleet.mjs'
import { deviceSpec, provisionFleet, startSimulator } from './fleet.mjs'

const { values: args } = parseArgs({
  options: {
    devices: { type: 'string' },
    procs: { type: 'string' },
    hub: { type: 'string' },
    token: { type: 'string' },
    broker: { type: 'string' },
    rate: { type: 'string' },
    duration: { type: 'string' },
    prefix: { type: 'string' },
  },
})
const DEVICES = Number(args.devices ?? 1000)
const PROCS = Number(args.procs ?? Math.max(1, Math.min(8, Math.ceil(DEVICES / 2500))))
const RATE = Number(args.rate ?? 0.2)
const DURATION_S = Number(args.duration ?? 30)
const PREFIX = args.prefix ?? `sim${Date.now().toString(36)}`

let hub
let tmp
if (args.hub) {
  hub = { httpUrl: args.hub }
  if (args.token ?? process.env.EDGEFLEET_TOKEN) setToken(args.hub, args.token ?? process.env.EDGEFLEET_TOKEN)
} else {
  tmp = mkdtempSync(join(tmpdir(), 'ef-sim-'))
  hub = await startHub({ dataDir: join(tmp, 'hub'), logLevel: 'warn' })
  console.log(`hub started: ${hub.httpUrl} (data in ${tmp})`)
}
try {
  const t0 = performance.now()
  const specs = Array.from({ length: DEVICES }, (_, i) => deviceSpec(PREFIX, i))
  const devices = await provisionFleet(hub.httpUrl, specs)
  const mqttUrl = args.broker ?? (await api(hub.httpUrl, 'GET', '/healthz')).mqttUrl
  console.log(
    `${DEVICES} devices provisioned in ${((performance.now() - t0) / 1000).toFixed(1)} s; ${PROCS} processes → ${mqttUrl}`,
  )
  const sim = startSimulator({ devices, mqttUrl, procs: PROCS, rate: RATE })
  const show = () => {
    const t = sim.totals()
    console.log(
      `connected ${t.connected ?? 0}/${DEVICES}, connects ${t.connects ?? 0}, disconnects ${t.disconnects ?? 0}, ` +
        `telemetry ${t.telemetryAcked ?? 0}/${t.telemetrySent ?? 0} acked (${t.eventsSent ?? 0} events), ` +
        `deploys ${t.deploysDone ?? 0}/${t.deploys ?? 0}, chunk MiB ${((t.chunkBytes ?? 0) / 2 ** 20).toFixed(1)}`,
    )
  }
  const timer = setInterval(show, 5000)
  await new Promise((r) => setTimeout(r, DURATION_S * 1000))
  clearInterval(timer)
  show()
  await sim.stop()
  const t = sim.totals()
  const status = await api(hub.httpUrl, 'GET', '/api/v1/retraining/status').catch(() => undefined)
  if (status && !args.hub)
    console.log(
      `hub stored ${status.ingest.batches} telemetry batches; devices had ${t.telemetryAcked} acknowledged of ${t.telemetrySent} sent`,
    )
} finally {
  await hub.stop?.()
  if (tmp) rmSync(tmp, { recursive: true, force: true })
}
