// Fleet overview [EF-8.11]: device counts, devices by profile and by model
// version, fleet-wide health distributions [EF-9.12], and the device list
// (filtered, paged in SQL).
import { useState } from 'preact/hooks'
import { api, enc } from '../api'
import { BarChart } from '../charts'
import { fmt, when } from '../format'
import { useLoad } from '../hooks'
import type { ViewProps } from '../router'
import type { Device, FleetHealth, FleetSummary, Rollout } from '../types'
import { Load, Stat, field, onSubmit } from './common'

const PAGE = 100
const ACTIVE = ['running', 'paused', 'awaiting_approval', 'rolling_back', 'scheduled']
const HEALTH_METRICS = [
  ['rssBytes', 'Agent RSS (MiB)', 1_048_576, 'rss'],
  ['cpuLoad', 'Load average', 1, 'load'],
  ['freeStorageBytes', 'Free storage (MiB)', 1_048_576, 'storage'],
  ['temperatureC', 'Temperature (°C)', 1, 'temperature'],
] as const

interface FleetData {
  summary: FleetSummary
  devices: { items: Device[]; total: number }
  rollouts: { items: Rollout[] }
  health: FleetHealth
}

export function FleetView(props: ViewProps) {
  const page = Number(props.args[0] ?? 0)
  const [filter, setFilter] = useState(sessionStorage.getItem('ef-filter') ?? '')
  const data = useLoad(async (): Promise<FleetData> => {
    const query = `limit=${PAGE}&offset=${page * PAGE}${filter ? `&q=${enc(filter)}` : ''}`
    const [summary, devices, rollouts, health] = await Promise.all([
      api<FleetSummary>('GET', '/api/v1/fleet/summary'),
      api<FleetData['devices']>('GET', `/api/v1/fleet/devices?${query}`),
      api<FleetData['rollouts']>('GET', '/api/v1/rollouts?limit=20'),
      api<FleetHealth>('GET', '/api/v1/fleet/health'),
    ])
    return { summary, devices, rollouts, health }
  }, [page, filter])
  const applyFilter = onSubmit((form) => {
    sessionStorage.setItem('ef-filter', field(form, 'q'))
    setFilter(field(form, 'q'))
    location.hash = '#/fleet/0'
  })
  return (
    <Load data={data}>
      {(loaded) => (
        <>
          <div class="cards">
            <Stat label="devices" id="c-devices">
              {loaded.summary.total}
            </Stat>
            <Stat label="online" id="c-online">
              {loaded.summary.online}
            </Stat>
            <Stat label="active rollouts">{loaded.rollouts.items.filter((r) => ACTIVE.includes(r.state)).length}</Stat>
          </div>
          <FleetCharts summary={loaded.summary} />
          <HealthDistributions health={loaded.health} />
          <h2>Devices</h2>
          <form class="inline" id="filter" onSubmit={applyFilter}>
            <label>
              filter
              <input name="q" defaultValue={filter} placeholder="id, profile or tag" />
            </label>
            <button>apply</button>
            <span>
              {loaded.devices.total} devices · page {page + 1} of {Math.max(1, Math.ceil(loaded.devices.total / PAGE))}
            </span>
            {page > 0 ? <a href={`#/fleet/${page - 1}`}>previous</a> : null}
            {(page + 1) * PAGE < loaded.devices.total ? <a href={`#/fleet/${page + 1}`}>next</a> : null}
          </form>
          <DeviceTable devices={loaded.devices.items} />
        </>
      )}
    </Load>
  )
}

function FleetCharts({ summary }: { summary: FleetSummary }) {
  const legend = [
    { name: 'online', color: '#2f8f4e' },
    { name: 'offline', color: '#c9cfd8' },
  ]
  return (
    <div class="grid">
      <BarChart
        id="profiles"
        title="Devices by profile"
        legend={legend}
        rows={summary.byProfile.map((p) => ({
          label: p.profile,
          parts: [
            { name: 'online', value: p.online, color: '#2f8f4e' },
            { name: 'offline', value: p.offline, color: '#c9cfd8' },
          ],
        }))}
      />
      <BarChart
        id="versions"
        title="Model versions in the field"
        rows={summary.byVersion.map((v) => ({
          label: `${v.model}@${v.version}`,
          parts: [{ name: 'devices', value: v.devices, color: '#1d5fa8' }],
        }))}
      />
    </div>
  )
}

/** Each metric's latest value per device, in ten bins [EF-9.12]. */
function HealthDistributions({ health }: { health: FleetHealth }) {
  return (
    <>
      <h2>
        Fleet health · {health.devices} devices reporting
        {health.alerting.length ? (
          <span class="bad" id="alerting">
            {' '}
            · {health.alerting.length} alerting:{' '}
            {health.alerting.map((a) => (
              <a key={a.deviceId} href={`#/device/${enc(a.deviceId)}`}>
                {a.deviceId} ({a.metrics.join(', ')}){' '}
              </a>
            ))}
          </span>
        ) : null}
      </h2>
      <div class="grid">
        {HEALTH_METRICS.map(([key, label, scale, id]) => {
          const dist = health.metrics[key]
          const title = dist.n
            ? `${label} · p50 ${fmt((dist.p50 ?? 0) / scale)} · p95 ${fmt((dist.p95 ?? 0) / scale)}`
            : label
          return (
            <BarChart
              key={id}
              id={`fleet-${id}`}
              title={title}
              rows={dist.bins.map((bin) => ({
                label: `${fmt(bin.lo / scale)}–${fmt(bin.hi / scale)}`,
                parts: [{ name: 'devices', value: bin.n, color: '#0c8599' }],
              }))}
            />
          )
        })}
      </div>
    </>
  )
}

function DeviceTable({ devices }: { devices: Device[] }) {
  return (
    <table id="devices">
      <thead>
        <tr>
          <th>device</th>
          <th>profile</th>
          <th>state</th>
          <th>agent</th>
          <th>models</th>
          <th>tags</th>
          <th>last seen</th>
        </tr>
      </thead>
      <tbody>
        {devices.map((device) => (
          <tr key={device.id} data-device={device.id}>
            <td>
              <a href={`#/device/${enc(device.id)}`}>{device.id}</a>
            </td>
            <td>{device.profile}</td>
            <td class={device.online ? 'on' : 'off'}>{device.online ? 'online' : 'offline'}</td>
            <td>{device.agentVersion ?? '–'}</td>
            <td>{device.models.map((m) => `${m.name}@${m.version}`).join(', ') || '–'}</td>
            <td>
              {Object.entries(device.tags)
                .map(([key, value]) => `${key}=${value}`)
                .join(' ')}
            </td>
            <td>{device.lastSeen ? when(device.lastSeen) : '–'}</td>
          </tr>
        ))}
      </tbody>
    </table>
  )
}
