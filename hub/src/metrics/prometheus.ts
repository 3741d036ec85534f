// Prometheus text exposition (format 0.0.4) of the hub [EF-8.12]: fleet,
// deployments, telemetry ingest, MQTT traffic, broker clients and rollouts.
// Gauges are read from SQLite at scrape time; counters come from the live
// counters the MQTT dispatcher keeps; histograms (API latency, ingest
// transactions, builds, download bytes) from metrics/histogram.ts. No client
// library: the format is a few lines of text.
import type { IngestStats } from '../telemetry/ingest.js'
import type { FastifyPluginAsync } from 'fastify'
import { promFamily } from '@edgefleet/shared'
import type { HubStore } from '../store/index.js'
import type { HubMetrics } from '../mqtt/dispatch.js'
import type { BrokerLimitStats } from '../broker/limits.js'
import type { Leadership } from '../cluster/elector.js'

export interface MetricsDeps {
  store: HubStore
  metrics: HubMetrics
  /** Connected MQTT clients of the embedded broker (undefined with an external broker). */
  brokerClients?: () => number | undefined
  /** The embedded broker's refusals and throttling [EF-1.7]. */
  brokerLimits?: BrokerLimitStats
  /** The telemetry ingestor [EF-9.1]. */
  ingest?: { readonly stats: IngestStats; readonly queued: number }
  /** The distributor's live counters (broadcast and repair chunks and bytes). */
  distribution?: { broadcastChunks: number; broadcastBytes: number; repairChunks: number; repairBytes: number }
  /** Whether this replica leads [EF-12.5]; default: the only replica, always leader in term 0. */
  leadership?: Leadership
}

const family = promFamily

function renderMetrics(deps: MetricsDeps): string {
  const out = [
    ...fleetFamilies(deps),
    ...trafficFamilies(deps),
    family(
      'edgefleet_rollouts',
      'gauge',
      'Rollouts by state.',
      Object.entries(deps.store.rollouts.countByState()).map(([state, count]) => [{ state }, count]),
    ),
  ]
  out.push(...leaderFamilies(deps.leadership))
  if (deps.ingest) out.push(...ingestFamilies(deps.ingest))
  const clients = deps.brokerClients?.()
  if (clients !== undefined)
    out.push(
      family(
        'edgefleet_broker_clients',
        'gauge',
        'Clients connected to the embedded broker (devices and the hub itself).',
        [[{}, clients]],
      ),
    )
  if (deps.brokerLimits) out.push(...brokerLimitFamilies(deps.brokerLimits))
  if (deps.distribution) out.push(...distributionFamilies(deps.distribution))
  const h = deps.metrics.histograms
  out.push(...[h.apiSeconds, h.ingestSeconds, h.ingestRecords, h.buildSeconds, h.downloadBytes].map((x) => x.render()))
  return out.join('\n') + '\n'
}

/** Devices by profile and online state, and deployment assignments by state. */
function fleetFamilies(deps: MetricsDeps): string[] {
  const dev = deps.store.gauges.devicesByProfileAndOnline()
  const deploymentDevices = deps.store.gauges.deploymentDevicesByState()
  return [
    family(
      'edgefleet_devices',
      'gauge',
      'Provisioned devices by profile and online state.',
      dev.map((r) => [{ profile: r.profile, online: r.online ? 'true' : 'false' }, r.n]),
    ),
    family('edgefleet_devices_online', 'gauge', 'Devices whose last state says online.', [
      [{}, dev.filter((r) => r.online).reduce((a, r) => a + r.n, 0)],
    ]),
    family(
      'edgefleet_deployment_devices',
      'gauge',
      'Device assignments of all deployments by state.',
      deploymentDevices.map((r) => [{ state: r.state }, r.n]),
    ),
  ]
}

/** This replica's leadership [EF-12.5]: alert when the sum over replicas is not 1. */
function leaderFamilies(leadership: Leadership | undefined): string[] {
  const replica = leadership?.replicaId ?? 'sole'
  return [
    family('edgefleet_leader', 'gauge', 'Whether this hub replica runs the leader-only work (1) or not (0).', [
      [{ replica }, (leadership?.isLeader() ?? true) ? 1 : 0],
    ]),
    family('edgefleet_leader_term', 'gauge', 'The leader term this replica leads in or last saw (0: no election).', [
      [{ replica }, leadership?.term() ?? 0],
    ]),
  ]
}

