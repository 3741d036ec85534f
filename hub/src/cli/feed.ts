// `edgefleet feed export|tail` and `edgefleet drift`: the retraining feed from the
// command line [EF-9.6, EF-9.9] and the drift table [EF-9.5].
import { EdgeFleetError, isErrorCode } from '@edgefleet/shared'
import { command, UsageError, type Command } from './command.js'
import type { HubClient } from './http.js'
import { table } from './format.js'
import { exportDataset, type ExportSource } from '../feed/export.js'

function cursorOf(s: string | undefined): number | undefined {
  if (s === undefined) return undefined
  if (!/^\d+$/.test(s))
    throw new UsageError(`--since must be a cursor (a non-negative integer), got ${JSON.stringify(s)}`)
  return Number(s)
}

/** GET that returns text and reports the hub's error code, with the CLI's token. */
async function getText(hub: HubClient, path: string): Promise<Response> {
  const res = await hub.fetch(path, { headers: hub.token ? { authorization: `Bearer ${hub.token}` } : {} })
  if (!res.ok) {
    const body = (await res.json().catch(() => undefined)) as
      { error?: { code?: string; message?: string } } | undefined
    const e = new EdgeFleetError(isErrorCode(body?.error?.code) ? body.error.code : 'EF_ERR_INTERNAL')
    e.message = body?.error?.message ?? `HTTP ${res.status}`
    throw e
  }
  return res
}

interface DriftRow {
  model: string
  version: string
  profile: string
  subject: string
  psi: number | null
  count: number
  baselineSource: string | null
  open: boolean
  /** no_baseline_yet until a field or posted baseline exists [EF-9.4]. */
  status?: string
}

const drift = command({
  name: 'drift',
  summary: ['drift [--model N]', 'input and output drift (PSI) per version and profile'],
  help: `edgefleet drift [--model N] [--json]   PSI per version, profile and subject; drifting rows marked`,
  options: { model: { type: 'string' } },
  async run({ args, hub, emit }) {
    const model = args.str('model')
    const q = model ? `?model=${encodeURIComponent(model)}` : ''
    const r = await hub.request<{ items: DriftRow[]; threshold: number }>('GET', `/api/v1/drift${q}`)
    emit(
      r,
      () =>
        `threshold ${r.threshold}\n` +
        table(
          r.items.map((d) => ({
            ...d,
            psi: d.status === 'no_baseline_yet' ? 'no baseline yet' : d.psi === null ? null : d.psi.toFixed(4),
            drifting: d.open ? 'DRIFT' : '',
          })),
          ['model', 'version', 'profile', 'subject', 'psi', 'count', 'baselineSource', 'drifting'],
        ),
    )
    return 0
  },
})

const feedExport = command({
  name: 'feed export',
  summary: [
    'feed export MODEL --out F.tar',
    'retraining dataset: .npy tensors + index.jsonl (resumable --since CURSOR)',
  ],
  help: `edgefleet feed export MODEL --out dataset.tar [--since CURSOR] [--json]
  Writes the model's feed after CURSOR as a tar: index.jsonl (one record per line, cursor order)
  and samples/{cursor}/{inputs|outputs|shadow}/{name}.npy. Resume with --since <last cursor printed>.`,
  options: { out: { type: 'string' }, since: { type: 'string' } },
  async run({ args, hub, emit }) {
    const model = args.pos[0]
    const out = args.str('out')
    if (!model || !out) throw new UsageError('feed export needs MODEL and --out FILE.tar')
    const since = cursorOf(args.str('since'))
    const src: ExportSource = { text: async (path) => (await getText(hub, path)).text() }
    const r = await exportDataset(src, { model, since, out })
    emit(
      r,
      () =>
        `exported ${r.records} records (${r.samples} samples, ${r.tensors} tensors, ${r.bytes} bytes) to ${out}\nnext export: --since ${r.last}`,
    )
    return 0
  },
})

const feedTail = command({
  name: 'feed tail',
  summary: ['feed tail [MODEL] [--follow]', 'the retraining feed as NDJSON (samples, drift, disagreements, labels)'],
  help: `edgefleet feed tail [MODEL] [--since CURSOR] [--follow] [--limit N]
  Prints feed records as NDJSON; --follow keeps printing new records as they are committed.`,
  options: { since: { type: 'string' }, follow: { type: 'boolean' }, limit: { type: 'string' } },
  async run({ args, hub, out }) {
    const q = new URLSearchParams()
    if (args.pos[0]) q.set('model', args.pos[0])
    const since = cursorOf(args.str('since'))
    if (since !== undefined) q.set('since', String(since))
    const limit = args.str('limit')
    if (limit) q.set('limit', limit)
    if (args.flag('follow')) q.set('follow', 'true')
    const res = await getText(hub, `/api/v1/feed?${q}`)
    if (!res.body) return 0
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) out.write(chunk)
    return 0
  },
})

export const feedCommands: Command[] = [feedExport, feedTail, drift]
