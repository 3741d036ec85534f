// Composition root: wires store, broker, MQTT client, builder, registry,
// deployer and the HTTP API into one running hub.
import { join } from 'node:path'
import { mkdirSync } from 'node:fs'
import pino, { type Logger } from 'pino'
import { EdgeFleetError, sha256Hex, topics, type FirmwareProfile } from '@edgefleet/shared'
import { HubStore } from './store/index.js'
import { BlobStore } from './store/blobs.js'
import { loadOrCreateKeys, type HubKeys } from './keys.js'
import { isIngestTopic, startEmbeddedBroker, type EmbeddedBroker } from './broker/embedded.js'
import { syncMosquittoFiles } from './broker/mosquitto.js'
import { HubMqtt } from './mqtt/client.js'
import { assertSameDevice, dispatch, newMetrics, type HandlerContext, type HubMetrics } from './mqtt/dispatch.js'
import { Builder } from './build/builder.js'
import { Registry } from './registry/models.js'
import { Deployer } from './distribution/deployer.js'
import { CommandSender } from './distribution/commands.js'
import { Distributor } from './distribution/broadcast.js'
import { loadProfiles, DEFAULT_PROFILES_DIR } from './profiles.js'
import { buildApi } from './api/server.js'
import { Retraining, type RetrainingOptions } from './telemetry/index.js'
import type { FastifyInstance } from 'fastify'
import { RolloutEngine, defaultEngineOptions } from './rollouts/engine.js'
import { closeMatchers } from './rollouts/schedule.js'
import { bootstrapAdminToken } from './api/auth.js'

export interface HubOptions {
  /** Folder for the database, blobs and keys. */
  dataDir: string
  /** Embedded broker TCP port; 0 = ephemeral. Ignored with brokerUrl. */
  mqttPort?: number
  /** HTTP API port; 0 = ephemeral. */
  httpPort?: number
  /** Interface both listeners bind to. */
  host?: string
  /** Use an external broker instead of the embedded aedes. */
  brokerUrl?: string
  /** With an external Mosquitto: folder where the hub keeps its password and ACL files. */
  mosquittoDir?: string
  /** Mosquitto's pid file, to make it reload those files (SIGHUP) after each change. */
  mosquittoPidFile?: string
  profilesDir?: string
  /** pino level, or a ready logger. */
  log?: Logger | string
  /** URL devices reach the HTTP API at (artifact downloads); default: the listening address. */
  publicUrl?: string
  /** Ingest batching, drift, retention [EF-9]; defaults in their modules. */
  retraining?: RetrainingOptions
  /** Clock seam for tests (ms since epoch). */
  now?: () => number
  /** Compile worker script (see compileInWorker); tests running from source pass hub/dist/compiler/worker.js. */
  compileWorkerUrl?: URL
  /** Require API tokens on /api/v1 [EF-8.10]. Default true; false is for in-process unit tests only. */
  auth?: boolean
  /** Rollout engine tick, ms; 0 = never tick on a timer (tests call hub.rollouts.tick()). */
  rolloutTickMs?: number
  /** Randomness seam for rollout jitter. */
  random?: () => number
}

export const defaultHubOptions = {
  /** MQTT's registered port. */
  mqttPort: 1883,
  httpPort: 8080,
  host: '127.0.0.1',
} as const

export interface Hub {
  readonly store: HubStore
  readonly keys: HubKeys
  readonly profiles: Map<string, FirmwareProfile>
  readonly registry: Registry
  readonly deployer: Deployer
  readonly distributor: Distributor
  readonly metrics: HubMetrics
  readonly rollouts: RolloutEngine
  /** Ingest, drift, retention and the live feed [EF-9]. */
  readonly retraining: Retraining
  /** The admin token created at first start (read back from <dataDir>/admin-token later), if still on disk. */
  readonly adminToken?: string
  readonly api: FastifyInstance
  readonly broker?: EmbeddedBroker
  /** URL agents connect to. */
  readonly mqttUrl: string
  readonly httpUrl: string
  readonly log: Logger
  close(): Promise<void>
}

