#!/usr/bin/env node
// `edgefleet`: the operator's command line. Every command but `hub start` and
// `compile` talks to a running hub over its HTTP API.
import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { EdgeFleetError, codeOf } from '@edgefleet/shared'
import { HubClient } from './http.js'
import { TERMINAL_STATES } from '../store/deployments.js'
import { table, progressBar } from './format.js'
import {
  ROLLOUT_HELP,
  ROLLOUT_OPTIONS,
  RolloutUsageError,
  gateFlags,
  rolloutCommand,
  parseDuration,
  parseWaves,
} from './rollouts.js'
import { FEED_HELP, FEED_OPTIONS, FeedUsageError, feedCommand } from './feed.js'
import { TOKEN_HELP, TokenUsageError, tokenCommand } from './tokens.js'

const HELP: Record<string, string> = {
  main: `edgefleet — edge-inference fleet manager

Usage: edgefleet <command> [options]

Commands:
  hub start                 run a hub (broker, store, API, console)
  device add ID             provision a device; prints its secret and the hub key
  devices list              list devices with profile, online state and model
  model add FILE.onnx       register a model version and build it for the fleet
  models list               list models and versions
  model show N@V            a version with its builds and validation reports
  deploy N@V --target T     push a version to devices (profile=P | tag=k=v | device=ID)
  deployment show ID        per-device progress of a deployment
  telemetry                 request counts and latency percentiles per model version
  rollout create N@V --selector EXPR   staged rollout: waves, soak, health gates, schedule
  rollout list|show ID      rollouts with wave progress and decisions (show --wait: progress bars)
  rollout pause|resume|abort|rollback|promote|approve ID
  token create NAME --role R  API token for a viewer, operator or admin (tokens list, token revoke ID)
  feed export MODEL --out F.tar   retraining dataset: .npy tensors + index.jsonl (resumable --since CURSOR)
  feed tail [MODEL] [--follow]    the retraining feed as NDJSON (samples, drift, disagreements, labels)
  drift [--model N]         input and output drift (PSI) per version and profile
  compile MODEL.onnx        compile one model for one profile, no hub needed (see compile --help)

Common options:
  --hub URL     hub HTTP API (env EDGEFLEET_HUB; default http://127.0.0.1:8080)
  --token T     API token (env EDGEFLEET_TOKEN; the hub writes an admin token to <data>/admin-token)
  --json        machine-readable output
  --help        help for a command`,
  'hub start': `edgefleet hub start [--data DIR] [--mqtt-port N] [--http-port N] [--host H] [--broker URL] [--profiles DIR] [--log-level L] [--json]
  --data DIR       data folder (database, blobs, keys); default ./.data/hub
  --mqtt-port N    embedded broker port (default 1883; 0 = ephemeral)
  --http-port N    API and console port (default 8080; 0 = ephemeral)
  --broker URL     use an external MQTT broker instead of the embedded one
  --mosquitto-dir DIR       keep a Mosquitto password file and ACL for the fleet in DIR
  --mosquitto-pid-file FILE send Mosquitto a SIGHUP (reload) after each provisioning
  --rollout-tick-ms N       how often rollouts are evaluated (default 1000)
  --json           print one JSON line with the URLs, the hub key and (first start) the admin token`,
  'device add': `edgefleet device add ID --profile P [--tag k=v ...] [--json]`,
  'devices list': `edgefleet devices list [--json]`,
  'model add': `edgefleet model add FILE.onnx --name N --version V [--shape INPUT=d,d,..] [--value INPUT=x] [--precision P] [--output NAME=KIND] [--parent N@V] [--run-id ID] [--canary [--selector EXPR] [--waves LIST] [--soak DUR]] [--json]
  --parent  the registered version this one was retrained from (lineage); --run-id the training run
  --canary  intake policy: once every profile built, start a rollout to the devices serving the model (default gates;
            gate flags (--max-p95-ratio X|off, --max-confidence-psi X|off, --min-requests N, ...) and --no-windows as for rollout create)
  --shape   concrete shape for an input with symbolic dims (repeatable)
  --output  what an output means: scores | logits | probability | regression | other (repeatable); agents report confidence from it
  --value   constant value for an input (e.g. a sample rate), used for health checks (repeatable)`,
  'models list': `edgefleet models list [--json]`,
  'model show': `edgefleet model show N@V [--json]`,
  deploy: `edgefleet deploy N@V --target profile=P|tag=k=v|device=ID [--rollback] [--wait] [--timeout SECONDS] [--json]`,
  'deployment show': `edgefleet deployment show ID [--json]`,
  telemetry: `edgefleet telemetry [--model N] [--json]`,
  ...ROLLOUT_HELP,
  ...TOKEN_HELP,
  ...FEED_HELP,
}

