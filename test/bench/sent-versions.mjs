#!/usr/bin/env node
// Cost of the telemetry version check on the ingest hot path [EF-2.6.8]:
// keepSentVersions on a 20-entry batch whose versions are all cached (the
// retraining bench's batch shape), three runs. Real store (in-memory SQLite).
//   node test/bench/sent-versions.mjs [--batches 200000]
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
const { HubStore } = await import(join(ROOT, 'hub', 'dist', 'store', 'index.js'))
const { keepSentVersions } = await import(join(ROOT, 'hub', 'dist', 'telemetry', 'sent-only.js'))
const { values: o } = parseArgs({ options: { batches: { type: 'string' } } })
const batchCount = Number(o.batches ?? 200_000)

const store = HubStore.open(':memory:')
store.devices.insert('gw-000', 'gateway-rpi4', {}, 'x', 0)
const models = Array.from({ length: 20 }, (_, k) => ({
  model: `m${k % 10}`,
  version: `1.${Math.floor(k / 10)}.0`,
  requests: 1,
  errors: 0,
  latency: [],
  latencySumMs: 0,
}))
for (const m of models)
  store.deployments.create(
    { id: `${m.model}@${m.version}`, model: m.model, version: m.version, target: 'x', rollback: false, createdAt: 0 },
    [{ deviceId: 'gw-000', buildId: null, cmdId: null, state: 'activated' }],
  )
const batch = { v: 1, deviceId: 'gw-000', batchId: 'b', from: 0, to: 1, models }
keepSentVersions(store, batch, 1) // loads the device's set once
for (let r = 1; r <= 3; r++) {
  const t0 = process.hrtime.bigint()
  for (let i = 0; i < batchCount; i++) keepSentVersions(store, batch, 1)
  const ns = Number(process.hrtime.bigint() - t0) / batchCount
  console.log(`run ${r}: ${(ns / 1000).toFixed(2)} µs per 20-entry batch, ${(ns / 20).toFixed(0)} ns per event`)
}
store.close()
