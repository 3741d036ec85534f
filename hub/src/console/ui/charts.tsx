// The console's charts: line and bar charts drawn as SVG by Preact. Not a
// chart library on purpose (docs/CONSOLE.md argues it): a few hundred points
// per chart, and SVG keeps every line, gap and bar in the DOM, where the
// browser tests check them. A missing value, or a step longer than `gapMs`
// (no telemetry then), ends a line: gaps stay visible instead of bridged.
import type { ComponentChildren } from 'preact'
import { fmt } from './format'

const COLORS = ['#1d5fa8', '#d9480f', '#2f8f4e', '#7048e8', '#c2255c', '#0c8599', '#e67700']
export type Point = [number, number | null]
export interface Series {
  name: string
  points: Point[]
  color?: string
}
export interface Rule {
  y: number
  label: string
  color: string
}

const WIDTH = 460

function Card(props: {
  id: string
  title: string
  height: number
  legend: ComponentChildren
  children: ComponentChildren
}) {
  return (
    <div class="card chart" data-chart={props.id}>
      <h3>{props.title}</h3>
      <svg viewBox={`0 0 ${WIDTH} ${props.height}`} width="100%" role="img" aria-label={props.title}>
        {props.children}
      </svg>
      <div class="legend">{props.legend}</div>
    </div>
  )
}

const valid = (y: number | null): y is number => y !== null && Number.isFinite(y)

/** Splits a series into runs of points with no gap between them. */
function runsOf(points: Point[], gapMs: number | undefined): [number, number][][] {
  const runs: [number, number][][] = [[]]
  let last: number | null = null
  for (const [x, y] of points) {
    const gap = last !== null && gapMs !== undefined && x - last > gapMs
    if ((!valid(y) || gap) && runs[runs.length - 1].length) runs.push([])
    if (valid(y)) {
      runs[runs.length - 1].push([x, y])
      last = x
    }
  }
  return runs.filter((run) => run.length > 0)
}

interface LineOptions {
  id: string
  title: string
  series: Series[]
  rules?: Rule[]
  gapMs?: number
  digits?: number
  yMin?: number
}

export function LineChart(options: LineOptions) {
  const height = 160
  const [left, right, top, bottom] = [44, 10, 10, 22]
  const xs = options.series.flatMap((s) => s.points.filter((p) => valid(p[1])).map((p) => p[0]))
  const ys = options.series
    .flatMap((s) => s.points.map((p) => p[1]).filter(valid))
    .concat((options.rules ?? []).map((r) => r.y))
  const legend = options.series.map((s, k) => (
    <span key={s.name}>
      <i style={{ background: s.color ?? COLORS[k % COLORS.length] }} />
      {s.name}
    </span>
  ))
  if (!xs.length)
    return (
      <Card id={options.id} title={options.title} height={height} legend={legend}>
        <text x={WIDTH / 2} y={height / 2} text-anchor="middle">
          no data yet
        </text>
      </Card>
    )
  const x0 = Math.min(...xs)
  const x1 = Math.max(...xs) === x0 ? x0 + 1 : Math.max(...xs)
  const y0 = options.yMin ?? Math.min(0, ...ys)
  const y1 = (Math.max(...ys) === y0 ? y0 + 1 : Math.max(...ys)) * 1.1
  const sx = (x: number) => left + ((x - x0) / (x1 - x0)) * (WIDTH - left - right)
  const sy = (y: number) => height - bottom - ((y - y0) / (y1 - y0)) * (height - top - bottom)
  const ticks = [0, 1, 2, 3, 4].map((i) => y0 + ((y1 - y0) * i) / 4)
  return (
    <Card id={options.id} title={options.title} height={height} legend={legend}>
      {ticks.map((t) => (
        <g key={t}>
          <line x1={left} x2={WIDTH - right} y1={sy(t)} y2={sy(t)} stroke="#eef1f6" />
          <text x={left - 4} y={sy(t) + 3} text-anchor="end">
            {fmt(t, options.digits)}
          </text>
        </g>
      ))}
      <text x={left} y={height - 6}>
        {new Date(x0).toLocaleTimeString()}
      </text>
      <text x={WIDTH - right} y={height - 6} text-anchor="end">
        {new Date(x1).toLocaleTimeString()}
      </text>
      {(options.rules ?? []).map((r) => (
        <g key={r.label}>
          <line x1={left} x2={WIDTH - right} y1={sy(r.y)} y2={sy(r.y)} stroke={r.color} stroke-dasharray="4 3" />
          <text x={WIDTH - right} y={sy(r.y) - 3} text-anchor="end">
            {r.label}
          </text>
        </g>
      ))}
      {options.series.map((s, k) => {
        const color = s.color ?? COLORS[k % COLORS.length]
        return runsOf(s.points, options.gapMs).map((run) =>
          run.length === 1 ? (
            <circle data-series={s.name} r={3} fill={color} cx={sx(run[0][0])} cy={sy(run[0][1])} />
          ) : (
            <polyline
              data-series={s.name}
              fill="none"
              stroke-width={1.8}
              stroke={color}
              points={run.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(' ')}
            />
          ),
        )
      })}
    </Card>
  )
}

