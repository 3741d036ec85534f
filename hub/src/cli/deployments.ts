// `edgefleet deploy`, `edgefleet deployment show` (with --wait progress) and
// `edgefleet telemetry`, over the HTTP API.
import { EdgeFleetError } from '@edgefleet/shared'
import { TERMINAL_STATES } from '../store/deployments.js'
import { command, UsageError, type Command } from './command.js'
import type { HubClient } from './http.js'
import { table, progressBar } from './format.js'
import { parseNumber } from './model-options.js'
import { splitRef } from './models.js'

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

const deploy = command({
  name: 'deploy',
  summary: ['deploy N@V --target T', 'push a version to devices (profile=P | tag=k=v | device=ID)'],
  help: `edgefleet deploy N@V --target profile=P|tag=k=v|device=ID [--rollback] [--wait] [--timeout SECONDS] [--json]`,
  options: {
    target: { type: 'string' },
    rollback: { type: 'boolean' },
    wait: { type: 'boolean' },
    timeout: { type: 'string' },
  },
  async run({ args, hub, emit, err }) {
    const { model, version } = splitRef(args.pos[0])
    const target = args.str('target')
    if (!target) throw new UsageError('deploy needs --target profile=P | tag=k=v | device=ID')
    const timeoutS = parseNumber(args.str('timeout') ?? '600', '--timeout')
    const r = await hub.request<DeploymentView>('POST', '/api/v1/deployments', {
      model,
      version,
      target,
      ...(args.flag('rollback') ? { rollback: true } : {}),
    })
    if (!args.flag('wait')) {
      emit(r, () => `deployment ${r.deployment.id}: ${model}@${version} → ${r.devices.length} device(s)`)
      return 0
    }
    const final = await waitDeployment(hub, r.deployment.id, timeoutS * 1000, args.flag('json') ? undefined : err)
    emit(final, () => showDeployment(final))
    return final.devices.every((d) => d.state === 'activated') ? 0 : 1
  },
})

const deploymentShow = command({
  name: 'deployment show',
  summary: ['deployment show ID', 'per-device progress of a deployment'],
  help: `edgefleet deployment show ID [--json]`,
  options: {},
  async run({ args, hub, emit }) {
    const id = args.pos[0]
    if (!id) throw new UsageError('deployment show needs ID')
    const r = await hub.request<DeploymentView>('GET', `/api/v1/deployments/${encodeURIComponent(id)}`)
    emit(r, () => showDeployment(r))
    return 0
  },
})

const telemetry = command({
  name: 'telemetry',
  summary: ['telemetry', 'request counts and latency percentiles per model version'],
  help: `edgefleet telemetry [--model N] [--json]`,
  options: { model: { type: 'string' } },
  async run({ args, hub, emit }) {
    const model = args.str('model')
    const q = model ? `?model=${encodeURIComponent(model)}` : ''
    const r = await hub.request<{ items: Record<string, unknown>[] }>('GET', `/api/v1/telemetry/summary${q}`)
    emit(r.items, () =>
      table(r.items, ['model', 'version', 'devices', 'requests', 'errors', 'p50Ms', 'p95Ms', 'p99Ms']),
    )
    return 0
  },
})

export const deploymentCommands: Command[] = [deploy, deploymentShow, telemetry]
