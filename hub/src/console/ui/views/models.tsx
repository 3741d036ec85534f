// Models: upload a version (the ONNX file, its name and version, the version
// it was trained from) and read its build report; every version with its
// lineage and, per profile, the build's precision, size, accuracy against the
// float model and latency estimate [EF-3, EF-5.8].
import { useState } from 'preact/hooks'
import { api, canOperate, enc } from '../api'
import { fmt, pct, size, when } from '../format'
import { useLoad } from '../hooks'
import type { Build, ModelList, VersionView } from '../types'
import { Load, field, onSubmit } from './common'

/** The newest versions shown (each one request). */
const SHOWN = 12

export function ModelsView() {
  const data = useLoad(async () => {
    const list = await api<ModelList>('GET', '/api/v1/models')
    const refs = list.items.flatMap((m) => m.versions.map((v) => [m.name, v] as const)).slice(-SHOWN)
    const views = await Promise.all(
      refs.map(([name, v]) => api<VersionView>('GET', `/api/v1/models/${enc(name)}/versions/${enc(v)}`)),
    )
    return { list, views: views.reverse() }
  }, [])
  return (
    <>
      {canOperate() ? <UploadForm onDone={data.reload} /> : null}
      <h2>Models and builds</h2>
      <Load data={data}>
        {(d) =>
          d.views.length ? (
            <>
              {d.views.map((v) => (
                <VersionCard key={`${v.version.model}@${v.version.version}`} view={v} />
              ))}
            </>
          ) : (
            <p>No model registered yet.</p>
          )
        }
      </Load>
    </>
  )
}

function UploadForm(props: { onDone: () => void }) {
  const [busy, setBusy] = useState(false)
  const [error, setError] = useState('')
  const [report, setReport] = useState<VersionView | undefined>(undefined)
  const upload = onSubmit((form) => {
    const file = (form.elements.namedItem('file') as HTMLInputElement).files?.[0]
    if (!file) return setError('choose an .onnx file')
    const query = new URLSearchParams({ name: field(form, 'name'), version: field(form, 'version') })
    if (field(form, 'parent')) query.set('parent', field(form, 'parent'))
    if (field(form, 'precision')) query.set('options', JSON.stringify({ precision: field(form, 'precision') }))
    setBusy(true)
    setError('')
    file
      .arrayBuffer()
      .then((bytes) => api<VersionView>('POST', `/api/v1/models?${query.toString()}`, bytes))
      .then(
        (made) => {
          setReport(made)
          props.onDone()
        },
        (err: unknown) => setError(err instanceof Error ? err.message : String(err)),
      )
      .finally(() => setBusy(false))
  })
  return (
    <>
      <h2>Upload a model version</h2>
      <form class="inline card" id="upload" onSubmit={upload}>
        <label>
          ONNX file
          <input type="file" name="file" accept=".onnx" required />
        </label>
        <label>
          name
          <input name="name" size={12} required />
        </label>
        <label>
          version
          <input name="version" size={8} placeholder="1.2.0" required />
        </label>
        <label>
          trained from
          <input name="parent" size={14} placeholder="name@version (optional)" />
        </label>
        <label>
          precision
          <select name="precision">
            <option value="">best that passes</option>
            <option>fp32</option>
            <option>fp16</option>
            <option>int8</option>
          </select>
        </label>
        <button class="primary" id="upload-btn" disabled={busy}>
          {busy ? 'Compiling…' : 'Upload and build'}
        </button>
        <span id="upload-error" class="bad">
          {error}
        </span>
      </form>
      {report ? (
        <div id="upload-report">
          <p class="good">
            Registered {report.version.model}@{report.version.version}:{' '}
            {report.builds.filter((b) => b.status === 'ok').length}/{report.builds.length} profiles built.
          </p>
          <VersionCard view={report} />
        </div>
      ) : null}
    </>
  )
}

const num = (value: unknown): number | undefined => (typeof value === 'number' ? value : undefined)

/** Accuracy against the float model and the device latency estimate, from a build's report. */
function reportFigures(build: Build) {
  const report = build.report ?? {}
  const latency = report.latency as Record<string, unknown> | undefined
  return {
    cosine: num(report.cosine),
    top1: num(report.top1Agreement),
    maxAbsError: num(report.maxAbsError),
    latencyMs: num(report.latencyMs) ?? num(latency?.buildMs),
    budgetMs: num(latency?.budgetMs),
  }
}

function VersionCard({ view }: { view: VersionView }) {
  const v = view.version
  return (
    <div class="card version" data-version={`${v.model}@${v.version}`}>
      <h3>
        {v.model}@{v.version} · {size(v.size)} · {when(v.createdAt)}
      </h3>
      <p class="lineage">
        trained from: {v.parent ?? '–'}
        {v.runId ? ` · run ${v.runId}` : ''}
      </p>
      <table class="builds">
        <thead>
          <tr>
            <th>profile</th>
            <th>status</th>
            <th>precision</th>
            <th>size</th>
            <th>cosine</th>
            <th>top-1 agreement</th>
            <th>max abs error</th>
            <th>latency (device est.)</th>
          </tr>
        </thead>
        <tbody>
          {view.builds.map((build) => {
            const figures = reportFigures(build)
            return (
              <tr key={build.profile} data-profile={build.profile}>
                <td>{build.profile}</td>
                <td class={build.status === 'ok' ? 'good' : 'bad'}>{build.status}</td>
                <td>{build.precision ?? '–'}</td>
                <td>{build.sizeBytes === null ? '–' : size(build.sizeBytes)}</td>
                {build.errorCode ? (
                  <td colSpan={4} class="bad">
                    {build.errorCode} {build.error ?? ''}
                  </td>
                ) : (
                  <>
                    <td>{fmt(figures.cosine, 4)}</td>
                    <td>{pct(figures.top1)}</td>
                    <td>{fmt(figures.maxAbsError, 4)}</td>
                    <td>
                      {figures.latencyMs === undefined ? '–' : `${fmt(figures.latencyMs)} ms`}
                      {figures.budgetMs === undefined ? '' : ` (budget ${figures.budgetMs} ms)`}
                    </td>
                  </>
                )}
              </tr>
            )
          })}
        </tbody>
      </table>
    </div>
  )
}