const OPTIONS = {
  ...ROLLOUT_OPTIONS,
  role: { type: 'string' },
  ...FEED_OPTIONS,
  canary: { type: 'boolean' },
  hub: { type: 'string' },
  token: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  data: { type: 'string' },
  'mqtt-port': { type: 'string' },
  'http-port': { type: 'string' },
  host: { type: 'string' },
  broker: { type: 'string' },
  'mosquitto-dir': { type: 'string' },
  'mosquitto-pid-file': { type: 'string' },
  'rollout-tick-ms': { type: 'string' },
  profiles: { type: 'string' },
  'log-level': { type: 'string' },
  profile: { type: 'string' },
  tag: { type: 'string', multiple: true },
  name: { type: 'string' },
  version: { type: 'string' },
  shape: { type: 'string', multiple: true },
  value: { type: 'string', multiple: true },
  precision: { type: 'string' },
  output: { type: 'string', multiple: true },
  parent: { type: 'string' },
  'run-id': { type: 'string' },
  target: { type: 'string' },
  rollback: { type: 'boolean' },
  wait: { type: 'boolean' },
  timeout: { type: 'string' },
  model: { type: 'string' },
} as const

class UsageError extends Error {}

/** Output kinds of the manifest's semantics [EF-2.6.4]. */
const OUTPUT_KINDS = ['scores', 'logits', 'probability', 'regression', 'other']

function kv(list: string[] | undefined, what: string): [string, string][] {
  return (list ?? []).map((s) => {
    const i = s.indexOf('=')
    if (i <= 0) throw new UsageError(`${what} must be KEY=VALUE, got ${JSON.stringify(s)}`)
    return [s.slice(0, i), s.slice(i + 1)]
  })
}

function splitRef(ref: string | undefined): { model: string; version: string } {
  const at = ref?.lastIndexOf('@') ?? -1
  if (!ref || at <= 0 || at === ref.length - 1) throw new UsageError('expected MODEL@VERSION')
  return { model: ref.slice(0, at), version: ref.slice(at + 1) }
}

