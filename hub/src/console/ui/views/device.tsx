// One device: its vitals against the profile's thresholds and their charts
// over time [EF-9.12], inference charts for every model it runs (not only the
// first), the actions an operator takes on it, and its event log.
import { api, canOperate, enc } from '../api'
import { LineChart, type Point, type Rule } from '../charts'
import { fmt, mib, when } from '../format'
import { useLoad } from '../hooks'
import type { ViewProps } from '../router'
import type { Device, DeviceEvent, DeviceHealth, HealthPoint, ModelList, SeriesPoint } from '../types'
import { Load, Stat } from './common'
import { DeviceActions } from './device-actions'
import { BUCKET_MS, TelemetryCharts } from './telemetry'

const MiB = 1_048_576
/** Agents report stats every few seconds; a minute without any is a gap in the charts. */
const HEALTH_GAP_MS = 60_000

interface DeviceData {
  device: Device
  events: DeviceEvent[]
  health: DeviceHealth
  series: SeriesPoint[][]
  models: ModelList
}

export function DeviceView(props: ViewProps) {
  const id = props.args[0] ?? ''
  const data = useLoad(async (): Promise<DeviceData> => {
    const base = `/api/v1/devices/${enc(id)}`
    const [shown, health, models] = await Promise.all([
      api<{ device: Device; events: DeviceEvent[] }>('GET', base),
      api<DeviceHealth>('GET', `${base}/health`),
      api<ModelList>('GET', '/api/v1/models'),
    ])
    const series = await Promise.all(
      shown.device.models.map((m) =>
        api<{ items: SeriesPoint[] }>(
          'GET',
          `/api/v1/telemetry/series?bucketMs=${BUCKET_MS}&model=${enc(m.name)}&device=${enc(id)}`,
        ).then((r) => r.items),
      ),
    )
    return { device: shown.device, events: shown.events, health, series, models }
  }, [id])
  return (
    <Load data={data}>
      {(loaded) => (
        <>
          <h2>Device {loaded.device.id}</h2>
          <div class="cards">
            <Stat label="profile">{loaded.device.profile}</Stat>
            <Stat label="state" class={loaded.device.online ? 'on' : 'off'}>
              {loaded.device.online ? 'online' : 'offline'}
            </Stat>
            <Stat label="models">{loaded.device.models.map((m) => `${m.name}@${m.version}`).join(', ') || '–'}</Stat>
          </div>
          <HealthSection health={loaded.health} />
          {canOperate() ? <DeviceActions device={loaded.device} models={loaded.models} /> : null}
          {loaded.device.models.map((m, i) => (
            <div key={m.name} data-model={m.name}>
              <h2>
                Model {m.name}@{m.version}
              </h2>
              <TelemetryCharts series={loaded.series[i] ?? []} prefix={`device-${m.name}-`} />
            </div>
          ))}
          <EventTable events={loaded.events} />
        </>
      )}
    </Load>
  )
}

function HealthCard(props: { id: string; label: string; value: string; breach?: string }) {
  return (
    <div class="card stat" data-health={props.id}>
      {props.label}
      <b class={props.breach ? 'bad' : ''} title={props.breach}>
        {props.value}
      </b>
    </div>
  )
}

interface HealthChart {
  id: string
  title: string
  series: string
  key: keyof HealthPoint
  scale: number
  alertAt: number | undefined
}

/** The health charts: which stat each draws, its scale, and the profile's alert line. */
function healthCharts(limits: NonNullable<DeviceHealth['thresholds']>): HealthChart[] {
  return [
    { id: 'rss', title: 'Agent RSS (MiB)', series: 'RSS', key: 'rssBytes', scale: MiB, alertAt: limits.maxRssMb },
    { id: 'load', title: 'Load average', series: 'load', key: 'cpuLoad', scale: 1, alertAt: limits.maxCpuLoad },
    {
      id: 'storage',
      title: 'Free storage (MiB)',
      series: 'free',
      key: 'freeStorageBytes',
      scale: MiB,
      alertAt: limits.minFreeStorageMb,
    },
    {
      id: 'temperature',
      title: 'Temperature (°C)',
      series: 'temperature',
      key: 'temperatureC',
      scale: 1,
      alertAt: limits.maxTemperatureC,
    },
  ]
}

function HealthSection({ health }: { health: DeviceHealth }) {
  const latest = health.latest ?? { ts: 0 }
  const limits = health.thresholds ?? {}
  const breach = new Map(health.breaches.map((b) => [b.metric, b.text]))
  const points = (key: keyof HealthPoint, scale = 1): Point[] =>
    health.series.map((p) => [p.ts, p[key] === undefined ? null : (p[key] ?? 0) / scale])
  const rule = (y: number | undefined): Rule[] => (y === undefined ? [] : [{ y, label: 'alert', color: '#a33' }])
  const c = health.conditions
  const conditions = `network ${c.network ?? '–'} · power ${c.power ?? '–'} · ${c.idle === null ? 'idle –' : c.idle ? 'idle' : 'busy'}`
  const providers = Object.entries(health.providers).map(([model, provider]) => `${model}: ${provider}`)
  return (
    <>
      <h2>Health</h2>
      <div class="cards">
        <HealthCard id="agent" label="agent" value={health.agentVersion ?? 'unknown'} />
        <HealthCard id="last" label="last telemetry" value={when(health.lastTelemetry)} />
        <HealthCard id="conditions" label="conditions" value={conditions} />
        <HealthCard id="providers" label="execution providers" value={providers.join(', ') || '–'} />
        <HealthCard id="rss" label="RSS" value={mib(latest.rssBytes)} breach={breach.get('rss')} />
        <HealthCard id="load" label="load" value={fmt(latest.cpuLoad)} breach={breach.get('cpuLoad')} />
        <HealthCard
          id="storage"
          label="free storage"
          value={mib(latest.freeStorageBytes)}
          breach={breach.get('freeStorage')}
        />
        <HealthCard
          id="temperature"
          label="temperature"
          value={latest.temperatureC === undefined ? '–' : `${fmt(latest.temperatureC, 1)} °C`}
          breach={breach.get('temperature')}
        />
      </div>
      <div class="grid">
        {healthCharts(limits).map((chart) => (
          <LineChart
            key={chart.id}
            id={`health-${chart.id}`}
            title={chart.title}
            series={[{ name: chart.series, points: points(chart.key, chart.scale) }]}
            gapMs={HEALTH_GAP_MS}
            rules={rule(chart.alertAt)}
          />
        ))}
      </div>
    </>
  )
}

function EventTable({ events }: { events: DeviceEvent[] }) {
  return (
    <>
      <h2>Events</h2>
      <table id="events">
        <thead>
          <tr>
            <th>time</th>
            <th>kind</th>
            <th>model</th>
            <th>code</th>
            <th>message</th>
          </tr>
        </thead>
        <tbody>
          {events.map((e, i) => (
            <tr key={i}>
              <td>{when(e.ts)}</td>
              <td class={e.kind === 'health_alert' ? 'bad' : ''}>{e.kind}</td>
              <td>{(e.model ?? '') + (e.version ? `@${e.version}` : '')}</td>
              <td>{e.code ?? ''}</td>
              <td>{e.message ?? ''}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  )
}
