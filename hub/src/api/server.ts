// The hub's HTTP API (fastify, a JSON schema on every route) and console.
import type { BrokerLimitStats } from '../broker/limits.js'
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify'
import type { Logger } from 'pino'
import type { FirmwareProfile } from '@edgefleet/shared'
import type { HubStore } from '../store/index.js'
import type { Registry } from '../registry/models.js'
import type { Deployer } from '../distribution/deployer.js'
import type { HubKeys } from '../keys.js'
import type { BlobStore } from '../store/blobs.js'
import type { HubMetrics } from '../mqtt/dispatch.js'
import { errorHandler, notFoundHandler } from './errors.js'
import { installFiniteNumbers, installJsonBodyParser } from './request-guards.js'
import { deviceImportRoutes } from './routes/device-import.js'
import { deviceRoutes } from './routes/devices.js'
import { modelRoutes } from './routes/models.js'
import { deploymentRoutes } from './routes/deployments.js'
import { systemRoutes } from './routes/system.js'
import { artifactRoutes } from './routes/artifacts.js'
import { fleetCommandRoutes } from './routes/fleet-commands.js'
import type { CommandSender } from '../distribution/commands.js'
import type { AgentUpdates } from '../agent-releases/updates.js'
import { consoleRoutes } from '../console/routes.js'
import { installAuth } from './auth.js'
import { docsRoutes, recordRoutes } from './openapi.js'
import { rolloutRoutes } from './routes/rollouts.js'
import { tokenRoutes } from './routes/tokens.js'
import { hubKeyRoutes } from './routes/hub-key.js'
import { metricsRoutes } from '../metrics/prometheus.js'
import type { RolloutEngine } from '../rollouts/engine.js'
import type { Leadership } from '../cluster/elector.js'
import type { Retraining } from '../telemetry/index.js'
import { feedRoutes } from './routes/feed.js'
import { healthRoutes } from './routes/health.js'
import { retrainingRoutes } from './routes/retraining.js'
import { capturePolicyRoutes } from './routes/capture-policies.js'
import type { CapturePolicies } from '../capture/policies.js'
import { agentReleaseRoutes } from './routes/agent-releases.js'

export interface ApiDeps {
  store: HubStore
  registry: Registry
  deployer: Deployer
  profiles: Map<string, FirmwareProfile>
  keys: HubKeys
  blobs: BlobStore
  metrics: HubMetrics
  mqttUrl: string
  log: Logger
  now: () => number
  /** Signed runtime commands (shadow, capture policy, conditions); those routes answer EF_ERR_INTERNAL without it. */
  commands?: CommandSender
  /** Agent updates sent and resent [EF-11.9]; POST /api/v1/agent-updates answers EF_ERR_INTERNAL without it. */
  agentUpdates?: AgentUpdates
  /** Fleet capture policies [EF-8.15]; their routes answer EF_ERR_INTERNAL without it. */
  capturePolicies?: CapturePolicies
  /** Called after provisioning (e.g. to rewrite an external broker's password file). */
  onDevicesChanged?: () => void
  /** False for an id the external broker cannot carry (a NATS cluster: ids with '.') [EF-4.12]; default: any valid id. */
  brokerAcceptsId?: (deviceId: string) => boolean
  /** Drops a device's live broker connection (embedded broker) after its credentials were taken away [EF-1.3.3]. */
  disconnectDevice?: (deviceId: string) => void
  /** Live distribution counters (bytes broadcast and repaired). */
  distribution?: {
    broadcastChunks: number
    broadcastBytes: number
    repairChunks: number
    repairBytes: number
    prematureRepairs: number
  }
  /** Ingest, drift, retention and the live feed [EF-9]; its routes answer EF_ERR_INTERNAL without it. */
  retraining?: Retraining
  /** The rollout engine; rollout routes answer EF_ERR_INTERNAL without it. */
  rollouts?: RolloutEngine
  /** Bearer tokens on /api/v1 [EF-8.10]; false only for in-process unit tests. Default true. */
  auth?: boolean
  /** Connected clients of the embedded broker, for /metrics. */
  brokerClients?: () => number | undefined
  /** Serve HTTPS with this certificate [EF-10.2]. */
  https?: { cert: Buffer; key: Buffer }
  /** With TLS: the CA devices trust and device certificates for `device add --cert` [EF-10.3]. */
  deviceTls?: {
    ca?: string
    caFile?: string
    issueCert: (deviceId: string) => Promise<{ cert: string; key: string; clientCa: string }>
  }
  /** The embedded broker's refusals and throttling [EF-1.7], for /metrics. */
  brokerLimits?: BrokerLimitStats
  /** Whether this replica leads, for /healthz and /metrics [EF-12.5]; default: the only replica, always leader. */
  leadership?: Leadership
}

/** Largest model upload accepted by POST /api/v1/models. */
const MAX_MODEL_BYTES = 512 * 1024 * 1024

export async function buildApi(deps: ApiDeps): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: deps.log.child({ svc: 'api' }) as unknown as FastifyBaseLogger, // pino 9 vs fastify's bundled pino typings
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: 1024 * 1024,
    ...(deps.https ? { https: deps.https } : {}),
    // strictNumbers: a JSON 1e400 (Infinity) fails number/integer; coerced strings are caught by installFiniteNumbers.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', allErrors: false, strictNumbers: true } },
    // A URL the router cannot decode (e.g. a stray '%') bypasses setErrorHandler: answer it the same way [EF-6.2].
    frameworkErrors: (err, req, res) => void errorHandler(err, req, res),
  })
  app.setErrorHandler(errorHandler)
  app.setNotFoundHandler(notFoundHandler)
  const routes = recordRoutes(app)
  // Route templates, not raw URLs, keep the label set bounded [EF-8.12].
  app.addHook('onResponse', async (req, res) => {
    deps.metrics.histograms.apiSeconds.observe(res.elapsedTime / 1000, {
      method: req.method,
      route: req.routeOptions.url ?? 'unmatched',
      status: String(res.statusCode),
    })
  })
  installAuth(app, deps.store, deps.now, deps.auth ?? true)
  installJsonBodyParser(app)
  installFiniteNumbers(app)
  app.addContentTypeParser(
    'application/octet-stream',
    { parseAs: 'buffer', bodyLimit: MAX_MODEL_BYTES },
    (_req, body, done) => done(null, body),
  )
  await app.register(systemRoutes, deps)
  await app.register(artifactRoutes, deps)
  await app.register(deviceRoutes, deps)
  await app.register(deviceImportRoutes, deps)
  await app.register(modelRoutes, deps)
  await app.register(deploymentRoutes, deps)
  await app.register(fleetCommandRoutes, deps)
  await app.register(capturePolicyRoutes, deps)
  await app.register(consoleRoutes, deps)
  await app.register(rolloutRoutes, deps)
  await app.register(tokenRoutes, deps)
  await app.register(hubKeyRoutes, deps)
  await app.register(feedRoutes, deps)
  await app.register(healthRoutes, deps)
  await app.register(retrainingRoutes, deps)
  await app.register(agentReleaseRoutes, deps)
  await app.register(metricsRoutes, {
    store: deps.store,
    metrics: deps.metrics,
    brokerClients: deps.brokerClients,
    brokerLimits: deps.brokerLimits,
    ingest: deps.retraining?.ingest,
    distribution: deps.distribution,
    leadership: deps.leadership,
  })
  docsRoutes(app, routes)
  return app
}