export async function main(argv: string[], out = process.stdout, err = process.stderr): Promise<number> {
  const print = (s: string) => out.write(s + '\n')
  // `compile` has its own flags and needs no hub: hand it the raw arguments.
  if (argv[0] === 'compile') {
    const { compileCli } = await import('../compiler/cli.js')
    return compileCli(argv.slice(1), { stdout: out, stderr: err as NodeJS.WriteStream })
  }
  let parsed
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true })
  } catch (e) {
    err.write(`${(e as Error).message}\n\n${HELP.main}\n`)
    return 2
  }
  const { values: o, positionals: pos } = parsed
  const [cmd, sub] = pos
  const two = `${cmd ?? ''} ${sub ?? ''}`.trim()
  const key = HELP[two] ? two : HELP[cmd ?? ''] ? cmd : undefined
  if (!cmd || (o.help && !key)) {
    print(HELP.main)
    // Asked-for help is a success; a bare `edgefleet` is a usage error.
    return cmd || o.help ? 0 : 2
  }
  if (o.help && key) {
    print(HELP[key])
    return 0
  }
  const hub = new HubClient(
    o.hub ?? process.env.EDGEFLEET_HUB ?? 'http://127.0.0.1:8080',
    o.token ?? (process.env.EDGEFLEET_TOKEN || undefined),
  )
  const emit = (data: unknown, text: () => string) => print(o.json ? JSON.stringify(data) : text())
  try {
    if (cmd === 'rollout') return await rolloutCommand(hub, sub ?? '', pos, o, emit, err)
    if (cmd === 'token' || cmd === 'tokens') return await tokenCommand(hub, two, pos, o, emit)
    if (cmd === 'feed' || cmd === 'drift') return await feedCommand(hub, cmd, pos, o, emit, out)
    switch (two.startsWith('hub start') ? 'hub start' : key) {
      case 'hub start': {
        const { runHub } = await import('./hub-start.js')
        return await runHub(o, print)
      }
      case 'device add': {
        const id = pos[2]
        if (!id || !o.profile) throw new UsageError('device add needs ID and --profile P')
        const r = await hub.request<{
          id: string
          secret: string
          hubPublicKey: string
          mqttUrl: string
          profile: string
        }>('POST', '/api/v1/devices', {
          id,
          profile: o.profile,
          tags: Object.fromEntries(kv(o.tag, '--tag')),
        })
        // `--opt=value`: base64url secrets and keys may start with '-', which `--opt value` would misread.
        emit(
          r,
          () =>
            `device ${r.id} (${r.profile}) provisioned\n  secret:         ${r.secret}\n  hub public key: ${r.hubPublicKey}\n  broker:         ${r.mqttUrl}\nStart its agent with:\n  edgefleet-agent --hub ${r.mqttUrl} --device-id ${r.id} --secret=${r.secret} --hub-key=${r.hubPublicKey} --profile ${r.profile}`,
        )
        return 0
      }
      case 'devices list': {
        const r = await hub.request<{
          items: {
            id: string
            profile: string
            online: boolean
            models: { name: string; version: string }[]
            tags: Record<string, string>
          }[]
          total: number
        }>('GET', '/api/v1/devices?limit=10000')
        emit(r.items, () =>
          table(
            r.items.map((d) => ({
              id: d.id,
              profile: d.profile,
              state: d.online ? 'online' : 'offline',
              models: d.models.map((m) => `${m.name}@${m.version}`).join(',') || null,
              tags:
                Object.entries(d.tags)
                  .map(([k, v]) => `${k}=${v}`)
                  .join(',') || null,
            })),
            ['id', 'profile', 'state', 'models', 'tags'],
          ),
        )
        return 0
      }
      case 'model add': {
        const file = pos[2]
        if (!file || !o.name || !o.version) throw new UsageError('model add needs FILE.onnx, --name and --version')
        const bytes = readFileSync(file)
        const options: Record<string, unknown> = {}
        const shapes = kv(o.shape, '--shape')
        if (shapes.length)
          options.inputShapes = Object.fromEntries(shapes.map(([k, v]) => [k, v.split(',').map(Number)]))
        const vals = kv(o.value, '--value')
        if (vals.length) options.inputValues = Object.fromEntries(vals.map(([k, v]) => [k, Number(v)]))
        if (o.precision) options.precision = o.precision
        const outs = kv(o.output, '--output')
        for (const [name, kind] of outs)
          if (!OUTPUT_KINDS.includes(kind))
            throw new UsageError(`--output ${name}=${kind}: KIND is one of ${OUTPUT_KINDS.join(', ')}`)
        if (outs.length) options.outputs = Object.fromEntries(outs)
        const q = new URLSearchParams({ name: o.name, version: o.version })
        if (Object.keys(options).length) q.set('options', JSON.stringify(options))
        if (o.parent) q.set('parent', o.parent)
        if (o['run-id']) q.set('runId', o['run-id'])
        if (o.canary) {
          q.set('policy', 'canary')
          const rollout: Record<string, unknown> = {}
          if (o.selector) rollout.selector = o.selector
          if (o.waves) rollout.waves = parseWaves(o.waves)
          if (o.soak) rollout.soakMs = parseDuration(o.soak)
          // The same gate flags as rollout create; the confidence gate is one-sided (EF-8.5), `off` drops a gate.
          const gates = gateFlags(o)
          if (Object.keys(gates).length) rollout.gates = gates
          if (o['no-windows']) rollout.schedule = { maintenanceWindows: false }
          if (Object.keys(rollout).length) q.set('rollout', JSON.stringify(rollout))
        }
        const r = await hub.request<{
          version: { model: string; version: string; size: number }
          builds: {
            profile: string
            status: string
            precision: string | null
            sizeBytes: number | null
            errorCode: string | null
          }[]
          intake?: { rollout: { id: string; state: string } | null; skipped: string | null }
        }>('POST', `/api/v1/models?${q}`, bytes, { contentType: 'application/octet-stream' })
        const intake = r.intake?.rollout
          ? `\ncanary rollout ${r.intake.rollout.id} started (${r.intake.rollout.state})`
          : r.intake?.skipped
            ? `\nno canary rollout: ${r.intake.skipped}`
            : ''
        emit(
          r,
          () =>
            `registered ${r.version.model}@${r.version.version} (${r.version.size} bytes)\n` +
            (r.builds.length
              ? table(r.builds, ['profile', 'status', 'precision', 'sizeBytes', 'errorCode'])
              : 'no devices provisioned yet: builds happen at first deploy') +
            intake,
        )
        return 0
      }
      case 'models list': {
        const r = await hub.request<{ items: { name: string; versions: string[] }[] }>('GET', '/api/v1/models')
        emit(r.items, () =>
          table(
            r.items.map((m) => ({ name: m.name, versions: m.versions.join(', ') })),
            ['name', 'versions'],
          ),
        )
        return 0
      }
      case 'model show': {
        const { model, version } = splitRef(pos[2])
        const r = await hub.request<{ builds: Record<string, unknown>[] }>(
          'GET',
          `/api/v1/models/${encodeURIComponent(model)}/versions/${encodeURIComponent(version)}`,
        )
        emit(r, () => table(r.builds, ['profile', 'status', 'precision', 'sizeBytes', 'errorCode']))
        return 0
      }
      case 'deploy': {
        const { model, version } = splitRef(pos[1])
        if (!o.target) throw new UsageError('deploy needs --target profile=P | tag=k=v | device=ID')
        const r = await hub.request<DeploymentView>('POST', '/api/v1/deployments', {
          model,
          version,
          target: o.target,
          ...(o.rollback ? { rollback: true } : {}),
        })
        if (!o.wait) {
          emit(r, () => `deployment ${r.deployment.id}: ${model}@${version} → ${r.devices.length} device(s)`)
          return 0
        }
        const final = await waitDeployment(
          hub,
          r.deployment.id,
          Number(o.timeout ?? 600) * 1000,
          o.json ? undefined : err,
        )
        emit(final, () => showDeployment(final))
        return final.devices.every((d) => d.state === 'activated') ? 0 : 1
      }
      case 'deployment show': {
        if (!pos[2]) throw new UsageError('deployment show needs ID')
        const r = await hub.request<DeploymentView>('GET', `/api/v1/deployments/${encodeURIComponent(pos[2])}`)
        emit(r, () => showDeployment(r))
        return 0
      }
      case 'telemetry': {
        const q = o.model ? `?model=${encodeURIComponent(o.model)}` : ''
        const r = await hub.request<{ items: Record<string, unknown>[] }>('GET', `/api/v1/telemetry/summary${q}`)
        emit(r.items, () =>
          table(r.items, ['model', 'version', 'devices', 'requests', 'errors', 'p50Ms', 'p95Ms', 'p99Ms']),
        )
        return 0
      }
      default:
        err.write(`unknown command: ${two}\n\n${HELP.main}\n`)
        return 2
    }
  } catch (e) {
    if (
      e instanceof UsageError ||
      e instanceof RolloutUsageError ||
      e instanceof FeedUsageError ||
      e instanceof TokenUsageError
    ) {
      err.write(`${e.message}\n${key ? HELP[key] : HELP.main}\n`)
      return 2
    }
    const code = codeOf(e)
    if (o.json) out.write(JSON.stringify({ error: { code, message: (e as Error).message } }) + '\n')
    else err.write(`error ${code}: ${(e as Error).message}\n`)
    return 1
  }
}

