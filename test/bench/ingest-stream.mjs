#!/usr/bin/env node
// Telemetry ingest through NATS JetStream [EF-9.13] beside the default SQLite
// path, in one run on the same machine: a real hub process (embedded broker,
// SQLite writer thread), raw MQTT device connections (support/raw-publisher.mjs,
// QoS 1, a window of unacknowledged PUBLISHes each) and, for `stream`, a
// throwaway 3-node nats-server cluster (test/support/nats.mjs, R3 file streams)
// on the same 2 cores. Per run and mode:
//   acked/s   PUBACKs the devices got (SQLite: committed; stream: in EF_TELEMETRY),
//   stored/s  batches committed to SQLite over the same window (stream: by the consumer),
//   drain s   after the devices stop, until every acknowledged batch is in SQLite.
// Runs alternate the modes so drifting machine load hits both alike; min / median / max printed.
// Usage: node test/bench/ingest-stream.mjs [--devices 20] [--records 20] [--seconds 8] [--inflight 400] [--runs 3]
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir, loadavg } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { createRequire } from 'node:module'
import mqtt from 'mqtt'
import { startHub, api, waitFor, ROOT } from '../support/fleet.mjs'
import { startNatsCluster } from '../support/nats.mjs'
import { rawPublisher } from './support/raw-publisher.mjs'

const { values: flags } = parseArgs({
  options: {
    devices: { type: 'string' },
    records: { type: 'string' },
    seconds: { type: 'string' },
    inflight: { type: 'string' },
    runs: { type: 'string' },
  },
})
const DEVICES = Number(flags.devices ?? 20)
const RECORDS = Math.min(10, Number(flags.records ?? 10))
const SECONDS = Number(flags.seconds ?? 8)
const INFLIGHT = Number(flags.inflight ?? 400)
const RUNS = Number(flags.runs ?? 3)
const { LATENCY_BUCKETS_MS, topics } = await import(join(ROOT, 'shared', 'dist', 'index.js'))
const hubRequire = createRequire(join(ROOT, 'hub', 'package.json'))
const { connect: natsConnect } = hubRequire('nats')

const tmp = mkdtempSync(join(tmpdir(), 'ef-bench-stream-'))
/** What `uptime` prints about load, without running it. */
const uptime = () =>
  `${new Date().toISOString()} load average: ${loadavg()
    .map((x) => x.toFixed(2))
    .join(', ')}`

/** Devices that state m0..m{RECORDS-1}@1.0.0 loaded, so the hub takes their telemetry [EF-2.6.8]. */
async function provisionFleet(hub) {
  const specs = []
  const loaded = Array.from({ length: RECORDS }, (_, k) => ({
    name: `m${k}`,
    version: '1.0.0',
    precision: 'fp32',
    artifact: '0'.repeat(64),
    slot: 'a',
  }))
  for (let i = 0; i < DEVICES; i++) {
    const id = `gw-${String(i).padStart(3, '0')}`
    const { secret } = await api(hub.httpUrl, 'POST', '/api/v1/devices', { id, profile: 'gateway-rpi4', tags: {} })
    const client = mqtt.connect(hub.mqttUrl, { clientId: id, username: id, password: secret, reconnectPeriod: 0 })
    await new Promise((res, rej) => client.once('connect', res).once('error', rej))
    const state = { v: 1, deviceId: id, online: true, ts: Date.now(), models: loaded }
    await client.publishAsync(topics.state(id), JSON.stringify(state), { qos: 1, retain: true })
    await client.endAsync()
    specs.push({ id, secret })
  }
  return specs
}

function batchTemplate(id) {
  const latency = new Array(LATENCY_BUCKETS_MS.length + 1).fill(0).map((_, i) => (i === 4 ? 90 : 0))
  const models = Array.from({ length: RECORDS }, (_, k) => ({
    model: `m${k}`,
    version: '1.0.0',
    requests: 100,
    errors: 1,
    latency,
    latencySumMs: 80.5,
  }))
  const now = Date.now()
  return Buffer.from(
    `{"v":1,"deviceId":"${id}","batchId":"${id}-${'0'.repeat(10)}","from":${now - 1000},"to":${now},${JSON.stringify({ models }).slice(1)}`,
  )
}

