// `edgefleet rollout …`: create, list, show (with --wait progress bars),
// and the operator actions [EF-8.7], over the HTTP API. Also the gate flags
// `model add --canary` shares [EF-8.5].
import { EdgeFleetError } from '@edgefleet/shared'
import { GATE_RANGES, defaultGates, type Gates } from '../rollouts/spec.js'
import { command, UsageError, type Args, type Command } from './command.js'
import type { HubClient } from './http.js'
import { progressBar, table } from './format.js'
import { parseNumber } from './model-options.js'

/** Flag → gate. Each of the first four takes a number in its range or `off`; --min-requests a count. */
const GATE_FLAGS = [
  ['max-error-rate-delta', 'maxErrorRateDelta'],
  ['max-p95-ratio', 'maxP95Ratio'],
  ['min-agreement', 'minShadowAgreement'],
  ['max-confidence-psi', 'maxConfidencePsi'],
  ['min-requests', 'minRequests'],
  ['max-failed-devices', 'maxFailedDevices'],
  ['confidence', 'confidence'],
] as const satisfies readonly (readonly [string, keyof Gates])[]

export const GATE_OPTIONS = Object.fromEntries(GATE_FLAGS.map(([flag]) => [flag, { type: 'string' }])) as Record<
  (typeof GATE_FLAGS)[number][0],
  { type: 'string' }
>

const range = (k: keyof typeof GATE_RANGES) =>
  `X in [${GATE_RANGES[k].join(', ')}] (default ${defaultGates[k] ?? 'off'})`
export const GATE_HELP = `  --max-error-rate-delta X|off  cohort error rate at most the baseline's + X, ${range('maxErrorRateDelta')}
  --max-p95-ratio X|off         cohort p95 latency / baseline p95 at most X, ${range('maxP95Ratio')}
  --min-agreement X|off         shadow top-1 agreement at least X, ${range('minShadowAgreement')}
  --max-confidence-psi X|off    confidence PSI against the baseline at most X, ${range('maxConfidencePsi')}
  --min-requests N              requests the cohort serves before a wave is judged, a whole number ≥ 0 (default ${defaultGates.minRequests})
  --max-failed-devices N        devices per wave that may fail their install (an agent rollout: roll back or not confirm) (default ${defaultGates.maxFailedDevices})
  --confidence X                chance a version as good as the baseline is not paused, X in [0.5, 0.99999] (default ${defaultGates.confidence})
                                ('off' turns a gate off; anything that is not a number in range is refused)`

/** One gate flag's value: a number in the gate's range, `off` (null) where the gate can be off [EF-8.5]. */
function parseGate(flag: string, key: keyof Gates, text: string): number | null {
  if (key === 'minRequests' || key === 'maxFailedDevices') {
    if (!/^\d+$/.test(text.trim()))
      throw new UsageError(`--${flag} must be a whole number ≥ 0, got ${JSON.stringify(text)}`)
    return Number(text)
  }
  if (key === 'confidence') {
    const n = Number(text)
    if (!/^0?\.\d+$/.test(text.trim()) || !(n >= 0.5 && n <= 0.99999))
      throw new UsageError(`--${flag} must be a number in [0.5, 0.99999], got ${JSON.stringify(text)}`)
    return n
  }
  const range = GATE_RANGES[key as keyof typeof GATE_RANGES]
  if (text.trim() === 'off') return null
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text.trim()))
    throw new UsageError(`--${flag} must be a number in [${range.join(', ')}] or 'off', got ${JSON.stringify(text)}`)
  const n = Number(text)
  if (!(n >= range[0] && n <= range[1]))
    throw new UsageError(`--${flag} must be in [${range.join(', ')}] or 'off', got ${text}`)
  return n
}

/** Gate settings given on the command line (rollout create, model add --canary); `off` turns a gate off (null). */
export function gateFlags(o: Record<string, unknown>): Record<string, number | null> {
  const gates: Record<string, number | null> = {}
  for (const [flag, key] of GATE_FLAGS) {
    const v = o[flag]
    if (typeof v === 'string') gates[key] = parseGate(flag, key, v)
  }
  return gates
}

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }

