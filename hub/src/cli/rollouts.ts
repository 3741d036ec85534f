// `edgefleet rollout …`: create, list, show (with --wait progress bars),
// and the operator actions [EF-8.7], over the HTTP API.
import { EdgeFleetError } from '@edgefleet/shared'
import type { HubClient } from './http.js'
import { progressBar, table } from './format.js'

export const ROLLOUT_HELP = {
  'rollout create': `edgefleet rollout create N@V --selector EXPR [options] [--wait] [--json]
  --selector EXPR   e.g. "tag=fleet=demo and not region=us" (profile=P, tag=k=v, region=R, device=ID, devices=A,B; and/or/not, parentheses)
  --waves LIST      cumulative waves: percentages and/or counts, e.g. 1%,10%,50%,100% or 5,50,100% (default 1%,10%,50%,100%)
  --soak DUR        soak after each wave: 500ms, 30s, 10m, 2h (default 10m)
  --on-fail ACTION  pause (default) or rollback when a gate fails
  --max-error-rate-delta X  --max-p95-ratio X  --min-agreement X  --max-confidence-psi X  --min-requests N
                    (a gate's X may be 'off')
  --shadow F        shadow stage: run the new version on fraction F of live requests before each wave's deploy
  --start CRON      start at the next match of a node-cron expression (--timezone TZ)
  --no-windows      ignore the profiles' maintenance windows
  --condition C     only deploy to devices showing C: unmetered, charging, idle (repeatable)
  --jitter DUR      spread each wave's deploys over DUR
  --approval        wait for 'edgefleet rollout approve ID' between waves
  --wait            show progress bars until the rollout ends`,
  'rollout list': `edgefleet rollout list [--state S] [--limit N] [--offset N] [--json]`,
  'rollout show': `edgefleet rollout show ID [--wait] [--json]`,
  'rollout pause': `edgefleet rollout pause ID [--json]`,
  'rollout resume': `edgefleet rollout resume ID [--json]`,
  'rollout abort': `edgefleet rollout abort ID [--json]`,
  'rollout rollback': `edgefleet rollout rollback ID [--json]`,
  'rollout promote': `edgefleet rollout promote ID [--json]   (skip the current soak or approval wait)`,
  'rollout approve': `edgefleet rollout approve ID [--json]`,
} as const

const GATE_FLAGS = [
  ['max-error-rate-delta', 'maxErrorRateDelta'],
  ['max-p95-ratio', 'maxP95Ratio'],
  ['min-agreement', 'minShadowAgreement'],
  ['max-confidence-psi', 'maxConfidencePsi'],
  ['min-requests', 'minRequests'],
] as const

/** Gate settings given on the command line (rollout create, model add --canary); `off` turns a gate off (null). */
export function gateFlags(o: Record<string, unknown>): Record<string, number | null> {
  const gates: Record<string, number | null> = {}
  for (const [flag, key] of GATE_FLAGS) {
    const v = o[flag]
    if (typeof v === 'string') gates[key] = v === 'off' ? null : Number(v)
  }
  return gates
}

export const ROLLOUT_OPTIONS = {
  selector: { type: 'string' },
  waves: { type: 'string' },
  soak: { type: 'string' },
  'on-fail': { type: 'string' },
  'max-error-rate-delta': { type: 'string' },
  'max-p95-ratio': { type: 'string' },
  'min-agreement': { type: 'string' },
  'max-confidence-psi': { type: 'string' },
  'min-requests': { type: 'string' },
  shadow: { type: 'string' },
  start: { type: 'string' },
  timezone: { type: 'string' },
  'no-windows': { type: 'boolean' },
  condition: { type: 'string', multiple: true },
  jitter: { type: 'string' },
  approval: { type: 'boolean' },
  state: { type: 'string' },
  limit: { type: 'string' },
  offset: { type: 'string' },
} as const

export class RolloutUsageError extends Error {}

/** 500ms, 30s, 10m, 2h or plain milliseconds. */
export function parseDuration(s: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(s.trim())
  if (!m) throw new RolloutUsageError(`duration must look like 500ms, 30s, 10m or 2h, got ${JSON.stringify(s)}`)
  const mult = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] ?? 'ms']!
  return Math.round(Number(m[1]) * mult)
}