interface BarPart {
  name: string
  value: number
  color: string
}
export interface BarRow {
  label: string
  parts: BarPart[]
}

export function BarChart(chart: {
  id: string
  title: string
  rows: BarRow[]
  legend?: { name: string; color: string }[]
}) {
  const rowHeight = 18
  const left = 190
  const height = Math.max(40, chart.rows.length * rowHeight + 10)
  const total = (row: BarRow) => row.parts.reduce((acc, p) => acc + p.value, 0)
  const max = Math.max(1, ...chart.rows.map(total))
  const legend = (chart.legend ?? []).map((l) => (
    <span key={l.name}>
      <i style={{ background: l.color }} />
      {l.name}
    </span>
  ))
  return (
    <Card id={chart.id} title={chart.title} height={height} legend={legend}>
      {chart.rows.map((row, i) => {
        const rowTop = 5 + i * rowHeight
        let barEnd = left
        return (
          <g key={row.label}>
            <text x={left - 6} y={rowTop + 12} text-anchor="end">
              {row.label.length > 32 ? (
                <>
                  <title>{row.label}</title>
                  {`${row.label.slice(0, 31)}…`}
                </>
              ) : (
                row.label
              )}
            </text>
            {row.parts.map((part) => {
              const width = (part.value / max) * (WIDTH - left - 50)
              const rect = (
                <rect x={barEnd} y={rowTop + 2} width={width.toFixed(1)} height={rowHeight - 5} fill={part.color}>
                  <title>{`${part.name}: ${part.value}`}</title>
                </rect>
              )
              barEnd += width
              return rect
            })}
            <text x={barEnd + 4} y={rowTop + 12}>
              {total(row)}
            </text>
          </g>
        )
      })}
    </Card>
  )
}

/** A progress bar split by outcome: done (green), failed (red), the rest waiting (grey). */
export function Progress(props: { done: number; failed?: number; total: number }) {
  const failed = props.failed ?? 0
  const share = (n: number) => `${(props.total ? Math.min(1, n / props.total) * 100 : 0).toFixed(1)}%`
  return (
    <span class="progress">
      <span class="bar">
        <i class="ok" style={{ width: share(props.done) }} />
        <i class="failed" style={{ width: share(failed) }} />
      </span>{' '}
      {props.done}/{props.total}
      {failed ? <b class="bad"> · {failed} failed</b> : null}
    </span>
  )
}

/** A plain fill bar (a download's share); red when the transfer ended in failure. */
export function Bar(props: { fraction: number; failed?: boolean }) {
  const width = `${(Math.min(1, Math.max(0, props.fraction)) * 100).toFixed(1)}%`
  return (
    <span class="bar">
      <i class={props.failed ? 'failed' : 'ok'} style={{ width }} />
    </span>
  )
}