/** Telemetry stored, MQTT messages in, dropped (by code) and ignored as duplicates. */
function trafficFamilies(deps: MetricsDeps): string[] {
  return [
    family(
      'edgefleet_telemetry_batches_total',
      'counter',
      'Telemetry batches stored (rate() of it is the ingest rate).',
      [[{}, deps.store.rolloutTelemetry.batches()]],
    ),
    family('edgefleet_mqtt_messages_in_total', 'counter', 'MQTT messages the hub received.', [
      [{}, deps.metrics.messagesIn],
    ]),
    family(
      'edgefleet_mqtt_dropped_total',
      'counter',
      'MQTT messages dropped, by error code (EF-2.8).',
      Object.entries(deps.metrics.dropped).map(([code, n]) => [{ code }, n]),
    ),
    family(
      'edgefleet_telemetry_refused_entries_total',
      'counter',
      'Telemetry model entries dropped because the device was never sent that version (EF-2.6.8).',
      [[{ code: 'EF_ERR_TELEMETRY_UNKNOWN_VERSION' }, deps.store.sentVersions.stats.refusedEntries]],
    ),
    family('edgefleet_telemetry_duplicates_total', 'counter', 'Redelivered telemetry batches and samples ignored.', [
      [{}, deps.metrics.duplicateBatches],
    ]),
  ]
}

/** The telemetry ingestor's transactions, failures, queue and writer restarts [EF-9.1]. */
function ingestFamilies(ingest: NonNullable<MetricsDeps['ingest']>): string[] {
  const stats = ingest.stats
  return [
    family('edgefleet_ingest_transactions_total', 'counter', 'Telemetry/sample transactions committed (EF-9.1).', [
      [{}, stats.flushes],
    ]),
    family(
      'edgefleet_ingest_failed_transactions_total',
      'counter',
      'Telemetry/sample transactions that failed; their records were not acknowledged (EF-9.1.1).',
      [[{}, stats.failedFlushes]],
    ),
    family('edgefleet_ingest_queued', 'gauge', 'Telemetry batches and samples waiting for a transaction.', [
      [{}, ingest.queued],
    ]),
    family(
      'edgefleet_ingest_writer_restarts_total',
      'counter',
      'Telemetry writer threads started again after one exited.',
      [[{}, stats.writerRestarts]],
    ),
  ]
}

function distributionFamilies(s: NonNullable<MetricsDeps['distribution']>): string[] {
  return [
    family('edgefleet_distribution_bytes_total', 'counter', 'Artifact chunk bytes published, by kind (EF-4).', [
      [{ kind: 'broadcast' }, s.broadcastBytes],
      [{ kind: 'repair' }, s.repairBytes],
    ]),
    family('edgefleet_distribution_chunks_total', 'counter', 'Artifact chunks published, by kind (EF-4).', [
      [{ kind: 'broadcast' }, s.broadcastChunks],
      [{ kind: 'repair' }, s.repairChunks],
    ]),
  ]
}

function brokerLimitFamilies(stats: BrokerLimitStats): string[] {
  return [
    family(
      'edgefleet_broker_refused_total',
      'counter',
      'Connections closed, publishes refused and retain flags stripped by the embedded broker, by code (EF-1.7).',
      Object.entries(stats.refusals).map(([code, n]) => [{ code }, n]),
    ),
    family('edgefleet_broker_throttled_total', 'counter', 'Device publishes delayed for their quota (EF-1.7.5).', [
      [{}, stats.throttled],
    ]),
  ]
}

export const metricsRoutes: FastifyPluginAsync<MetricsDeps> = async (app, deps) => {
  app.get('/metrics', async (_req, res) =>
    res.type('text/plain; version=0.0.4; charset=utf-8').send(renderMetrics(deps)),
  )
}
