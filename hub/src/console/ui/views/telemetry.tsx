// Inference telemetry of one model [EF-8.11]: latency p50/p95 and error rate
// per version over time (gaps where no telemetry came), and the confidence
// histogram. The fleet view here; the device page reuses TelemetryCharts.
import { api, enc } from '../api'
import { BarChart, LineChart, type Series } from '../charts'
import { useLoad } from '../hooks'
import type { ViewProps } from '../router'
import type { ModelList, SeriesPoint } from '../types'
import { Load } from './common'

export const BUCKET_MS = 10_000

function byVersion(points: SeriesPoint[]): Map<string, SeriesPoint[]> {
  const out = new Map<string, SeriesPoint[]>()
  for (const p of points) out.set(p.version, [...(out.get(p.version) ?? []), p])
  return out
}

/** Latency, error-rate and confidence charts of one model's series; chart ids start with `prefix`. */
export function TelemetryCharts(props: { series: SeriesPoint[]; prefix: string }) {
  const versions = byVersion(props.series)
  const latency: Series[] = []
  const errors: Series[] = []
  const confidence = []
  for (const [version, points] of versions) {
    latency.push({ name: `${version} p50`, points: points.map((p) => [p.ts, p.p50Ms]) })
    latency.push({ name: `${version} p95`, points: points.map((p) => [p.ts, p.p95Ms]) })
    errors.push({ name: version, points: points.map((p) => [p.ts, p.requests ? p.errors / p.requests : null]) })
    const bins = new Array<number>(10).fill(0)
    for (const p of points) p.confidence.forEach((n, i) => (bins[i] += n))
    confidence.push(
      ...bins.map((n, i) => ({
        label: `${version} ${(i / 10).toFixed(1)}–${((i + 1) / 10).toFixed(1)}`,
        parts: [{ name: 'requests', value: n, color: '#7048e8' }],
      })),
    )
  }
  // A bucket and a half without telemetry is a gap, not a line.
  const gapMs = BUCKET_MS * 1.5
  return (
    <div class="grid">
      <LineChart id={`${props.prefix}latency`} title="Latency p50 / p95 (ms)" series={latency} gapMs={gapMs} />
      <LineChart id={`${props.prefix}errors`} title="Error rate" series={errors} gapMs={gapMs} digits={3} />
      <BarChart id={`${props.prefix}confidence`} title="Confidence (requests per bin)" rows={confidence} />
    </div>
  )
}

export function TelemetryView(props: ViewProps) {
  const data = useLoad(async () => {
    const models = await api<ModelList>('GET', '/api/v1/models')
    const model = props.args[0] ?? models.items[0]?.name
    if (!model) return { models, model, series: [] }
    const series = await api<{ items: SeriesPoint[] }>(
      'GET',
      `/api/v1/telemetry/series?bucketMs=${BUCKET_MS}&model=${enc(model)}`,
    )
    return { models, model, series: series.items }
  }, [props.args[0]])
  return (
    <Load data={data}>
      {(loaded) =>
        loaded.model === undefined ? (
          <p>No telemetry yet.</p>
        ) : (
          <>
            <h2>Telemetry</h2>
            <p>
              {loaded.models.items.map((m) => (
                <a key={m.name} href={`#/telemetry/${enc(m.name)}`}>
                  {m.name === loaded.model ? <b>{m.name}</b> : m.name}{' '}
                </a>
              ))}
            </p>
            <TelemetryCharts series={loaded.series} prefix="fleet-" />
          </>
        )
      }
    </Load>
  )
}