async function oneRun(mode, cluster, run) {
  const extraArgs = mode === 'stream' ? ['--stream', cluster.streamUrl] : []
  const hub = await startHub({
    dataDir: join(tmp, `${mode}-${run}`),
    logLevel: 'warn',
    extraArgs,
    env: {
      EF_RETRAINING: JSON.stringify({ drift: { intervalMs: 0 }, retention: { enabled: false } }),
      EF_BROKER: JSON.stringify({
        quota: { messagesPerSec: 1e9, messageBurst: 1e9, bytesPerSec: 1e12, byteBurst: 1e12 },
      }),
    },
  })
  try {
    const specs = await provisionFleet(hub)
    const window = Math.max(1, Math.floor(INFLIGHT / DEVICES))
    const raws = []
    for (const spec of specs) {
      const tpl = batchTemplate(spec.id)
      const seqAt = tpl.toString('latin1').indexOf(`"batchId":"${spec.id}-`) + `"batchId":"${spec.id}-`.length
      raws.push(
        await rawPublisher({
          url: hub.mqttUrl,
          clientId: spec.id,
          username: spec.id,
          password: spec.secret,
          topic: topics.telemetry(spec.id),
          payload: tpl,
          window,
          patch: (buf, seq) => buf.write(String(seq).padStart(10, '0'), seqAt, 'latin1'),
        }),
      )
    }
    const status = () => api(hub.httpUrl, 'GET', '/api/v1/retraining/status')
    const acked = () => raws.reduce((n, r) => n + r.stats.acked, 0)
    for (const r of raws) r.start()
    await new Promise((r) => setTimeout(r, 2000)) // warm-up
    const [s0, a0, t0] = [await status(), acked(), performance.now()]
    await new Promise((r) => setTimeout(r, SECONDS * 1000))
    const [s1, a1, secs] = [await status(), acked(), (performance.now() - t0) / 1000]
    await Promise.all(raws.map((r) => r.stop()))
    const total = acked()
    const d0 = performance.now()
    await waitFor(async () => (await status()).ingest.batches >= total, { timeoutMs: 120_000, what: 'the drain' })
    const drain = (performance.now() - d0) / 1000
    for (const r of raws) r.end()
    return { ackedPerS: (a1 - a0) / secs, storedPerS: (s1.ingest.batches - s0.ingest.batches) / secs, drain }
  } finally {
    await hub.stop()
  }
}

const cluster = await startNatsCluster(join(tmp, 'nats'), { streamUser: true })
const nc = await natsConnect({ servers: cluster.clientUrls, ...cluster.streamCredentials })
const jsm = await nc.jetstreamManager({ timeout: 20_000 })
const results = { sqlite: [], stream: [] }
console.log(`devices ${DEVICES}, ${RECORDS} events per batch, window ${INFLIGHT}, ${SECONDS} s per run`)
console.log(`load before: ${uptime()}`)
try {
  for (let run = 0; run < RUNS; run++)
    for (const mode of ['sqlite', 'stream']) {
      for (const name of ['EF_TELEMETRY', 'EF_FEED']) await jsm.streams.delete(name).catch(() => false)
      const r = await oneRun(mode, cluster, run)
      results[mode].push(r)
      console.log(
        `run ${run + 1} ${mode.padEnd(6)} acked ${Math.round(r.ackedPerS)} batches/s, stored ${Math.round(r.storedPerS)} batches/s, drain ${r.drain.toFixed(1)} s | load ${loadavg()
          .map((x) => x.toFixed(2))
          .join(' ')}`,
      )
    }
} finally {
  await nc.close()
  await cluster.stop()
  rmSync(tmp, { recursive: true, force: true })
}
const mmm = (xs) => {
  const s = [...xs].sort((a, b) => a - b)
  return `${Math.round(s[0])} / ${Math.round(s[Math.floor(s.length / 2)])} / ${Math.round(s[s.length - 1])}`
}
console.log(`load after: ${uptime()}`)
console.log('mode    acked batches/s (min/median/max)   stored batches/s (min/median/max)')
for (const mode of ['sqlite', 'stream'])
  console.log(
    `${mode.padEnd(7)} ${mmm(results[mode].map((r) => r.ackedPerS)).padEnd(34)} ${mmm(results[mode].map((r) => r.storedPerS))}`,
  )
