#!/usr/bin/env node
// Runs many real agents (createAgent from the built agent package) in one
// process, each with its own MQTT connection, data folder and SQLite file,
// without the local HTTP API. Benchmarks use a few of these processes to
// simulate hundreds of devices on two cores.
// argv: mqttUrl hubKey specFile [transfer] [caFile]; specFile: JSON [{ deviceId, secret, profile, dataDir }]
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { ROOT } from '../../support/fleet.mjs'

const [mqttUrl, hubKey, specFile, transfer = 'mqtt', caFile] = process.argv.slice(2)
const { createAgent, resolveConfig } = await import(join(ROOT, 'agent', 'dist', 'index.js'))
const specs = JSON.parse(readFileSync(specFile, 'utf8'))
const agents = []
for (const s of specs) {
  const config = resolveConfig({
    flags: {
      hubUrl: mqttUrl,
      deviceId: s.deviceId,
      secret: s.secret,
      hubKey,
      profile: s.profile,
      dataDir: s.dataDir,
      apiPort: 0,
      logLevel: 'error',
      telemetryIntervalMs: 60_000,
      transfer,
      ...(caFile ? { caFile } : {}),
    },
  })
  agents.push(await createAgent(config, { api: false }))
}
process.stdout.write(JSON.stringify({ ready: agents.length, pid: process.pid }) + '\n')
const stop = async () => {
  await Promise.all(agents.map((a) => a.close().catch(() => undefined)))
  process.exit(0)
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
