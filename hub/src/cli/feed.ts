// `edgefleet feed …` and `edgefleet drift`: the retraining feed from the
// command line [EF-9.6, EF-9.9] and the drift table [EF-9.5].
import { EdgeFleetError, isErrorCode } from '@edgefleet/shared'
import type { HubClient } from './http.js'
import { table } from './format.js'
import { exportDataset, type ExportSource } from '../feed/export.js'

export const FEED_HELP = {
  'feed export': `edgefleet feed export MODEL --out dataset.tar [--since CURSOR] [--json]
  Writes the model's feed after CURSOR as a tar: index.jsonl (one record per line, cursor order)
  and samples/{cursor}/{inputs|outputs|shadow}/{name}.npy. Resume with --since <last cursor printed>.`,
  'feed tail': `edgefleet feed tail [MODEL] [--since CURSOR] [--follow] [--limit N]
  Prints feed records as NDJSON; --follow keeps printing new records as they are committed.`,
  drift: `edgefleet drift [--model N] [--json]   PSI per version, profile and subject; drifting rows marked`,
}

export const FEED_OPTIONS = {
  since: { type: 'string' },
  out: { type: 'string' },
  follow: { type: 'boolean' },
} as const

export class FeedUsageError extends Error {}

type Opts = { since?: string; out?: string; follow?: boolean; limit?: string; model?: string; json?: boolean }

function cursorOf(s: string | undefined): number | undefined {
  if (s === undefined) return undefined
  if (!/^\d+$/.test(s))
    throw new FeedUsageError(`--since must be a cursor (a non-negative integer), got ${JSON.stringify(s)}`)
  return Number(s)
}

/** GET that returns text and reports the hub's error code, with the CLI's token. */
async function getText(hub: HubClient, path: string): Promise<Response> {
  const res = await fetch(new URL(path, hub.baseUrl), {
    headers: hub.token ? { authorization: `Bearer ${hub.token}` } : {},
  }).catch((err: Error & { cause?: Error }) => {
    throw new EdgeFleetError(
      'EF_ERR_CONFIG_INVALID',
      `cannot reach the hub at ${hub.baseUrl} (${err.cause?.message ?? err.message})`,
    )
  })
  if (!res.ok) {
    const body = (await res.json().catch(() => undefined)) as
      { error?: { code?: string; message?: string } } | undefined
    const e = new EdgeFleetError(isErrorCode(body?.error?.code) ? body!.error!.code : 'EF_ERR_INTERNAL')
    e.message = body?.error?.message ?? `HTTP ${res.status}`
    throw e
  }
  return res
}

export async function feedCommand(
  hub: HubClient,
  cmd: string,
  pos: string[],
  o: Opts,
  emit: (data: unknown, text: () => string) => void,
  out: NodeJS.WritableStream,
): Promise<number> {
  if (cmd === 'drift') {
    const q = o.model ? `?model=${encodeURIComponent(o.model)}` : ''
    const r = await hub.request<{
      items: {
        model: string
        version: string
        profile: string
        subject: string
        psi: number | null
        count: number
        baselineSource: string | null
        open: boolean
      }[]
      threshold: number
    }>('GET', `/api/v1/drift${q}`)
    emit(
      r,
      () =>
        `threshold ${r.threshold}\n` +
        table(
          r.items.map((d) => ({
            ...d,
            psi: d.psi === null ? null : d.psi.toFixed(4),
            drifting: d.open ? 'DRIFT' : '',
          })),
          ['model', 'version', 'profile', 'subject', 'psi', 'count', 'baselineSource', 'drifting'],
        ),
    )
    return 0
  }
  const sub = pos[1]
  if (sub === 'export') {
    const model = pos[2]
    if (!model || !o.out) throw new FeedUsageError('feed export needs MODEL and --out FILE.tar')
    const src: ExportSource = { text: async (path) => (await getText(hub, path)).text() }
    const r = await exportDataset(src, { model, since: cursorOf(o.since), out: o.out })
    emit(
      r,
      () =>
        `exported ${r.records} records (${r.samples} samples, ${r.tensors} tensors, ${r.bytes} bytes) to ${o.out}\nnext export: --since ${r.last}`,
    )
    return 0
  }
  if (sub === 'tail') {
    const q = new URLSearchParams()
    if (pos[2]) q.set('model', pos[2])
    const since = cursorOf(o.since)
    if (since !== undefined) q.set('since', String(since))
    if (o.limit) q.set('limit', o.limit)
    if (o.follow) q.set('follow', 'true')
    const res = await getText(hub, `/api/v1/feed?${q}`)
    if (!res.body) return 0
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) out.write(chunk)
    return 0
  }
  throw new FeedUsageError(`unknown feed command ${JSON.stringify(sub ?? '')}; try feed export or feed tail`)
}