interface DeploymentView {
  deployment: {
    id: string
    model: string
    version: string
    target: string
    done: boolean
    counts: Record<string, number>
  }
  devices: {
    deviceId: string
    state: string
    bytes: number
    totalBytes: number
    code: string | null
    message: string | null
  }[]
}

function showDeployment(r: DeploymentView): string {
  const d = r.deployment
  return (
    `deployment ${d.id}: ${d.model}@${d.version} → ${d.target} (${d.done ? 'done' : 'in progress'})\n` +
    table(r.devices, ['deviceId', 'state', 'bytes', 'totalBytes', 'code'])
  )
}

async function waitDeployment(
  hub: HubClient,
  id: string,
  timeoutMs: number,
  progress?: NodeJS.WritableStream,
): Promise<DeploymentView> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const r = await hub.request<DeploymentView>('GET', `/api/v1/deployments/${encodeURIComponent(id)}`)
    const finished = r.devices.filter((x) => TERMINAL_STATES.has(x.state)).length
    progress?.write(`\r${progressBar(finished, r.devices.length)} devices done`)
    if (r.deployment.done) {
      progress?.write('\n')
      return r
    }
    if (Date.now() > deadline) {
      progress?.write('\n')
      throw new EdgeFleetError('EF_ERR_DOWNLOAD_TIMEOUT', `deployment ${id} not done after ${timeoutMs / 1000}s`)
    }
    await new Promise((res) => setTimeout(res, 250))
  }
}

const invoked = process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href
if (invoked) {
  main(process.argv.slice(2)).then(
    (code) => {
      if (code !== 0 || process.argv[2] !== 'hub') process.exitCode = code
    },
    (e: unknown) => {
      process.stderr.write(`${(e as Error).stack}\n`)
      process.exitCode = 1
    },
  )
}
