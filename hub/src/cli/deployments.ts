// `edgefleet deploy`, `edgefleet deployment show` (with --wait progress) and
// `edgefleet telemetry`, over the HTTP API.
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
    online: boolean
  }[]
}

/** `deploy --wait` ran out of time with devices still pending (distinct from 1: something failed) [EF-8.14]. */
export const EXIT_PENDING = 3

/** A device the deployment still waits for; an offline one is shown as pending, not as stuck in `sent`. */
const shownState = (x: DeploymentView['devices'][number]) =>
  TERMINAL_STATES.has(x.state) ? x.state : x.online ? x.state : 'pending (offline)'

function showDeployment(r: DeploymentView): string {
  const d = r.deployment
  return (
    `deployment ${d.id}: ${d.model}@${d.version} → ${d.target} (${d.done ? 'done' : 'in progress'})\n` +
    table(
      r.devices.map((x) => ({ ...x, state: shownState(x) })),
      ['deviceId', 'state', 'bytes', 'totalBytes', 'code'],
    )
  )
}

/** Polls until the deployment is done or `timeoutMs` passed; returns the last view either way. */
async function waitDeployment(
  hub: HubClient,
  id: string,
  timeoutMs: number,
  progress?: NodeJS.WritableStream,
): Promise<{ view: DeploymentView; timedOut: boolean }> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const view = await hub.request<DeploymentView>('GET', `/api/v1/deployments/${encodeURIComponent(id)}`)
    const finished = view.devices.filter((x) => TERMINAL_STATES.has(x.state)).length
    const offline = view.devices.filter((x) => !TERMINAL_STATES.has(x.state) && !x.online).length
    progress?.write(
      `\r${progressBar(finished, view.devices.length)} devices done${offline ? `, ${offline} offline` : ''}`,
    )
    const timedOut = !view.deployment.done && Date.now() > deadline
    if (view.deployment.done || timedOut) {
      progress?.write('\n')
      return { view, timedOut }
    }
    await new Promise((res) => setTimeout(res, 250))
  }
}

/** The end of `deploy --wait`: 0 all activated, 1 some failed, EXIT_PENDING some still pending at the timeout. */
function waitOutcome(
  final: { view: DeploymentView; timedOut: boolean },
  timeoutS: number,
  err: NodeJS.WritableStream,
): number {
  const pending = final.view.devices.filter((x) => !TERMINAL_STATES.has(x.state))
  if (final.timedOut && pending.length) {
    const offline = pending.filter((x) => !x.online).map((x) => x.deviceId)
    err.write(
      `EF_ERR_DEPLOY_PENDING: ${pending.length} device(s) still pending after ${timeoutS}s` +
        (offline.length ? ` (offline: ${offline.join(', ')})` : '') +
        `; they get the deploy when they connect (edgefleet deployment show ${final.view.deployment.id})\n`,
    )
    return EXIT_PENDING
  }
  return final.view.devices.every((d) => d.state === 'activated') ? 0 : 1
}

const deploy = command({
  name: 'deploy',
  summary: ['deploy N@V --target T', 'push a version to devices (profile=P | tag=k=v | device=ID)'],
  help: `edgefleet deploy N@V --target profile=P|tag=k=v|device=ID [--rollback] [--wait] [--timeout SECONDS] [--json]
  --wait            wait until every device is done; offline devices show as pending. Exit 0: all
                    activated, 1: some failed, ${EXIT_PENDING}: devices still pending at --timeout (default 600)`,
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
    const created = await hub.request<DeploymentView>('POST', '/api/v1/deployments', {
      model,
      version,
      target,
      ...(args.flag('rollback') ? { rollback: true } : {}),
    })
    if (!args.flag('wait')) {
      emit(
        created,
        () => `deployment ${created.deployment.id}: ${model}@${version} → ${created.devices.length} device(s)`,
      )
      return 0
    }
    const final = await waitDeployment(hub, created.deployment.id, timeoutS * 1000, args.flag('json') ? undefined : err)
    const pending = final.view.devices.filter((x) => !TERMINAL_STATES.has(x.state)).map((x) => x.deviceId)
    emit({ ...final.view, timedOut: final.timedOut, pending }, () => showDeployment(final.view))
    return waitOutcome(final, timeoutS, err)
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