export async function startHub(options: HubOptions): Promise<Hub> {
  const host = options.host ?? defaultHubOptions.host
  const now = options.now ?? Date.now
  const log =
    typeof options.log === 'object'
      ? options.log
      : pino({ level: options.log ?? 'info', base: { svc: 'hub' } }, pino.destination(2))
  mkdirSync(options.dataDir, { recursive: true })
  const profiles = loadProfiles(options.profilesDir ?? DEFAULT_PROFILES_DIR)
  if (profiles.size === 0)
    throw new EdgeFleetError(
      'EF_ERR_CONFIG_INVALID',
      `no firmware profiles in ${options.profilesDir ?? DEFAULT_PROFILES_DIR}`,
    )
  const store = HubStore.open(join(options.dataDir, 'hub.db'))
  store.devices.markAllOffline()
  const blobs = new BlobStore(join(options.dataDir, 'blobs'))
  const keys = loadOrCreateKeys(options.dataDir)

  let broker: EmbeddedBroker | undefined
  let mqttUrl = options.brokerUrl
  // Set once the handlers exist: until then the broker refuses telemetry unacknowledged (devices resend it).
  let ingestHook: ((topic: string, payload: Buffer, done: (err?: Error) => void) => void) | undefined
  if (!mqttUrl) {
    broker = await startEmbeddedBroker({
      port: options.mqttPort ?? defaultHubOptions.mqttPort,
      host,
      hubSecret: keys.hubSecret,
      secretHashOf: (id) => store.devices.secretHash(id),
      feedTokenValid: (token) => store.tokens.lookup(sha256Hex(token), now()) !== undefined,
      log,
      ingest: (topic, payload, done) =>
        ingestHook
          ? ingestHook(topic, payload, done)
          : done(new EdgeFleetError('EF_ERR_INGEST_UNAVAILABLE', 'the hub is starting')),
    })
    mqttUrl = broker.url
  }

  const syncBroker = options.mosquittoDir
    ? () =>
        syncMosquittoFiles({
          dir: options.mosquittoDir!,
          hubSecret: keys.hubSecret,
          devices: () => store.devices.brokerHashes(),
          pidFile: options.mosquittoPidFile,
        })
    : () => undefined
  syncBroker()

  const metrics = newMetrics()
  let mqtt: HubMqtt | undefined
  const publish = (topic: string, payload: Buffer) => {
    if (!mqtt) return Promise.reject(new Error('hub mqtt client not connected yet'))
    return mqtt.publish(topic, payload, { qos: 1 })
  }
  const builder = new Builder({
    store,
    blobs,
    profiles,
    privateKey: keys.privateKey,
    log,
    now,
    workerUrl: options.compileWorkerUrl,
  })
  const registry = new Registry(store, blobs, builder, now)
  let httpBase: string | undefined
  const deployer = new Deployer({
    store,
    builder,
    privateKey: keys.privateKey,
    log,
    now,
    publish,
    httpBase: () => options.publicUrl ?? httpBase,
  })
  const commands = new CommandSender({ store, privateKey: keys.privateKey, now, publish })
  const distributor = new Distributor({
    store,
    blobs,
    log,
    publish,
    now,
    expectedReceivers: (a) => store.deployments.openReceivers(a),
  })
  const retraining = new Retraining(
    { store, log, now, publish, onFlush: (r) => (metrics.duplicateBatches += r.duplicateBatches + r.duplicateSamples) },
    options.retraining,
  )
  const ctx: HandlerContext = {
    ingest: retraining.ingest,
    store,
    log,
    metrics,
    now,
    assertSameDevice,
    onFetch: (req) => distributor.handle(req),
    onDeviceOnline: (id) =>
      void deployer.resendOpen(id).catch((err: Error) => log.warn({ device: id, err: err.message }, 'resend failed')),
  }
  if (broker) {
    // Embedded broker: read what agents publish inside the broker, without a
    // second MQTT encode/parse over loopback (ingest rate roughly doubles).
    // Telemetry and samples are taken in its authorize hook instead, so their
    // PUBACK waits for the commit [EF-9.1.1]; the rest is handled synchronously.
    const aedes = broker.aedes
    ingestHook = (topic, payload, done) => dispatch(ctx, topic, payload, done)
    await Promise.all(
      topics
        .hubSubscriptions()
        .filter((filter) => !isIngestTopic(filter.replace('+', 'x'))) // judged on a concrete topic of the filter
        .map(
          (filter) =>
            new Promise<void>((resolve) =>
              aedes.subscribe(
                filter,
                (packet, done) => {
                  dispatch(ctx, packet.topic, packet.payload as Buffer)
                  done()
                },
                resolve,
              ),
            ),
        ),
    )
  }
  mqtt = await HubMqtt.connect({
    url: mqttUrl,
    secret: keys.hubSecret,
    log,
    subscribe: !broker,
    onMessage: (t, p) => dispatch(ctx, t, p),
    gate: (next) => retraining.ingest.whenReady(next),
  })

  const adminToken = bootstrapAdminToken(store, options.dataDir, now())
  const rollouts = new RolloutEngine({ store, deployer, commands, profiles, log, now, random: options.random })
  registry.rollouts = rollouts // the canary intake policy starts rollouts [EF-9.11]
  const api = await buildApi({
    store,
    registry,
    deployer,
    commands,
    profiles,
    keys,
    blobs,
    metrics,
    mqttUrl,
    log,
    now,
    onDevicesChanged: syncBroker,
    distribution: distributor.stats,
    rollouts,
    retraining,
    auth: options.auth ?? true,
    brokerClients: () => broker?.aedes.connectedClients,
  })
  await api.listen({ port: options.httpPort ?? defaultHubOptions.httpPort, host })
  const addr = api.server.address()
  const httpUrl = `http://${host}:${typeof addr === 'object' && addr ? addr.port : options.httpPort}`
  httpBase = httpUrl
  const tickMs = options.rolloutTickMs ?? defaultEngineOptions.tickMs
  if (tickMs > 0) rollouts.start(tickMs)
  retraining.start()
  log.info({ mqttUrl, httpUrl, profiles: profiles.size }, 'hub started')

  let closed = false
  return {
    store,
    keys,
    profiles,
    registry,
    deployer,
    distributor,
    metrics,
    rollouts,
    retraining,
    adminToken,
    api,
    broker,
    mqttUrl,
    httpUrl,
    log,
    async close() {
      if (closed) return
      closed = true
      await rollouts.close()
      await api.close()
      distributor.close()
      await mqtt?.close()
      await retraining.close() // commits what is still queued; its PUBACKs go out before the broker closes
      await broker?.close()
      store.close()
      closeMatchers()
    },
  }
}
