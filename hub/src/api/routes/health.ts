// Device health [EF-9.12]: one device's vitals, conditions, providers and
// stats over time; the fleet's distribution of each metric. Read through
// store.health (telemetry_batches.device_stats) and the device's last state.
import type { FastifyInstance, FastifyPluginAsync } from 'fastify'
import { Type, type Static } from '@sinclair/typebox'
import { EdgeFleetError } from '@edgefleet/shared'
import type { ApiDeps } from '../server.js'
import type { HealthPoint } from '../../store/health.js'
import { breaches } from '../../telemetry/health-alerts.js'

const Num = Type.Optional(Type.Number())
const Point = Type.Object({
  ts: Type.Integer(),
  rssBytes: Num,
  cpuLoad: Num,
  freeStorageBytes: Num,
  temperatureC: Num,
  queued: Num,
})
const Thresholds = Type.Object({
  maxRssMb: Num,
  maxCpuLoad: Num,
  minFreeStorageMb: Num,
  maxTemperatureC: Num,
})
const Nullable = <T extends ReturnType<typeof Type.String>>(t: T) => Type.Union([t, Type.Null()])

const DeviceHealth = Type.Object({
  deviceId: Type.String(),
  profile: Type.String(),
  online: Type.Boolean(),
  lastSeen: Type.Union([Type.Integer(), Type.Null()]),
  agentVersion: Nullable(Type.String()),
  conditions: Type.Object({
    network: Nullable(Type.String()),
    power: Nullable(Type.String()),
    idle: Type.Union([Type.Boolean(), Type.Null()]),
  }),
  /** Execution provider per model at the last batch that named one [EF-5.7]. */
  providers: Type.Record(Type.String(), Type.String()),
  /** When the last telemetry batch with device stats ended (null before the first). */
  lastTelemetry: Type.Union([Type.Integer(), Type.Null()]),
  latest: Type.Union([Point, Type.Null()]),
  thresholds: Type.Union([Thresholds, Type.Null()]),
  /** Metrics past their threshold at the last batch, with value and limit. */
  breaches: Type.Array(
    Type.Object({ metric: Type.String(), value: Type.Number(), limit: Type.Number(), text: Type.String() }),
  ),
  series: Type.Array(Point),
})

const Distribution = Type.Object({
  n: Type.Integer(),
  min: Type.Union([Type.Number(), Type.Null()]),
  p50: Type.Union([Type.Number(), Type.Null()]),
  p95: Type.Union([Type.Number(), Type.Null()]),
  max: Type.Union([Type.Number(), Type.Null()]),
  bins: Type.Array(Type.Object({ lo: Type.Number(), hi: Type.Number(), n: Type.Integer() })),
})
const METRICS = ['rssBytes', 'cpuLoad', 'freeStorageBytes', 'temperatureC'] as const

const HOUR_MS = 3_600_000

/** Count, quantiles and ten equal-width bins of the values. */
export function distribution(values: number[]): Static<typeof Distribution> {
  const sorted = values.filter(Number.isFinite).sort((a, b) => a - b)
  if (sorted.length === 0) return { n: 0, min: null, p50: null, p95: null, max: null, bins: [] }
  const quantile = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]
  const lo = sorted[0]
  const hi = sorted[sorted.length - 1]
  const width = (hi - lo) / 10 || 1
  const bins = Array.from({ length: hi === lo ? 1 : 10 }, (_, i) => ({
    lo: lo + i * width,
    hi: lo + (i + 1) * width,
    n: 0,
  }))
  for (const x of sorted) bins[Math.min(bins.length - 1, Math.floor((x - lo) / width))].n++
  return { n: sorted.length, min: lo, p50: quantile(0.5), p95: quantile(0.95), max: hi, bins }
}

/**
 * Provider per model: what the state says each loaded session runs on; from an agent whose state does
 * not say it, what its latest telemetry said [EF-5.7].
 */
function providersOf(
  loaded: readonly { name: string; provider?: string }[] | undefined,
  fromTelemetry: Record<string, string> | undefined,
): Record<string, string> {
  const fromState: Record<string, string> = {}
  for (const m of loaded ?? []) if (m.provider) fromState[m.name] = m.provider
  return Object.keys(fromState).length ? fromState : { ...fromTelemetry }
}

