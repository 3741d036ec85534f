#!/usr/bin/env node
// Retraining-loop figures (issue 7), all in one run on the same machine:
//   A. the bare SQLite floor: better-sqlite3, WAL, synchronous=NORMAL, one
//      index, single-row inserts in transactions of 5,000, and rows that are
//      JSON batches of 100 events (the two figures of shared/BASELINES.md);
//   B. sustained telemetry ingest through the real path: mqtt.js devices →
//      the hub's embedded aedes → the hub's MQTT client → decode + TypeBox
//      validation → batched SQLite transactions with rollups [EF-9.1, EF-9.2],
//      in a real hub process; events/s and the hub's RSS (peak, sampled);
//   C. feed throughput: samples published over MQTT, then the feed streamed
//      over HTTP as NDJSON (records/s), and a dataset export (records/s);
//   D. drift computation over ≥ 1M raw telemetry rows: the hub's evaluation
//      (rollups) beside a naive recomputation from the raw rows.
// An "event" is one per-model metrics record of a batch (one `telemetry`
// row: counts, latency histogram, confidence bins, an input sketch).
// The simulated devices of B are raw MQTT 3.1.1 connections (support/raw-publisher.mjs:
// mqtt-packet-encoded, pre-built QoS 1 PUBLISHes, a window of unacknowledged
// ones each) so the generator leaves the two cores to the hub; `--client mqttjs`
// uses one mqtt.js client per device instead (its publish path costs several
// times more CPU per message, which the hub then competes with).
// Usage: node test/bench/retraining.mjs [--devices 40] [--records 20] [--seconds 20] [--inflight 640] [--samples 20000] [--client raw|mqttjs]
import { mkdtempSync, rmSync, readFileSync, statSync } from 'node:fs'
import { tmpdir, cpus } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { createRequire } from 'node:module'
import mqtt from 'mqtt'
import { startHub, api, waitFor, ROOT } from '../support/fleet.mjs'
import { rawPublisher } from './support/raw-publisher.mjs'

const { values: flags } = parseArgs({
  options: {
    devices: { type: 'string' },
    records: { type: 'string' },
    seconds: { type: 'string' },
    inflight: { type: 'string' },
    samples: { type: 'string' },
    client: { type: 'string' },
  },
})
const DEVICES = Number(flags.devices ?? 40)
const RECORDS = Number(flags.records ?? 20)
// Batch entries are m0..m9 at 1.0.0 and 1.1.0, the versions each device states loaded (below).
if (RECORDS > 20) throw new RangeError('--records is at most 20 (ten models × two versions)')
const SECONDS = Number(flags.seconds ?? 20)
const INFLIGHT = Number(flags.inflight ?? 640)
const CLIENT = flags.client ?? 'raw'
const SAMPLES = Number(flags.samples ?? 20_000)
const require = createRequire(join(ROOT, 'hub', 'package.json'))
const Database = require('better-sqlite3')
const { FEATURE_BUCKETS, LATENCY_BUCKETS_MS, topics } = await import(join(ROOT, 'shared', 'dist', 'index.js'))

const rssMiB = (pid) => {
  try {
    return Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) / 1024
  } catch {
    return NaN
  }
}
const fmt = (n) => Math.round(n).toLocaleString('en-US')
/** CPU seconds (user + system, all threads) a process has used so far. */
const cpuSecs = (pid) => {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')
  return (Number(f[11]) + Number(f[12])) / 100
}
const tmp = mkdtempSync(join(tmpdir(), 'ef-bench-retrain-'))
const out = {
  machine: `${cpus().length} × ${cpus()[0].model}, node ${process.version}`,
  devices: DEVICES,
  recordsPerBatch: RECORDS,
}

