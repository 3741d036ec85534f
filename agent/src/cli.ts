#!/usr/bin/env node
// `edgefleet-agent`: runs the agent on a device. Flags override environment
// variables (EF_*), which override a JSON config file (--config).
import { parseArgs } from 'node:util'
import { codeOf } from '@edgefleet/shared'
import { resolveConfig, type AgentConfig } from './config.js'
import { createAgent } from './agent.js'
import { EXIT_HANDOVER } from './selfupdate/state.js'

const HELP = `edgefleet-agent — EdgeFleet device agent

Usage: edgefleet-agent --hub mqtt[s]://HOST:PORT [--ca FILE] --device-id ID --secret S --hub-key KEY --profile P [options]

  --hub URL[,URL]    broker URL, or a broker cluster's nodes: each reconnect tries the next (env EF_HUB)
  --device-id ID     this device's id (env EF_DEVICE_ID)
  --secret S         device secret from 'edgefleet device add' (env EF_SECRET)
  --hub-key KEY      hub public key from 'edgefleet device add' (env EF_HUB_KEY)
  --profile P        firmware profile id (env EF_PROFILE)
  --ca FILE          CA the hub's certificate must chain to, for mqtts:// and https:// (env EF_CA)
  --cert FILE        client certificate from 'edgefleet device add --cert' (mutual TLS; env EF_CERT)
  --key FILE         its private key (env EF_KEY)
  --data DIR         data folder (env EF_DATA; default .data/agent)
  --api-port N       local inference API port on 127.0.0.1 (env EF_API_PORT; default 8790; 0 = ephemeral)
  --profiles-dir DIR firmware-profiles folder
  --network KIND     metered | unmetered | unknown (env EF_NETWORK)
  --transfer MODE    mqtt (default) | http: fetch artifacts by HTTP range requests when offered (env EF_TRANSFER)
  --runtime R        auto (default: wasm on armv7 profiles, else native) | native | wasm (env EF_RUNTIME)
  --telemetry-ms N   telemetry batch interval (default 5000)
  --health-ms N      an idle device still reports its stats this often (default 60000; 0 = only with traffic; env EF_HEALTH_MS)
  --config FILE      JSON config file with the same fields (camelCase)
  --log-level L      pino level (default info)
  --json             print one JSON line with the API port once started`

/** The command line's flags; throws on an unknown or malformed one. */
function parseFlags() {
  return parseArgs({
    options: {
      hub: { type: 'string' },
      'device-id': { type: 'string' },
      secret: { type: 'string' },
      'hub-key': { type: 'string' },
      profile: { type: 'string' },
      ca: { type: 'string' },
      cert: { type: 'string' },
      key: { type: 'string' },
      data: { type: 'string' },
      'api-port': { type: 'string' },
      'profiles-dir': { type: 'string' },
      network: { type: 'string' },
      transfer: { type: 'string' },
      runtime: { type: 'string' },
      'telemetry-ms': { type: 'string' },
      'health-ms': { type: 'string' },
      config: { type: 'string' },
      'log-level': { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  }).values
}

type Flags = ReturnType<typeof parseFlags>

/** The agent's config: these flags over the environment over the --config file; throws on a bad value. */
function configFromFlags(values: Flags): AgentConfig {
  return resolveConfig({
    file: values.config,
    env: process.env,
    flags: {
      hubUrl: values.hub,
      deviceId: values['device-id'],
      secret: values.secret,
      hubKey: values['hub-key'],
      profile: values.profile,
      caFile: values.ca,
      certFile: values.cert,
      keyFile: values.key,
      dataDir: values.data,
      apiPort: values['api-port'],
      profilesDir: values['profiles-dir'],
      network: values.network,
      transfer: values.transfer,
      runtime: values.runtime,
      telemetryIntervalMs: values['telemetry-ms'],
      healthIntervalMs: values['health-ms'],
      logLevel: values['log-level'],
    },
  })
}

/** Runs the agent until SIGINT or SIGTERM (or until it hands over to a staged agent), then closes it. */
async function runUntilSignal(config: AgentConfig, printJson: boolean): Promise<number> {
  // Fault injection for crash tests: EF_FAULT_KILL_AT=<update step> makes the
  // process kill -9 itself when an update reaches that step (see updater.ts).
  const killAt = process.env.EF_FAULT_KILL_AT
  let handingOver = false
  const agent = await createAgent(config, {
    ...(killAt ? { onStep: (step: string) => step === killAt && process.kill(process.pid, 'SIGKILL') } : {}),
    // [EF-11.6] a staged agent takes over when this one exits with EXIT_HANDOVER (the launcher runs it).
    handOver: () => {
      if (handingOver) return
      handingOver = true
      void agent.close().finally(() => process.exit(EXIT_HANDOVER))
    },
  })
  if (printJson)
    process.stdout.write(JSON.stringify({ apiPort: agent.apiPort, deviceId: config.deviceId, pid: process.pid }) + '\n')
  await new Promise<void>((res) => {
    process.once('SIGINT', () => res())
    process.once('SIGTERM', () => res())
  })
  await agent.close()
  return 0
}

async function main(): Promise<number> {
  let values: Flags
  try {
    values = parseFlags()
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n\n${HELP}\n`)
    return 2
  }
  if (values.help) {
    process.stdout.write(HELP + '\n')
    return 0
  }
  let config: AgentConfig
  try {
    config = configFromFlags(values)
  } catch (err) {
    process.stderr.write(`error ${codeOf(err)}: ${(err as Error).message}\n\n${HELP}\n`)
    return 2
  }
  return runUntilSignal(config, values.json === true)
}

// A log stream that fails (stderr to a file on a full disk, a closed pipe) must never end the agent [EF-7.3.1].
for (const stream of [process.stdout, process.stderr]) stream.on('error', () => undefined)

main().then(
  (code) => {
    process.exitCode = code
  },
  (err: unknown) => {
    process.stderr.write(`error ${codeOf(err)}: ${(err as Error).message}\n`)
    process.exitCode = 1
  },
)
