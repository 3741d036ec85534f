// `edgefleet devices show ID`: one device's identity, models and health
// [EF-9.12]: agent version, conditions, execution providers, the latest
// stats against the profile's thresholds, and its recent events.
import { command, UsageError } from './command.js'
import { table } from './format.js'

interface Point {
  ts: number
  rssBytes?: number
  cpuLoad?: number
  freeStorageBytes?: number
  temperatureC?: number
  queued?: number
}
interface Health {
  profile: string
  online: boolean
  lastSeen: number | null
  agentVersion: string | null
  conditions: { network: string | null; power: string | null; idle: boolean | null }
  providers: Record<string, string>
  lastTelemetry: number | null
  latest: Point | null
  breaches: { metric: string; text: string }[]
  series: Point[]
}
interface Shown {
  device: {
    id: string
    status: string
    tags: Record<string, string>
    models: { name: string; version: string; precision: string }[]
  }
  events: {
    ts: number
    kind: string
    model?: string | null
    version?: string | null
    code?: string | null
    message?: string | null
  }[]
}

const MiB = 1024 * 1024
const mib = (b: number | undefined) => (b === undefined ? '-' : `${(b / MiB).toFixed(0)} MiB`)
const when = (ms: number | null) => (ms === null ? 'never' : new Date(ms).toISOString())

function healthText(device: Shown['device'], health: Health, events: Shown['events']): string {
  const latest = health.latest
  const lines = [
    `device ${device.id} (${health.profile}) ${device.status !== 'active' ? device.status : health.online ? 'online' : 'offline'}`,
    `  agent:          ${health.agentVersion ?? 'unknown'}`,
    `  last seen:      ${when(health.lastSeen)}`,
    `  last telemetry: ${when(health.lastTelemetry)}`,
    `  conditions:     network=${health.conditions.network ?? '-'} power=${health.conditions.power ?? '-'} idle=${health.conditions.idle ?? '-'}`,
    `  models:         ${device.models.map((m) => `${m.name}@${m.version} (${m.precision}, ${health.providers[m.name] ?? 'provider ?'})`).join(', ') || '-'}`,
    `  tags:           ${
      Object.entries(device.tags)
        .map(([k, v]) => `${k}=${v}`)
        .join(',') || '-'
    }`,
    `  RSS ${mib(latest?.rssBytes)}  load ${latest?.cpuLoad ?? '-'}  free storage ${mib(latest?.freeStorageBytes)}  temperature ${latest?.temperatureC !== undefined ? `${latest.temperatureC} °C` : '-'}  queued ${latest?.queued ?? '-'}`,
    health.breaches.length
      ? `  ALERT: ${health.breaches.map((b) => b.text).join('; ')}`
      : '  health: within the profile thresholds',
  ]
  if (events.length)
    lines.push(
      '',
      table(
        events.slice(0, 10).map((e) => ({
          time: new Date(e.ts).toISOString(),
          kind: e.kind,
          model: e.model ? `${e.model}@${e.version ?? ''}` : null,
          code: e.code,
          message: e.message,
        })),
        ['time', 'kind', 'model', 'code', 'message'],
      ),
    )
  return lines.join('\n')
}

export const deviceShow = command({
  name: 'devices show',
  aliases: ['device show'],
  summary: ['devices show ID', "a device's models, health (RSS, load, storage, temperature) and recent events"],
  help: `edgefleet devices show ID [--json]

Agent version, conditions (network, power, idle), execution provider per
model, the last telemetry's device stats against the profile's health
thresholds, and the last events. --json adds the stats over the last hour.`,
  options: {},
  async run({ args, hub, emit }) {
    const id = args.pos[0]
    if (!id) throw new UsageError('devices show needs ID')
    const path = `/api/v1/devices/${encodeURIComponent(id)}`
    const shown = await hub.request<Shown>('GET', path)
    const health = await hub.request<Health>('GET', `${path}/health`)
    emit({ ...shown, health }, () => healthText(shown.device, health, shown.events))
    return 0
  },
})