// ------------------------------------------------------------------ A: floor
{
  const db = new Database(join(tmp, 'floor.db'))
  db.pragma('journal_mode = WAL')
  db.pragma('synchronous = NORMAL')
  db.exec('CREATE TABLE t (device TEXT, batch TEXT, ts INTEGER, v INTEGER, body TEXT); CREATE INDEX t_ts ON t(ts)')
  const ins = db.prepare('INSERT INTO t VALUES (?,?,?,?,?)')
  const N = 500_000
  let t0 = performance.now()
  for (let i = 0; i < N; i += 5000)
    db.transaction(() => {
      for (let k = i; k < i + 5000; k++) ins.run('dev-1', `b${k}`, k, k, null)
    })()
  out.floorRowsPerS = N / ((performance.now() - t0) / 1000)
  const body = JSON.stringify(Array.from({ length: 100 }, (_, k) => ({ m: 'wake', v: '1.0.0', r: k, l: 0.7 })))
  const M = 50_000
  t0 = performance.now()
  for (let i = 0; i < M; i += 5000)
    db.transaction(() => {
      for (let k = i; k < i + 5000; k++) ins.run('dev-1', `j${k}`, k, k, body)
    })()
  out.floorJsonRowsPerS = M / ((performance.now() - t0) / 1000)
  db.close()
  console.log(
    `A. SQLite floor: ${fmt(out.floorRowsPerS)} single-row inserts/s; ${fmt(out.floorJsonRowsPerS)} rows/s of 100-event JSON batches (${fmt(out.floorJsonRowsPerS * 100)} events/s)`,
  )
}