/** 500ms, 30s, 10m, 2h or plain milliseconds. */
export function parseDuration(s: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(s.trim())
  if (!m) throw new UsageError(`duration must look like 500ms, 30s, 10m or 2h, got ${JSON.stringify(s)}`)
  return Math.round(Number(m[1]) * UNIT_MS[m[2] ?? 'ms'])
}

/** 1%,10%,100% or 5,50,100%: cumulative percentages and counts (the hub checks their order [EF-8.3]). */
export function parseWaves(s: string): { percent?: number; count?: number }[] {
  return s.split(',').map((w) => {
    const t = w.trim()
    if (t.endsWith('%')) return { percent: parseNumber(t.slice(0, -1), `--waves ${JSON.stringify(t)}`) }
    if (!/^\d+$/.test(t)) throw new UsageError(`--waves: ${JSON.stringify(t)} is neither a percentage nor a count`)
    return { count: Number(t) }
  })
}

interface RolloutView {
  rollout: {
    id: string
    model: string
    version: string
    state: string
    wave: number
    phase: string
    reason: string | null
    selectorText: string
    devices: number
    totals: Record<string, number>
    waves: {
      index: number
      percent: number | null
      count: number | null
      devices: number
      counts: Record<string, number>
    }[]
  }
  decisions: {
    ts: number
    wave: number
    kind: string
    decision: string
    detail: Record<string, unknown>
    actor: string | null
  }[]
}

const FINAL = new Set(['completed', 'aborted', 'rolled_back'])

function showText(view: RolloutView): string {
  const r = view.rollout
  const lines = [
    `rollout ${r.id}: ${r.model}@${r.version} → ${r.selectorText}`,
    `  state ${r.state}, wave ${r.wave + 1}/${r.waves.length} (${r.phase})${r.reason ? ` — ${r.reason}` : ''}`,
  ]
  for (const w of r.waves) {
    const done = (w.counts.activated ?? 0) + (w.counts.skipped ?? 0)
    lines.push(
      `  wave ${w.index + 1} ${(w.percent !== null ? `${w.percent}%` : `${w.count}`).padStart(5)}  ${progressBar(done, w.devices, 20)}  ${Object.entries(
        w.counts,
      )
        .map(([k, n]) => `${k}=${n}`)
        .join(' ')}`,
    )
  }
  const last = view.decisions.slice(-5)
  if (last.length)
    lines.push(
      '  recent decisions:',
      ...last.map(
        (d) =>
          `    ${new Date(d.ts).toISOString()} wave ${d.wave + 1} ${d.kind} ${d.decision}${d.actor ? ` by ${d.actor}` : ''} ${JSON.stringify(d.detail).slice(0, 160)}`,
      ),
    )
  return lines.join('\n')
}

async function waitRollout(
  hub: HubClient,
  id: string,
  timeoutMs: number,
  progress?: NodeJS.WritableStream,
): Promise<RolloutView> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = await hub.request<RolloutView>('GET', `/api/v1/rollouts/${encodeURIComponent(id)}`)
    const rollout = v.rollout
    const done = (rollout.totals.activated ?? 0) + (rollout.totals.skipped ?? 0)
    progress?.write(
      `\r${progressBar(done, rollout.devices)} devices on ${rollout.version} · wave ${rollout.wave + 1}/${rollout.waves.length} ${rollout.phase} · ${rollout.state}      `,
    )
    if (FINAL.has(rollout.state) || rollout.state === 'paused') {
      progress?.write('\n')
      return v
    }
    if (Date.now() > deadline) {
      progress?.write('\n')
      throw new EdgeFleetError(
        'EF_ERR_DOWNLOAD_TIMEOUT',
        `rollout ${id} still ${rollout.state} after ${timeoutMs / 1000}s`,
      )
    }
    await new Promise((res) => setTimeout(res, 500))
  }
}

const WAIT_OPTIONS = { wait: { type: 'boolean' }, timeout: { type: 'string' } } as const

