// The retraining loop of one model [EF-9]: lineage (which version came from
// which, with its builds and rollouts), drift per version × profile × input
// with its status and when it was evaluated ("no baseline yet" until a
// version's first field traffic is in [EF-9.4]), and the newest feed records.
import { api, apiText, enc } from '../api'
import { fmt, sum, when } from '../format'
import { useLoad } from '../hooks'
import type { ViewProps } from '../router'
import type { DriftItem, ModelList } from '../types'
import { Load, Stat } from './common'

interface LineageItem {
  version: string
  parent: string | null
  runId: string | null
  builds: { profile: string; status: string; precision: string | null; errorCode: string | null }[]
  rollouts: { id: string; state: string }[]
  baselines: { profile: string; source: string }[]
  drifting?: (string | { profile?: string; subject?: string })[]
}
interface FeedRecord {
  cursor: number
  kind: string
  version: string | null
  /** When the hub appended the record, ms. */
  at?: number
  body?: unknown
}

async function load(requested: string | undefined) {
  const list = await api<ModelList>('GET', '/api/v1/models')
  const model = requested ?? list.items[0]?.name
  if (!model) return { names: [], model: undefined }
  const m = enc(model)
  const [lineage, drift, status, feedText] = await Promise.all([
    api<{ items: LineageItem[] }>('GET', `/api/v1/models/${m}/lineage`),
    api<{ items: DriftItem[]; threshold: number }>('GET', `/api/v1/drift?model=${m}`),
    api<{ feed: { byKind: Record<string, number> } }>('GET', '/api/v1/retraining/status'),
    apiText(`/api/v1/feed?model=${m}&limit=500`),
  ])
  const feed = feedText
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as FeedRecord)
    .slice(-20)
    .reverse()
  return { names: list.items.map((i) => i.name), model, lineage: lineage.items, drift, status, feed }
}

export function RetrainingView(props: ViewProps) {
  const data = useLoad(() => load(props.args[0]), [props.args[0]])
  return (
    <Load data={data}>
      {(loaded) => {
        if (loaded.model === undefined || !loaded.lineage) return <p>No model registered yet.</p>
        const open = loaded.drift.items.filter((x) => x.open).length
        return (
          <>
            <h2>Retraining loop: {loaded.model}</h2>
            <p id="model-picker">
              {loaded.names.map((n) => (
                <a key={n} href={`#/retraining/${enc(n)}`} class={n === loaded.model ? 'active' : ''}>
                  {n}{' '}
                </a>
              ))}
            </p>
            <div class="cards">
              <Stat label="versions">{loaded.lineage.length}</Stat>
              <Stat label="drifting now" id="drift-open" class={open ? 'bad' : 'good'}>
                {open}
              </Stat>
              <Stat label="feed records">{sum(Object.values(loaded.status.feed.byKind))}</Stat>
              <Stat label="drift threshold (PSI)">{fmt(loaded.drift.threshold)}</Stat>
            </div>
            <LineageTable items={loaded.lineage} />
            <DriftTable items={loaded.drift.items} threshold={loaded.drift.threshold} />
            <FeedTable records={loaded.feed} />
          </>
        )
      }}
    </Load>
  )
}

function LineageTable({ items }: { items: LineageItem[] }) {
  const driftText = (v: LineageItem) =>
    (v.drifting ?? []).map((x) => (typeof x === 'string' ? x : `${x.profile ?? ''} ${x.subject ?? ''}`)).join(', ') ||
    '–'
  return (
    <>
      <h2>Lineage</h2>
      <table id="lineage">
        <thead>
          <tr>
            {['version', 'from', 'run', 'builds', 'rollouts', 'baselines', 'drifting'].map((h) => (
              <th key={h}>{h}</th>
            ))}
          </tr>
        </thead>
        <tbody>
          {items.map((item) => (
            <tr key={item.version} data-version={item.version}>
              <td>{item.version}</td>
              <td>{item.parent ?? '–'}</td>
              <td>{item.runId ?? '–'}</td>
              <td>
                {item.builds.map((b) => (
                  <span key={b.profile} class={b.status === 'ok' ? 'good' : 'bad'}>
                    {b.profile}:{b.precision ?? b.errorCode}{' '}
                  </span>
                ))}
              </td>
              <td>
                {item.rollouts.map((x) => (
                  <a key={x.id} href={`#/rollout/${enc(x.id)}`}>
                    {x.state}{' '}
                  </a>
                ))}
              </td>
              <td>{item.baselines.map((b) => `${b.profile} (${b.source})`).join(', ')}</td>
              <td>{driftText(item)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  )
}

const STATUS_TEXT = { no_baseline_yet: 'no baseline yet', drifting: 'drifting', stable: 'stable' }

/** Drift as a table: full labels (a chart axis cut them off), the PSI against the threshold, and when. */
function DriftTable(props: { items: DriftItem[]; threshold: number }) {
  const max = Math.max(props.threshold * 2, ...props.items.map((x) => x.psi ?? 0))
  return (
    <>
      <h2>Drift (PSI) per version · profile · input</h2>
      <table id="drift">
        <thead>
          <tr>
            {['version', 'profile', 'input / output', 'requests', 'PSI', 'status', 'evaluated'].map((h) => (
              <th key={h}>{h}</th>
            ))}
          </tr>
        </thead>
        <tbody>
          {props.items.map((drift) => (
            <tr key={`${drift.version} ${drift.profile} ${drift.subject}`} data-status={drift.status}>
              <td>{drift.version}</td>
              <td>{drift.profile}</td>
              <td>{drift.subject}</td>
              <td>{drift.count}</td>
              <td>
                {drift.psi === null || drift.status === 'no_baseline_yet' ? (
                  '–'
                ) : (
                  <>
                    <span class="bar">
                      <i
                        class={drift.open ? 'failed' : 'ok'}
                        style={{ width: `${((drift.psi / max) * 100).toFixed(1)}%` }}
                      />
                    </span>{' '}
                    {fmt(drift.psi, 3)}
                  </>
                )}
              </td>
              <td class={drift.status === 'drifting' ? 'bad' : ''}>{STATUS_TEXT[drift.status]}</td>
              <td>{when(drift.evaluatedAt)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  )
}

function FeedTable({ records }: { records: FeedRecord[] }) {
  return (
    <>
      <h2>Latest feed records</h2>
      <table id="feed">
        <thead>
          <tr>
            {['cursor', 'kind', 'version', 'time', 'detail'].map((h) => (
              <th key={h}>{h}</th>
            ))}
          </tr>
        </thead>
        <tbody>
          {records.map((f) => (
            <tr key={f.cursor} data-kind={f.kind}>
              <td>{f.cursor}</td>
              <td>{f.kind}</td>
              <td>{f.version ?? ''}</td>
              <td>{when(f.at)}</td>
              <td>
                <code>{JSON.stringify(f.body ?? f).slice(0, 160)}</code>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  )
}