// ---------------------------------------------------------------- B: ingest
const hub = await startHub({
  dataDir: join(tmp, 'hub'),
  logLevel: 'warn',
  env: {
    EF_RETRAINING: JSON.stringify({ drift: { intervalMs: 0 }, retention: { enabled: false } }),
    // Each of the few simulated devices carries the load of a fleet: lift the per-device quotas [EF-1.7.5].
    EF_BROKER: JSON.stringify({
      quota: { messagesPerSec: 1e9, messageBurst: 1e9, bytesPerSec: 1e12, byteBurst: 1e12 },
    }),
  },
})
const clients = []
try {
  const specs = []
  for (let i = 0; i < DEVICES; i++) {
    const id = `gw-${String(i).padStart(3, '0')}`
    const d = await api(hub.httpUrl, 'POST', '/api/v1/devices', {
      id,
      profile: i % 2 ? 'gateway-rpi4' : 'industrial-x86',
      tags: {},
    })
    specs.push({ id, secret: d.secret })
  }
  const connectClients = async () => {
    for (const s of specs) {
      const c = mqtt.connect(hub.mqttUrl, { clientId: s.id, username: s.id, password: s.secret, reconnectPeriod: 0 })
      await new Promise((res, rej) => c.once('connect', res).once('error', rej))
      clients.push({ id: s.id, c })
    }
  }
  // The hub takes telemetry only for versions a device was sent or reports loaded [EF-2.6.8]: each
  // device first states m0..m9 loaded at 1.0.0 with 1.1.0 as the previous version (one retained state).
  const loaded = Array.from({ length: 10 }, (_, k) => ({
    name: `m${k}`,
    version: '1.0.0',
    previous: '1.1.0',
    precision: 'fp32',
    artifact: '0'.repeat(64),
    slot: 'a',
  }))
  for (const s of specs) {
    const c = mqtt.connect(hub.mqttUrl, { clientId: s.id, username: s.id, password: s.secret, reconnectPeriod: 0 })
    await new Promise((res, rej) => c.once('connect', res).once('error', rej))
    const state = { v: 1, deviceId: s.id, online: true, ts: Date.now(), models: loaded }
    await c.publishAsync(topics.state(s.id), JSON.stringify(state), { qos: 1, retain: true })
    await c.endAsync()
  }
  if (CLIENT !== 'raw') await connectClients()
  // One batch: RECORDS model versions, each with confidence bins and one input sketch.
  const latency = new Array(LATENCY_BUCKETS_MS.length + 1).fill(0).map((_, i) => (i === 4 ? 90 : i === 5 ? 10 : 0))
  const sketch = new Array(FEATURE_BUCKETS.length + 1).fill(0).map((_, i) => (i >= 6 && i <= 14 ? 1000 : 0))
  const models = Array.from({ length: RECORDS }, (_, k) => ({
    model: `m${k % 10}`,
    version: `1.${Math.floor(k / 10)}.0`,
    requests: 100,
    errors: 1,
    latency,
    latencySumMs: 80.5,
    confidence: [0, 0, 1, 2, 5, 10, 20, 30, 20, 12],
    features: [{ input: 'x', count: 9000, mean: 0.01, variance: 0.3, min: -1, max: 1, sketch }],
  }))
  // The load generator shares the 2 cores with the hub: payloads are spliced from one template, not re-serialised.
  const tail = JSON.stringify({ models }).slice(1)
  const payloadOf = (id, seq) => {
    const now = Date.now()
    return Buffer.from(
      `{"v":1,"deviceId":"${id}","batchId":"${id}-${String(seq).padStart(10, '0')}","from":${now - 1000},"to":${now},${tail}`,
    )
  }
  console.log(
    `B. batch payload: ${Buffer.byteLength(payloadOf('gw-000', 0))} bytes, ${RECORDS} events; load generator: ${CLIENT === 'raw' ? 'raw MQTT connections' : 'mqtt.js clients'}`,
  )
  let published = 0
  let acked = 0
  let stop = false
  const window = Math.max(1, Math.floor(INFLIGHT / DEVICES))
  let pump
  const raws = []
  if (CLIENT === 'raw') {
    // The same payloads, patched in place: the batch id's sequence digits and the two timestamps.
    for (const spec of specs) {
      const tpl = payloadOf(spec.id, 0)
      const text = tpl.toString('latin1')
      const seqAt = text.indexOf(`"batchId":"${spec.id}-`) + `"batchId":"${spec.id}-`.length
      const fromAt = text.indexOf('"from":') + 7
      const toAt = text.indexOf('"to":') + 5
      raws.push(
        await rawPublisher({
          url: hub.mqttUrl,
          clientId: spec.id,
          username: spec.id,
          password: spec.secret,
          topic: topics.telemetry(spec.id),
          payload: tpl,
          window,
          patch(buf, seq) {
            buf.write(String(seq).padStart(10, '0'), seqAt, 'latin1')
            const now = Date.now()
            buf.write(String(now - 1000), fromAt, 'latin1')
            buf.write(String(now), toAt, 'latin1')
          },
        }),
      )
    }
  } else {
    pump = async ({ id, c }) => {
      let seq = 0
      const inflight = new Set()
      while (!stop) {
        const p = c.publishAsync(topics.telemetry(id), payloadOf(id, seq++), { qos: 1 }).then(() => {
          acked++
          inflight.delete(p)
        })
        inflight.add(p)
        published++
        if (inflight.size >= window) await Promise.race(inflight)
      }
      await Promise.all(inflight)
    }
  }
  const status = () => api(hub.httpUrl, 'GET', '/api/v1/retraining/status')
  let peakRss = rssMiB(hub.pid)
  const rssTimer = setInterval(() => (peakRss = Math.max(peakRss, rssMiB(hub.pid))), 100)
  const idleRss = rssMiB(hub.pid)
  const pumps = pump ? clients.map(pump) : []
  for (const r of raws) r.start()
  // Warm up 3 s, then measure SECONDS of sustained ingest (stored batches, read from the hub).
  await new Promise((r) => setTimeout(r, 3000))
  const s0 = await status()
  const t0 = performance.now()
  const hubCpu0 = cpuSecs(hub.pid)
  const genCpu0 = process.cpuUsage()
  const samplesRss = []
  for (let s = 0; s < SECONDS; s++) {
    await new Promise((r) => setTimeout(r, 1000))
    samplesRss.push(rssMiB(hub.pid))
  }
  const s1 = await status()
  const secs = (performance.now() - t0) / 1000
  const hubCpu = cpuSecs(hub.pid) - hubCpu0
  const genCpuU = process.cpuUsage(genCpu0)
  const genCpu = (genCpuU.user + genCpuU.system) / 1e6
  stop = true
  await Promise.all(pumps)
  await Promise.all(raws.map((r) => r.stop()))
  const lat = []
  for (const r of raws) {
    published += r.stats.published
    acked += r.stats.acked
    for (const x of r.stats.latencies) lat.push(x)
    r.end()
  }
  lat.sort((a, b) => a - b)
  const pct = (q) => (lat.length ? lat[Math.min(lat.length - 1, Math.floor(q * lat.length))] : NaN)
  await waitFor(async () => (await status()).ingest.batches >= acked, { timeoutMs: 60_000, what: 'the queue to drain' })
  clearInterval(rssTimer)
  const sEnd = await status()
  out.ingest = {
    batchesPerS: (s1.ingest.batches - s0.ingest.batches) / secs,
    ackMsP50: pct(0.5),
    ackMsP99: pct(0.99),
    hubCores: hubCpu / secs,
    hubCpuUsPerEvent: (hubCpu * 1e6) / ((s1.ingest.batches - s0.ingest.batches) * RECORDS),
    generatorCores: genCpu / secs,
    eventsPerS: ((s1.ingest.batches - s0.ingest.batches) * RECORDS) / secs,
    totalBatches: sEnd.ingest.batches,
    totalEvents: sEnd.ingest.batches * RECORDS,
    flushes: sEnd.ingest.flushes,
    fullFlushes: sEnd.ingest.fullFlushes,
    maxQueued: sEnd.ingest.maxQueued,
    hubRssIdleMiB: idleRss,
    hubRssPeakMiB: peakRss,
    hubRssMedianMiB: samplesRss.sort((a, b) => a - b)[Math.floor(samplesRss.length / 2)],
    published,
    lost: published - sEnd.ingest.batches,
    dbMiB: statSync(join(tmp, 'hub', 'hub.db')).size / 1048576,
    rollups: sEnd.rollups,
  }
  console.log(
    `B. ingest through broker → parse → validate → store: ${fmt(out.ingest.eventsPerS)} events/s (${fmt(out.ingest.batchesPerS)} batches/s of ${RECORDS}) sustained over ${secs.toFixed(1)} s, ${DEVICES} devices; ` +
      (lat.length
        ? `PUBLISH→PUBACK (after commit) p50 ${out.ingest.ackMsP50.toFixed(1)} ms, p99 ${out.ingest.ackMsP99.toFixed(1)} ms; `
        : '') +
      `hub CPU ${out.ingest.hubCores.toFixed(2)} cores (${out.ingest.hubCpuUsPerEvent.toFixed(1)} µs per event), load generator ${out.ingest.generatorCores.toFixed(2)} cores; ` +
      `hub RSS idle ${out.ingest.hubRssIdleMiB.toFixed(0)} MiB, median ${out.ingest.hubRssMedianMiB.toFixed(0)} MiB, peak ${out.ingest.hubRssPeakMiB.toFixed(0)} MiB; ` +
      `${fmt(out.ingest.totalEvents)} events stored in ${fmt(out.ingest.flushes)} transactions (${out.ingest.fullFlushes} forced by a full queue, largest queue ${out.ingest.maxQueued}); ${out.ingest.lost} batches lost; ${out.ingest.rollups} rollup rows`,
  )

  // ----------------------------------------------------------- C: feed
  if (clients.length === 0) await connectClients()
  const sampleOf = (id, index) =>
    JSON.stringify({
      v: 1,
      deviceId: id,
      sampleId: `${id}-s${String(index).padStart(8, '0')}`,
      ts: Date.now(),
      model: 'm0',
      version: '1.0.0',
      reason: 'low_confidence',
      confidence: 0.31,
      inputs: { x: { type: 'float32', dims: [1, 64], b64: Buffer.alloc(256, index % 251).toString('base64') } },
      outputs: { y: { type: 'float32', dims: [1, 4], data: [0.31, 0.29, 0.2, 0.2] } },
    })
  const before = (await status()).feed.last
  const tS = performance.now()
  await Promise.all(
    clients.map(async ({ id, c }, k) => {
      const mine = Math.ceil(SAMPLES / DEVICES)
      for (let i = 0; i < mine; i += 32)
        await Promise.all(
          Array.from({ length: Math.min(32, mine - i) }, (_, j) =>
            c.publishAsync(topics.samples(id), sampleOf(id, k * mine + i + j), { qos: 1 }),
          ),
        )
    }),
  )
  const total = Math.ceil(SAMPLES / DEVICES) * DEVICES
  await waitFor(async () => (await status()).feed.last - before >= total, {
    timeoutMs: 120_000,
    what: 'samples stored',
  })
  out.samplesIngestPerS = total / ((performance.now() - tS) / 1000)
  const token = hub.token
  const tF = performance.now()
  const res = await fetch(`${hub.httpUrl}/api/v1/feed?limit=1000000`, { headers: { authorization: `Bearer ${token}` } })
  let lineCount = 0
  let bytes = 0
  for await (const chunk of res.body) {
    bytes += chunk.length
    for (const b of chunk) if (b === 10) lineCount++
  }
  const feedSecs = (performance.now() - tF) / 1000
  out.feed = {
    records: lineCount,
    recordsPerS: lineCount / feedSecs,
    MiBPerS: bytes / 1048576 / feedSecs,
    samplesIngestPerS: out.samplesIngestPerS,
  }
  const { exportDataset } = await import(join(ROOT, 'hub', 'dist', 'feed', 'export.js'))
  const tE = performance.now()
  const ex = await exportDataset(
    {
      text: async (path) =>
        (await fetch(new URL(path, hub.httpUrl), { headers: { authorization: `Bearer ${token}` } })).text(),
    },
    { model: 'm0', out: join(tmp, 'dataset.tar') },
  )
  out.export = {
    records: ex.records,
    recordsPerS: ex.records / ((performance.now() - tE) / 1000),
    MiB: ex.bytes / 1048576,
  }
  console.log(
    `C. feed: ${fmt(total)} samples ingested over MQTT at ${fmt(out.samplesIngestPerS)}/s; GET /api/v1/feed streamed ${fmt(lineCount)} records at ${fmt(out.feed.recordsPerS)} records/s (${out.feed.MiBPerS.toFixed(1)} MiB/s); ` +
      `export (feed + one GET per sample + .npy + tar) ${fmt(ex.records)} records at ${fmt(out.export.recordsPerS)} records/s, ${out.export.MiB.toFixed(1)} MiB`,
  )
} finally {
  await Promise.all(clients.map(({ c }) => c.endAsync().catch(() => undefined)))
  await hub.stop()
}