/** The request body of rollout create, from its flags. */
function createBody(args: Args): Record<string, unknown> {
  const agent = args.str('agent')
  if (agent && args.pos[0]) throw new UsageError('rollout create takes N@V or --agent V, not both')
  // An agent rollout names an agent release instead of a model version [EF-8.17].
  const subject = agent ? { agent } : splitRolloutRef(args.pos[0])
  const selector = args.str('selector') ?? args.str('target')
  if (!selector) throw new UsageError('rollout create needs --selector EXPR')
  const gates = gateFlags(args.pick(Object.keys(GATE_OPTIONS)))
  const schedule: Record<string, unknown> = {}
  if (args.str('start')) schedule.start = args.str('start')
  if (args.str('timezone')) schedule.timezone = args.str('timezone')
  if (args.flag('no-windows')) schedule.maintenanceWindows = false
  if (args.strs('condition').length) schedule.conditions = args.strs('condition')
  const jitter = args.str('jitter')
  if (jitter) schedule.jitterMs = parseDuration(jitter)
  const { waves, soak, 'on-fail': onFail, shadow } = args.pick(['waves', 'soak', 'on-fail', 'shadow'])
  return {
    ...subject,
    selector,
    ...(waves ? { waves: parseWaves(waves) } : {}),
    ...(soak ? { soakMs: parseDuration(soak) } : {}),
    ...(onFail ? { onFail } : {}),
    ...(Object.keys(gates).length ? { gates } : {}),
    ...(Object.keys(schedule).length ? { schedule } : {}),
    ...(args.flag('approval') ? { approval: true } : {}),
    ...(args.flag('rollback') ? { rollback: true } : {}),
    ...(shadow !== undefined ? { shadow: { fraction: parseNumber(shadow, '--shadow') } } : {}),
  }
}

function splitRolloutRef(ref: string | undefined): { model: string; version: string } {
  const at = ref?.lastIndexOf('@') ?? -1
  if (!ref || at <= 0 || at === ref.length - 1) throw new UsageError('expected MODEL@VERSION')
  return { model: ref.slice(0, at), version: ref.slice(at + 1) }
}

function timeoutMs(args: Args): number {
  return parseNumber(args.str('timeout') ?? '3600', '--timeout') * 1000
}

const rolloutCreate = command({
  name: 'rollout create',
  summary: ['rollout create N@V|--agent V --selector EXPR', 'staged rollout: waves, soak, health gates, schedule'],
  help: `edgefleet rollout create N@V --selector EXPR [options] [--wait [--timeout SECONDS]] [--json]
       edgefleet rollout create --agent V --selector EXPR [options]   (an agent release, EF-8.17)
  --agent V         roll out agent release V instead of a model: each device gets its architecture's package;
                    a wave passes when its devices confirmed the new agent (a rollback or no confirmation within
                    the deadline counts against --max-failed-devices, default 0: the rollout pauses)
  --selector EXPR   e.g. "tag=fleet=demo and not region=us" (profile=P, tag=k=v, region=R, device=ID, devices=A,B; and/or/not, parentheses)
                    (--target EXPR is accepted for it)
  --waves LIST      cumulative waves: percentages and/or counts, e.g. 1%,10%,50%,100% or 5,50,100% (default 1%,10%,50%,100%)
  --soak DUR        soak after each wave: 500ms, 30s, 10m, 2h (default 10m)
  --on-fail ACTION  pause (default) or rollback when a gate fails
${GATE_HELP}
  --shadow F        shadow stage: run the new version on fraction F of live requests before each wave's deploy
  --start CRON      start at the next match of a node-cron expression (--timezone TZ)
  --no-windows      ignore the profiles' maintenance windows and their conditions
  --condition C     only deploy to devices showing C: unmetered, charging, idle (repeatable)
  --jitter DUR      spread each wave's deploys over DUR
  --approval        wait for 'edgefleet rollout approve ID' between waves
  --rollback        the version is older than devices run: roll them back to it (signed rollback deploys)
  --wait            show progress bars until the rollout ends (--timeout SECONDS, default 3600)`,
  options: {
    agent: { type: 'string' },
    selector: { type: 'string' },
    target: { type: 'string' },
    waves: { type: 'string' },
    soak: { type: 'string' },
    'on-fail': { type: 'string' },
    ...GATE_OPTIONS,
    shadow: { type: 'string' },
    start: { type: 'string' },
    timezone: { type: 'string' },
    'no-windows': { type: 'boolean' },
    condition: { type: 'string', multiple: true },
    jitter: { type: 'string' },
    approval: { type: 'boolean' },
    rollback: { type: 'boolean' },
    ...WAIT_OPTIONS,
  },
  async run({ args, hub, emit, err }) {
    const body = createBody(args)
    const wait = args.flag('wait') ? timeoutMs(args) : undefined
    const v = await hub.request<RolloutView>('POST', '/api/v1/rollouts', body)
    if (wait === undefined) {
      emit(v, () => showText(v))
      return 0
    }
    const final = await waitRollout(hub, v.rollout.id, wait, args.flag('json') ? undefined : err)
    emit(final, () => showText(final))
    return final.rollout.state === 'completed' ? 0 : 1
  },
})