export function parseWaves(s: string): { percent?: number; count?: number }[] {
  return s.split(',').map((w) => {
    const t = w.trim()
    if (t.endsWith('%')) return { percent: Number(t.slice(0, -1)) }
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

function showText(v: RolloutView): string {
  const r = v.rollout
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
  const last = v.decisions.slice(-5)
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
    const r = v.rollout
    const done = (r.totals.activated ?? 0) + (r.totals.skipped ?? 0)
    progress?.write(
      `\r${progressBar(done, r.devices)} devices on ${r.version} · wave ${r.wave + 1}/${r.waves.length} ${r.phase} · ${r.state}      `,
    )
    if (FINAL.has(r.state) || r.state === 'paused') {
      progress?.write('\n')
      return v
    }
    if (Date.now() > deadline) {
      progress?.write('\n')
      throw new EdgeFleetError('EF_ERR_DOWNLOAD_TIMEOUT', `rollout ${id} still ${r.state} after ${timeoutMs / 1000}s`)
    }
    await new Promise((res) => setTimeout(res, 500))
  }
}

type Opts = Record<string, string | boolean | string[] | undefined>

export async function rolloutCommand(
  hub: HubClient,
  sub: string,
  pos: string[],
  o: Opts,
  emit: (data: unknown, text: () => string) => void,
  err: NodeJS.WritableStream,
): Promise<number> {
  const str = (k: string) => (typeof o[k] === 'string' ? (o[k] as string) : undefined)
  const num = (k: string) => (str(k) !== undefined ? Number(str(k)) : undefined)
  switch (sub) {
    case 'create': {
      const ref = pos[2]
      const at = ref?.lastIndexOf('@') ?? -1
      if (!ref || at <= 0 || at === ref.length - 1) throw new RolloutUsageError('expected MODEL@VERSION')
      const selector = str('selector') ?? str('target')
      if (!selector) throw new RolloutUsageError('rollout create needs --selector EXPR')
      const gates = gateFlags(o)
      const schedule: Record<string, unknown> = {}
      if (str('start')) schedule.start = str('start')
      if (str('timezone')) schedule.timezone = str('timezone')
      if (o['no-windows']) schedule.maintenanceWindows = false
      if (Array.isArray(o.condition)) schedule.conditions = o.condition
      if (str('jitter')) schedule.jitterMs = parseDuration(str('jitter')!)
      const body = {
        model: ref.slice(0, at),
        version: ref.slice(at + 1),
        selector,
        ...(str('waves') ? { waves: parseWaves(str('waves')!) } : {}),
        ...(str('soak') ? { soakMs: parseDuration(str('soak')!) } : {}),
        ...(str('on-fail') ? { onFail: str('on-fail') } : {}),
        ...(Object.keys(gates).length ? { gates } : {}),
        ...(Object.keys(schedule).length ? { schedule } : {}),
        ...(o.approval ? { approval: true } : {}),
        ...(num('shadow') !== undefined ? { shadow: { fraction: num('shadow') } } : {}),
      }
      const v = await hub.request<RolloutView>('POST', '/api/v1/rollouts', body)
      if (!o.wait) {
        emit(v, () => showText(v))
        return 0
      }
      const final = await waitRollout(
        hub,
        v.rollout.id,
        Number(str('timeout') ?? 3600) * 1000,
        o.json ? undefined : err,
      )
      emit(final, () => showText(final))
      return final.rollout.state === 'completed' ? 0 : 1
    }
    case 'list': {
      const q = new URLSearchParams()
      if (str('state')) q.set('state', str('state')!)
      if (str('limit')) q.set('limit', str('limit')!)
      if (str('offset')) q.set('offset', str('offset')!)
      const r = await hub.request<{ items: RolloutView['rollout'][]; total: number }>(
        'GET',
        `/api/v1/rollouts${q.size ? `?${q}` : ''}`,
      )
      emit(
        r.items,
        () =>
          table(
            r.items.map((x) => ({
              id: x.id,
              model: `${x.model}@${x.version}`,
              state: x.state,
              wave: `${x.wave + 1}/${x.waves.length}`,
              devices: x.devices,
              activated: x.totals.activated ?? 0,
              selector: x.selectorText,
            })),
            ['id', 'model', 'state', 'wave', 'devices', 'activated', 'selector'],
          ) + `\n${r.items.length} of ${r.total}`,
      )
      return 0
    }
    case 'show': {
      if (!pos[2]) throw new RolloutUsageError('rollout show needs ID')
      const v = o.wait
        ? await waitRollout(hub, pos[2], Number(str('timeout') ?? 3600) * 1000, o.json ? undefined : err)
        : await hub.request<RolloutView>('GET', `/api/v1/rollouts/${encodeURIComponent(pos[2])}`)
      emit(v, () => showText(v))
      return 0
    }
    case 'pause':
    case 'resume':
    case 'abort':
    case 'rollback':
    case 'promote':
    case 'approve': {
      if (!pos[2]) throw new RolloutUsageError(`rollout ${sub} needs ID`)
      const v = await hub.request<RolloutView>('POST', `/api/v1/rollouts/${encodeURIComponent(pos[2])}/${sub}`, {})
      emit(v, () => showText(v))
      return 0
    }
    default:
      throw new RolloutUsageError(`unknown rollout command ${JSON.stringify(sub)}`)
  }
}