// -------------------------------------------------------- D: drift over 1M+ rows
{
  const { HubStore } = await import(join(ROOT, 'hub', 'dist', 'store', 'index.js'))
  const { DriftMonitor } = await import(join(ROOT, 'hub', 'dist', 'telemetry', 'drift.js'))
  const pino = (await import(require.resolve('pino'))).default
  const store = HubStore.open(join(tmp, 'hub', 'hub.db'))
  const rows = store.telemetry.countRows().rows
  const versions = store.db.prepare('SELECT DISTINCT model, version FROM telemetry').all()
  // A pipeline-posted baseline per version so every subject has a PSI.
  for (const v of versions)
    store.telemetry.baselines.put({
      model: v.model,
      version: v.version,
      profile: '*',
      source: 'api',
      fromMs: null,
      toMs: null,
      requests: 1000,
      confidence: [1, 1, 1, 2, 5, 10, 20, 30, 20, 10],
      features: { x: new Array(FEATURE_BUCKETS.length + 1).fill(100) },
      createdAt: Date.now(),
    })
  const drift = new DriftMonitor(
    { store, now: Date.now, log: pino({ level: 'silent' }) },
    { windowMs: 24 * 3600_000, intervalMs: 0 },
  )
  const tD = performance.now()
  const driftResult = drift.evaluate()
  const driftMs = performance.now() - tD
  // The same PSI computed naively from the raw rows (every row's JSON parsed and merged).
  const tN = performance.now()
  const acc = new Map()
  for (const row of store.db
    .prepare(
      'SELECT t.model, t.version, d.profile, t.confidence, t.features FROM telemetry t JOIN devices d ON d.id = t.device_id',
    )
    .iterate()) {
    const key = `${row.model}@${row.version}@${row.profile}`
    const a = acc.get(key) ?? { c: new Array(10).fill(0), f: new Array(FEATURE_BUCKETS.length + 1).fill(0) }
    JSON.parse(row.confidence).forEach((x, i) => (a.c[i] += x))
    JSON.parse(row.features)[0].sketch.forEach((x, i) => (a.f[i] += x))
    acc.set(key, a)
  }
  const naiveMs = performance.now() - tN
  out.drift = {
    rawRows: rows,
    subjects: driftResult.values.length,
    events: driftResult.events.length,
    rollupMs: driftMs,
    naiveRawScanMs: naiveMs,
    rollupRows: store.telemetry.rollups.count(),
  }
  store.close()
  console.log(
    `D. drift over ${fmt(rows)} raw telemetry rows (${out.drift.rollupRows} rollup rows): hub evaluation ${driftMs.toFixed(1)} ms for ${driftResult.values.length} subjects (${driftResult.events.length} drift events); naive recomputation from the raw rows ${(naiveMs / 1000).toFixed(2)} s`,
  )
}

console.log(JSON.stringify(out))
rmSync(tmp, { recursive: true, force: true })