const rolloutList = command({
  name: 'rollout list',
  aliases: ['rollouts list'],
  summary: ['rollout list', 'rollouts with wave progress'],
  help: `edgefleet rollout list [--state S] [--limit N] [--offset N] [--json]`,
  options: { state: { type: 'string' }, limit: { type: 'string' }, offset: { type: 'string' } },
  async run({ args, hub, emit }) {
    const q = new URLSearchParams()
    for (const [k, v] of Object.entries(args.pick(['state', 'limit', 'offset']))) if (v) q.set(k, v)
    const page = await hub.request<{ items: RolloutView['rollout'][]; total: number }>(
      'GET',
      `/api/v1/rollouts${q.size ? `?${q}` : ''}`,
    )
    emit(
      page.items,
      () =>
        table(
          page.items.map((x) => ({
            id: x.id,
            model: `${x.model}@${x.version}`,
            state: x.state,
            wave: `${x.wave + 1}/${x.waves.length}`,
            devices: x.devices,
            activated: x.totals.activated ?? 0,
            selector: x.selectorText,
          })),
          ['id', 'model', 'state', 'wave', 'devices', 'activated', 'selector'],
        ) + `\n${page.items.length} of ${page.total}`,
    )
    return 0
  },
})

const rolloutShow = command({
  name: 'rollout show',
  summary: ['rollout show ID', 'waves and decisions (--wait: progress bars until it ends)'],
  help: `edgefleet rollout show ID [--wait [--timeout SECONDS]] [--json]`,
  options: { ...WAIT_OPTIONS },
  async run({ args, hub, emit, err }) {
    const id = args.pos[0]
    if (!id) throw new UsageError('rollout show needs ID')
    const v = args.flag('wait')
      ? await waitRollout(hub, id, timeoutMs(args), args.flag('json') ? undefined : err)
      : await hub.request<RolloutView>('GET', `/api/v1/rollouts/${encodeURIComponent(id)}`)
    emit(v, () => showText(v))
    return 0
  },
})

const ACTIONS = ['pause', 'resume', 'abort', 'rollback', 'promote', 'approve'] as const

/** The operator actions [EF-8.7], one command each. */
const rolloutActions = ACTIONS.map((action, i) =>
  command({
    name: `rollout ${action}`,
    ...(i === 0 ? { summary: [`rollout ${ACTIONS.join('|')} ID`, 'operator actions'] as [string, string] } : {}),
    help: `edgefleet rollout ${action} ID [--json]${action === 'promote' ? '   (skip the current soak or approval wait)' : ''}`,
    options: {},
    async run({ args, hub, emit }) {
      const id = args.pos[0]
      if (!id) throw new UsageError(`rollout ${action} needs ID`)
      const v = await hub.request<RolloutView>('POST', `/api/v1/rollouts/${encodeURIComponent(id)}/${action}`, {})
      emit(v, () => showText(v))
      return 0
    },
  }),
)

export const rolloutCommands: Command[] = [rolloutCreate, rolloutList, rolloutShow, ...rolloutActions]