const pointOut = (p: HealthPoint) => ({
  ts: p.ts,
  rssBytes: p.rssBytes,
  cpuLoad: p.cpuLoad,
  freeStorageBytes: p.freeStorageBytes,
  temperatureC: p.temperatureC,
  queued: p.queued,
})

export const healthRoutes: FastifyPluginAsync<ApiDeps> = async (app, deps) => {
  deviceHealthRoute(app, deps)
  fleetHealthRoute(app, deps)
}

/** One device: its conditions, providers, latest point against its profile's thresholds, and the series. */
function deviceHealthRoute(app: FastifyInstance, deps: ApiDeps): void {
  app.get(
    '/api/v1/devices/:id/health',
    {
      schema: {
        params: Type.Object({ id: Type.String({ maxLength: 64 }) }),
        querystring: Type.Object(
          {
            sinceMs: Type.Optional(Type.Integer({ minimum: 0 })),
            limit: Type.Integer({ minimum: 1, maximum: 5000, default: 2000 }),
          },
          { additionalProperties: false },
        ),
        response: { 200: DeviceHealth },
      },
    },
    async (req) => {
      const { id } = req.params as { id: string }
      const query = req.query as { sinceMs?: number; limit: number }
      const device = deps.store.devices.get(id)
      if (!device) throw new EdgeFleetError('EF_ERR_DEVICE_NOT_FOUND', id)
      const latest = deps.store.health.latest(id)
      const thresholds = deps.profiles.get(device.profile)?.health ?? null
      return {
        deviceId: id,
        profile: device.profile,
        online: device.online,
        lastSeen: device.lastSeen,
        agentVersion: device.state?.agentVersion ?? null,
        conditions: {
          network: device.state?.network ?? null,
          power: device.state?.power ?? null,
          idle: device.state?.idle ?? null,
        },
        providers: providersOf(device.state?.models, latest?.providers),
        lastTelemetry: latest?.ts ?? null,
        latest: latest ? pointOut(latest) : null,
        thresholds,
        breaches: latest && thresholds ? breaches(latest, thresholds) : [],
        series: deps.store.health.series(id, query.sinceMs ?? deps.now() - HOUR_MS, query.limit).map(pointOut),
      }
    },
  )
}

const FleetHealth = Type.Object({
  devices: Type.Integer(),
  metrics: Type.Object(
    Object.fromEntries(METRICS.map((metric) => [metric, Distribution])) as Record<
      (typeof METRICS)[number],
      typeof Distribution
    >,
  ),
  alerting: Type.Array(Type.Object({ deviceId: Type.String(), metrics: Type.Array(Type.String()) })),
})

/** The fleet: each metric's distribution over the devices' latest points, and who breaches a threshold. */
function fleetHealthRoute(app: FastifyInstance, deps: ApiDeps): void {
  app.get(
    '/api/v1/fleet/health',
    {
      schema: {
        querystring: Type.Object(
          {
            sinceMs: Type.Optional(Type.Integer({ minimum: 0 })),
            profile: Type.Optional(Type.String({ maxLength: 64 })),
          },
          { additionalProperties: false },
        ),
        response: { 200: FleetHealth },
      },
    },
    async (req) => {
      const q = req.query as { sinceMs?: number; profile?: string }
      const rows = deps.store.health
        .fleetLatest(q.sinceMs ?? deps.now() - HOUR_MS)
        .filter((r) => q.profile === undefined || r.profile === q.profile)
      const alerting = rows
        .map((r) => {
          const t = deps.profiles.get(r.profile)?.health
          return { deviceId: r.deviceId, metrics: t ? breaches(r, t).map((b) => b.metric) : [] }
        })
        .filter((a) => a.metrics.length > 0)
      return {
        devices: rows.length,
        metrics: Object.fromEntries(
          METRICS.map((m) => [m, distribution(rows.map((r) => r[m]).filter((x): x is number => x !== undefined))]),
        ) as Record<(typeof METRICS)[number], Static<typeof Distribution>>,
        alerting,
      }
    },
  )
}
