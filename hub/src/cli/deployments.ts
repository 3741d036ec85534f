// `edgefleet deploy`, `edgefleet deployment show` (with --wait progress) and
// `edgefleet telemetry`, over the HTTP API.
import { HELD_STATES, TERMINAL_STATES } from '../store/deployments.js'
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
    /** Held for its maintenance window: when it opens (ms) [EF-8.16]. */
    windowOpensAt?: number | null
  }[]
}

/** `deploy --wait` ran out of time with devices still pending (distinct from 1: something failed) [EF-8.14]. */
export const EXIT_PENDING = 3

type DeviceView = DeploymentView['devices'][number]

/** When a held device's window opens, in words. */
const opens = (x: DeviceView) =>
  x.windowOpensAt ? `opens ${new Date(x.windowOpensAt).toISOString()}` : 'no window within 8 days'

/**
 * A device the deployment still waits for: a held one with its reason [EF-8.16], an offline one as
 * pending rather than stuck in `sent` [EF-8.14].
 */
function shownState(x: DeviceView): string {
  if (TERMINAL_STATES.has(x.state)) return x.state
  if (x.state === 'waiting_window') return `waiting_window (${opens(x)})`
  if (HELD_STATES.has(x.state)) return x.state
  return x.online ? x.state : 'pending (offline)'
}

/** Why pending devices wait, for the timeout message: held for a window or conditions, or offline. */
function pendingReasons(pending: DeviceView[]): string {
  const why = (label: string, list: DeviceView[], detail: (x: DeviceView) => string = (x) => x.deviceId) =>
    list.length ? [`${label}: ${list.map(detail).join(', ')}`] : []
  const held = pending.filter((x) => HELD_STATES.has(x.state))
  const reasons = [
    ...why(
      'waiting for a maintenance window',
      held.filter((x) => x.state === 'waiting_window'),
      (x) => `${x.deviceId} (${opens(x)})`,
    ),
    ...why(
      'waiting for conditions',
      held.filter((x) => x.state === 'waiting_conditions'),
    ),
    ...why(
      'offline',
      pending.filter((x) => !HELD_STATES.has(x.state) && !x.online),
    ),
  ]
  return reasons.length ? ` (${reasons.join('; ')})` : ''
}

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
    const open = view.devices.filter((x) => !TERMINAL_STATES.has(x.state))
    const held = open.filter((x) => HELD_STATES.has(x.state)).length
    const offline = open.filter((x) => !HELD_STATES.has(x.state) && !x.online).length
    progress?.write(
      `\r${progressBar(finished, view.devices.length)} devices done` +
        `${held ? `, ${held} held for their window or conditions` : ''}${offline ? `, ${offline} offline` : ''}`,
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
    err.write(
      `EF_ERR_DEPLOY_PENDING: ${pending.length} device(s) still pending after ${timeoutS}s${pendingReasons(pending)}` +
        `; they get the deploy when they connect and their window opens (edgefleet deployment show ${final.view.deployment.id})\n`,
    )
    return EXIT_PENDING
  }
  return final.view.devices.every((d) => d.state === 'activated') ? 0 : 1
}

const deploy = command({
  name: 'deploy',
  summary: ['deploy N@V --target T', 'push a version to devices (profile=P | tag=k=v | device=ID)'],
  help: `edgefleet deploy N@V --target profile=P|tag=k=v|device=ID [--now] [--rollback] [--wait] [--timeout SECONDS] [--json]
  A device outside its profile's maintenance window, or whose state does not show the profile's
  conditions (charging, unmetered, idle), gets the deploy when they allow: its state is waiting_window
  (with the time the window opens) or waiting_conditions until then.
  --now             send to every device at once, ignoring windows and conditions
  --wait            wait until every device is done; offline and held devices show as pending. Exit 0: all
                    activated, 1: some failed, ${EXIT_PENDING}: devices still pending at --timeout (default 600)`,
  options: {
    target: { type: 'string' },
    now: { type: 'boolean' },
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
      ...(args.flag('now') ? { now: true } : {}),
    })
    if (!args.flag('wait')) {
      const held = created.devices.filter((x) => HELD_STATES.has(x.state)).length
      emit(
        created,
        () =>
          `deployment ${created.deployment.id}: ${model}@${version} → ${created.devices.length} device(s)` +
          (held ? `, ${held} held for their maintenance window or conditions` : ''),
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
