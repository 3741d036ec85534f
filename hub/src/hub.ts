// Composition root: wires store, broker, MQTT client, builder, registry,
// deployer and the HTTP API into one running hub. Start-up builds the parts in
// order, one function per step; each part that holds something open (file,
// port, thread, timer) is recorded in HubParts as soon as it exists, so a
// later step that fails closes exactly what was opened before it.
import { join } from 'node:path'
import pino, { type Logger } from 'pino'
import { EdgeFleetError, PROTOCOL_VERSION, defined, sha256Hex, topics, type FirmwareProfile } from '@edgefleet/shared'
import { HubStore } from './store/index.js'
import { raiseFdLimit } from './fd-limit.js'
import { openBlobStore, type BlobStore } from './store/blobs.js'
import { announceKey, loadOrCreateKeys, type HubKeys } from './keys.js'
import { ReceiptJournal } from './telemetry/receipt-journal.js'
import { isHookTopic, isIngestTopic, startEmbeddedBroker, type EmbeddedBroker } from './broker/embedded.js'
import { checkBrokerConfig, type BrokerConfig } from './broker/config.js'
import { syncMosquittoFiles } from './broker/mosquitto.js'
import { natsAcceptsId, natsHash, syncNatsFiles } from './broker/nats.js'
import { HubMqtt } from './mqtt/client.js'
import { assertSameDevice, dispatch, newMetrics, type HandlerContext, type HubMetrics } from './mqtt/dispatch.js'
import { Builder } from './build/builder.js'
import { Registry } from './registry/models.js'
import { Deployer } from './distribution/deployer.js'
import { CommandSender } from './distribution/commands.js'
import { AgentUpdates, DEFAULT_AGENT_DEADLINE_MS, checkAgentDeadline } from './agent-releases/updates.js'
import { CapturePolicies } from './capture/policies.js'
import { Distributor } from './distribution/broadcast.js'
import { HealthAlerts } from './telemetry/health-alerts.js'
import { loadProfiles, DEFAULT_PROFILES_DIR } from './profiles.js'
import { buildApi } from './api/server.js'
import { Retraining, type RetrainingOptions } from './telemetry/index.js'
import { startStreaming, type StreamOptions, type Streaming } from './stream/index.js'
import type { FastifyInstance } from 'fastify'
import { RolloutEngine, defaultEngineOptions } from './rollouts/engine.js'
import { closeMatchers } from './rollouts/schedule.js'
import { bootstrapAdminToken } from './api/auth.js'
import { privateDir } from './private-files.js'
import { listenError } from './listen.js'
import {
  checkPlainBind,
  connectHost,
  isLoopback,
  resolveServingTls,
  type HubTlsOptions,
  type ServingTls,
} from './tls/serving.js'
import { issueDeviceCert } from './tls/ca.js'
import { Reconciler } from './distribution/reconcile.js'
import { HoldScheduler } from './distribution/hold.js'
import {
  defaultReplicaId,
  startCluster,
  type Cluster,
  type ClusterOptions,
  type Leadership,
  type LeaderTask,
} from './cluster/index.js'

/** How long after a start a broadcast waits for every device with an open assignment, online or not yet [EF-2.7]. */
const RESTART_GATHER_MS = 30_000

export interface HubOptions {
  /** Folder for the database, blobs and keys. */
  dataDir: string
  /** Embedded broker TCP port; 0 = ephemeral. Ignored with brokerUrl. */
  mqttPort?: number
  /** HTTP API port; 0 = ephemeral. */
  httpPort?: number
  /** Interface both listeners bind to. */
  host?: string
  /**
   * TLS on every listener [EF-10]: true or options = on (generated CA and certificate, or the operator's files);
   * false = plain, which off loopback needs `insecure`. Unset: on when `host` is not a loopback address.
   */
  tls?: HubTlsOptions | boolean
  /** Embedded broker's MQTT-over-TLS port when TLS is on; 0 = ephemeral. */
  mqttsPort?: number
  /** Accept plain MQTT/HTTP on a non-loopback address (warned at every start) [EF-10.2]. */
  insecure?: boolean
  /** Use an external broker instead of the embedded aedes: a URL, or a cluster's nodes comma-separated [EF-4.12]. */
  brokerUrl?: string
  /** With an external Mosquitto: folder where the hub keeps its password and ACL files. */
  mosquittoDir?: string
  /** Mosquitto's pid file, to make it reload those files (SIGHUP) after each change. */
  mosquittoPidFile?: string
  /** With a NATS cluster: folder where the hub keeps the authorization file every node includes [EF-4.12]. */
  natsDir?: string
  /** One pid file per local NATS node, each signalled (SIGHUP) to reload after each change. */
  natsPidFiles?: string[]
  profilesDir?: string
  /** pino level, or a ready logger. */
  log?: Logger | string
  /** URL devices reach the HTTP API at (artifact downloads); default: the listening address. */
  publicUrl?: string
  /** Content-addressed build store, e.g. on storage shared by replicas [EF-4.13]; default <dataDir>/blobs. */
  blobDir?: string
  /** Base URL of an HTTP origin (CDN) serving blobDir's files by name; deploy commands carry it [EF-4.13]. */
  artifactUrl?: string
  /** Ingest batching, drift, retention [EF-9]; defaults in their modules. */
  retraining?: RetrainingOptions
  /** Telemetry and the retraining feed through NATS JetStream: `nats://[user:pass@]host:port[,…]` [EF-9.13]. */
  streamUrl?: string
  /** JetStream settings (replicas, windows, timeouts); defaults in stream/connection.ts. */
  stream?: Partial<StreamOptions>
  /** Clock seam for tests (ms since epoch). */
  now?: () => number
  /** Compile worker script (see compileInWorker); tests running from source pass hub/dist/compiler/worker.js. */
  compileWorkerUrl?: URL
  /** Require API tokens on /api/v1 [EF-8.10]. Default true; false is for in-process unit tests only. */
  auth?: boolean
  /** An open assignment of an online device idle this long gets its command again [EF-2.1.4]; 0 = never. Default 30 s. */
  reconcileMs?: number
  /**
   * Time a new agent has to start, reconnect and pass its health check when an agent update
   * names none (agent rollouts, `agent update` without --deadline-ms) [EF-11.7]. Default 120 s.
   */
  agentDeadlineMs?: number
  /**
   * Send every plain deployment at once, ignoring maintenance windows and device conditions, as if each
   * asked for `now` [EF-8.16]: for a lab or a test bench. Default false.
   */
  immediateDeploys?: boolean
  /** How often held deploy assignments are looked at for release [EF-8.16], ms; 0 = never on a timer. Default 10 s. */
  holdTickMs?: number
  /** Rollout engine tick, ms; 0 = never tick on a timer (tests call hub.rollouts.tick()). */
  rolloutTickMs?: number
  /** Randomness seam for rollout jitter. */
  random?: () => number
  /** Embedded broker limits and per-device quotas [EF-1.7]; defaults in broker/limits.ts and broker/quota.ts. */
  broker?: BrokerConfig
  /**
   * Several replicas: with `cluster.url` (postgresql://…) this hub bids for leadership there and runs the
   * leader-only work only while it leads [EF-12]. Without: the only replica, always leader.
   */
  cluster?: ClusterOptions
  /** The hub's keys in this file instead of <dataDir>/hub-keys.json: the one file every replica mounts [EF-12.7]. */
  keyFile?: string
  /** The hub's database: a postgresql:// URL, or a SQLite file; default <dataDir>/hub.db. */
  store?: string
}

export const defaultHubOptions = {
  /** MQTT's registered port. */
  mqttPort: 1883,
  /** MQTT over TLS, registered port. */
  mqttsPort: 8883,
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
  /** Whether this replica leads now, and in which term [EF-12.5]. */
  readonly leadership: Leadership
  /** Releases held plain-deploy assignments when their window opens [EF-8.16]. */
  readonly holds: HoldScheduler
  /** Ingest, drift, retention and the live feed [EF-9]. */
  readonly retraining: Retraining
  /** With streamUrl: the JetStream publisher, consumer and feed [EF-9.13]. */
  readonly streaming?: Streaming
  /** The admin token created at first start (read back from <dataDir>/admin-token later), if still on disk. */
  readonly adminToken?: string
  readonly api: FastifyInstance
  readonly broker?: EmbeddedBroker
  /** URL agents connect to. */
  readonly mqttUrl: string
  readonly httpUrl: string
  /** With TLS: the CA file agents and the CLI verify the hub with (--ca), unless its certificate is public. */
  readonly caFile?: string
  readonly tls?: ServingTls
  readonly log: Logger
  close(): Promise<void>
}

/** Everything start-up opened, in the order it is closed (see closeParts). */
interface HubParts {
  /** Stopped first: the leader-only work stops, then the lease is released for the next replica [EF-12.4]. */
  cluster?: Cluster
  holds?: HoldScheduler
  agentUpdates?: AgentUpdates
  rollouts?: RolloutEngine
  api?: FastifyInstance
  distributor?: Distributor
  mqtt?: HubMqtt
  streaming?: Streaming
  retraining?: Retraining
  journal?: ReceiptJournal
  broker?: EmbeddedBroker
  store?: HubStore
}

/**
 * Closes what was opened, newest consumers first: the rollout engine and API
 * stop issuing work, then the broadcasts and the hub's MQTT client; queued
 * telemetry is committed (its PUBACKs go out before the broker closes); the
 * store last.
 */
async function closeParts(opened: HubParts): Promise<void> {
  await opened.cluster?.close()
  opened.holds?.close()
  opened.agentUpdates?.close()
  await opened.rollouts?.close()
  await opened.api?.close()
  opened.distributor?.close()
  await opened.mqtt?.close()
  await opened.streaming?.stopConsuming()
  await opened.retraining?.close()
  await opened.streaming?.close()
  opened.journal?.close()
  await opened.broker?.close()
  opened.store?.close()
  closeMatchers()
}

/**
 * Links from parts built early to parts built later (each set once, when the
 * later part exists): publishing needs the hub's MQTT client, artifact URLs
 * need the API's address, and the embedded broker's ingest needs the handlers.
 */
interface LateLinks {
  mqtt?: HubMqtt
  httpBase?: string
  /** Until set, the broker refuses telemetry unacknowledged (devices resend it). */
  ingest?: IngestHook
  /** Until set (the election starts last), this replica does not lead. */
  leadership?: Leadership
}
type IngestHook = (topic: string, payload: Buffer, done: (err?: Error) => void) => void

/** Settings resolved and checked before anything is opened. */
interface HubBase {
  options: HubOptions
  host: string
  now: () => number
  log: Logger
  profiles: Map<string, FirmwareProfile>
  /** TLS material when TLS is on [EF-10.1]. */
  tls?: ServingTls
}

function resolveBase(options: HubOptions): HubBase {
  const log =
    typeof options.log === 'object'
      ? options.log
      : pino({ level: options.log ?? 'info', base: { svc: 'hub' } }, pino.destination(2))
  const profilesDir = options.profilesDir ?? DEFAULT_PROFILES_DIR
  const profiles = loadProfiles(profilesDir)
  if (profiles.size === 0) throw new EdgeFleetError('EF_ERR_CONFIG_INVALID', `no firmware profiles in ${profilesDir}`)
  return { options, host: options.host ?? defaultHubOptions.host, now: options.now ?? Date.now, log, profiles }
}

/** TLS on, explicitly or because the listeners leave loopback; plain off loopback only with `insecure` [EF-10.2]. */
async function resolveTls(base: HubBase): Promise<ServingTls | undefined> {
  const { tls, insecure, dataDir } = base.options
  const on = tls === undefined ? !isLoopback(base.host) && !insecure : tls !== false
  if (!on) {
    checkPlainBind(base.host, insecure, base.log)
    return undefined
  }
  return resolveServingTls(dataDir, typeof tls === 'object' ? tls : {})
}

/** --artifact-url as a base URL ending in '/', so a digest resolves under it [EF-4.13]; throws on anything but http(s). */
function checkArtifactUrl(url: string | undefined): string | undefined {
  if (url === undefined) return undefined
  let parsed: URL | undefined
  try {
    parsed = new URL(url)
  } catch {
    parsed = undefined
  }
  if (!parsed || !['http:', 'https:'].includes(parsed.protocol) || parsed.search || parsed.hash || parsed.username)
    throw new EdgeFleetError(
      'EF_ERR_CONFIG_INVALID',
      `--artifact-url ${url}: give an http(s) base URL without query or credentials, e.g. https://cdn.example.com/edgefleet/`,
    )
  return parsed.href.endsWith('/') ? parsed.href : `${parsed.href}/`
}

function openStorage(base: HubBase, parts: HubParts): { store: HubStore; blobs: BlobStore; keys: HubKeys } {
  const { dataDir, blobDir, keyFile } = base.options
  privateDir(dataDir) // 0700: the database, keys and admin token live here
  const store = HubStore.open(base.options.store ?? join(dataDir, 'hub.db'))
  parts.store = store
  store.devices.markAllOffline()
  return { store, blobs: openBlobStore(dataDir, blobDir, base.log), keys: loadOrCreateKeys(dataDir, keyFile) }
}

/** The embedded aedes, unless an external broker URL is configured. */
async function startBroker(
  base: HubBase,
  store: HubStore,
  keys: HubKeys,
  links: LateLinks,
): Promise<EmbeddedBroker | undefined> {
  if (base.options.brokerUrl) return undefined
  return startEmbeddedBroker({
    port: base.tls
      ? (base.options.mqttsPort ?? defaultHubOptions.mqttsPort)
      : (base.options.mqttPort ?? defaultHubOptions.mqttPort),
    host: base.host,
    ...(base.tls ? { tls: { cert: base.tls.cert, key: base.tls.key, clientCa: base.tls.clientCa } } : {}),
    hubSecret: keys.hubSecret,
    secretHashOf: (id) => store.devices.secretHash(id),
    feedTokenId: (token) => store.tokens.lookup(sha256Hex(token), base.now())?.id,
    log: base.log,
    ...(base.options.broker ? checkBrokerConfig(base.options.broker) : {}),
    // Recorded in the device's event log, so operators see why it slowed down [EF-1.7.5].
    onQuota: (deviceId, code, message) =>
      store.deployments.insertEvent(
        { v: PROTOCOL_VERSION, deviceId, ts: base.now(), kind: 'rejected', code, message },
        base.now(),
      ),
    ingest: (topic, payload, done) =>
      links.ingest
        ? links.ingest(topic, payload, done)
        : done(new EdgeFleetError('EF_ERR_INGEST_UNAVAILABLE', 'the hub is starting')),
  })
}

/** With an external Mosquitto: rewrites its password and ACL files after each device change [EF-4.11]. */
function mosquittoSync(options: HubOptions, store: HubStore, keys: HubKeys): () => void {
  const dir = options.mosquittoDir
  if (!dir) return () => undefined
  return () =>
    syncMosquittoFiles({
      dir,
      hubSecret: keys.hubSecret,
      devices: () => store.devices.brokerHashes(),
      pidFile: options.mosquittoPidFile,
      limits: options.broker ? checkBrokerConfig(options.broker).limits : undefined,
    })
}

/** With a NATS cluster: rewrites its authorization file and reloads every node after each device change [EF-4.12]. */
function natsSync(base: HubBase, store: HubStore, keys: HubKeys): () => void {
  const dir = base.options.natsDir
  if (!dir) return () => undefined
  const hubHash = natsHash(keys.hubSecret)
  const files = {
    dir,
    hubSecret: keys.hubSecret,
    devices: () => store.devices.natsHashes(),
    pidFiles: base.options.natsPidFiles,
  }
  return () => {
    const left = syncNatsFiles(files, hubHash)
    if (left.length)
      base.log.warn(
        { code: 'EF_ERR_BROKER_ID_UNSUPPORTED', devices: left.slice(0, 20), count: left.length },
        "device ids with '.' cannot use a NATS cluster (NATS refuses MQTT topics with dots): left out of its authorization",
      )
  }
}

/** The hub's services: build, registry, deployment, broadcasts, retraining, and the MQTT handlers' context. */
function createServices(
  base: HubBase,
  storage: { store: HubStore; blobs: BlobStore; keys: HubKeys },
  links: LateLinks,
  parts: HubParts,
) {
  const { store, blobs, keys } = storage
  const { log, now, options } = base
  const metrics = newMetrics()
  const publish = (topic: string, payload: Buffer) => {
    if (!links.mqtt) return Promise.reject(new Error('hub mqtt client not connected yet'))
    return links.mqtt.publish(topic, payload, { qos: 1 })
  }
  const builder = newBuilder(base, storage, metrics)
  const registry = new Registry(store, blobs, builder, now)
  const deployer = newDeployer(base, storage, builder, publish, links)
  const commands = new CommandSender({ store, keys, now, publish })
  const agentUpdates = new AgentUpdates({
    store,
    keys,
    profiles: base.profiles,
    now,
    log,
    commands,
    httpBase: () => options.publicUrl ?? links.httpBase ?? '',
    defaultDeadlineMs: checkAgentDeadline(options.agentDeadlineMs ?? DEFAULT_AGENT_DEADLINE_MS),
  })
  parts.agentUpdates = agentUpdates
  const capturePolicies = new CapturePolicies({
    store,
    now,
    send: (id, policies) => commands.capturePolicy(id, policies),
    onError: (id, err) => log.warn({ device: id, err: err.message }, 'capture policy send failed'),
  })
  const distributor = newDistributor(base, storage, publish)
  parts.distributor = distributor
  const retraining = newRetraining(base, store, metrics, publish)
  parts.retraining = retraining
  const healthAlerts = new HealthAlerts({ store, profiles: base.profiles, now })
  const ctx = handlerContext(base, storage, {
    metrics,
    retraining,
    healthAlerts,
    distributor,
    deployer,
    capturePolicies,
    agentUpdates,
    commands,
  })
  return { metrics, registry, deployer, commands, agentUpdates, capturePolicies, distributor, retraining, ctx }
}

/** Plain deployments: signed commands, held for maintenance windows unless immediate [EF-8.16]. */
function newDeployer(
  base: HubBase,
  storage: { store: HubStore; keys: HubKeys },
  builder: Builder,
  publish: (topic: string, payload: Buffer) => Promise<void>,
  links: LateLinks,
): Deployer {
  const { log, now, options } = base
  return new Deployer({
    store: storage.store,
    builder,
    profiles: base.profiles,
    immediate: options.immediateDeploys ?? false,
    keys: storage.keys,
    log,
    now,
    publish,
    httpBase: () => options.publicUrl ?? links.httpBase,
    artifactBase: checkArtifactUrl(options.artifactUrl),
  })
}

/** The build service, timing each build into the metrics. */
function newBuilder(base: HubBase, storage: { store: HubStore; blobs: BlobStore; keys: HubKeys }, metrics: HubMetrics) {
  const { store, blobs, keys } = storage
  const { log, now, options } = base
  return new Builder({
    store,
    blobs,
    profiles: base.profiles,
    keys,
    log,
    now,
    workerUrl: options.compileWorkerUrl,
    onBuilt: (b) => metrics.histograms.buildSeconds.observe(b.seconds, { profile: b.profile, outcome: b.outcome }),
  })
}

/** Chunk broadcast and repair of artifacts [EF-2.7, EF-4]. */
function newDistributor(
  base: HubBase,
  storage: { store: HubStore; blobs: BlobStore },
  publish: (topic: string, payload: Buffer) => Promise<void>,
): Distributor {
  const { store, blobs } = storage
  const { log, now } = base
  const startedAt = now()
  return new Distributor({
    store,
    blobs,
    log,
    publish,
    now,
    // Right after a start every device is offline until its state arrives: count the open assignments
    // of all devices then, so the first agent back does not start the broadcast alone [EF-2.7].
    // An artifact is a model build or an agent package [EF-11.4]: a digest names one or the other.
    expectedReceivers: (a) => {
      const restarting = now() - startedAt < RESTART_GATHER_MS
      return store.deployments.openReceivers(a, restarting) + store.agentUpdates.openReceivers(a, restarting)
    },
  })
}

/** Telemetry ingest, drift and the feed, counting duplicates and transactions into the metrics [EF-9.1]. */
function newRetraining(
  base: HubBase,
  store: HubStore,
  metrics: HubMetrics,
  publish: (topic: string, payload: Buffer) => Promise<void>,
): Retraining {
  const { log, now, options } = base
  return new Retraining(
    {
      store,
      log,
      now,
      publish,
      onFlush: (r) => (metrics.duplicateBatches += r.duplicateBatches + r.duplicateSamples),
      onTransaction: (t) => {
        const outcome = { outcome: t.ok ? 'committed' : 'failed' }
        metrics.histograms.ingestSeconds.observe(t.seconds, outcome)
        metrics.histograms.ingestRecords.observe(t.records, outcome)
      },
    },
    options.retraining,
  )
}

/** What the MQTT handlers are given: the store, the ingest queue, and what to do when a device speaks. */
function handlerContext(
  base: HubBase,
  storage: { store: HubStore; keys: HubKeys },
  services: {
    metrics: HubMetrics
    retraining: Retraining
    healthAlerts: HealthAlerts
    distributor: Distributor
    deployer: Deployer
    capturePolicies: CapturePolicies
    agentUpdates: AgentUpdates
    commands: CommandSender
  },
): HandlerContext {
  const { store, keys } = storage
  const { log, now } = base
  const { retraining, healthAlerts, distributor, deployer, capturePolicies, agentUpdates, commands } = services
  return {
    ingest: retraining.ingest,
    onTelemetry: (batch) => healthAlerts.check(batch.deviceId, batch.to, batch.device),
    store,
    log,
    metrics: services.metrics,
    now,
    assertSameDevice,
    onFetch: (req) => distributor.handle(req),
    onDeviceOnline: (id) => {
      void deployer
        .resendOpen(id)
        .catch((err: unknown) => log.warn({ device: id, err: (err as Error).message }, 'resend failed'))
      void capturePolicies.resend(id) // a joining or returning device gets its fleet capture policies [EF-8.15]
      // An agent update it was sent while away goes out again [EF-11.9].
      void agentUpdates
        .resendOpen(id)
        .catch((err: unknown) => log.warn({ device: id, err: (err as Error).message }, 'agent update resend failed'))
    },
    onHubKeySeen: (id, key) => {
      if (key !== keys.publicKey) void announceKey(commands, keys, id, log)
    },
  }
}

/**
 * Embedded broker: read what agents publish inside the broker, without a
 * second MQTT encode/parse over loopback (ingest rate roughly doubles).
 * Telemetry and samples are taken in its authorize hook instead, so their
 * PUBACK waits for the commit [EF-9.1.1], and so is a device's state, so it
 * is handled before the telemetry that follows it [EF-2.6.8]; the rest comes
 * through broker subscriptions and is handled synchronously.
 */
async function handleInBroker(broker: EmbeddedBroker, ctx: HandlerContext, links: LateLinks): Promise<void> {
  const aedes = broker.aedes
  links.ingest = (topic, payload, done) => dispatch(ctx, topic, payload, done)
  await Promise.all(
    topics
      .hubSubscriptions()
      .filter((filter) => !isHookTopic(filter.replace('+', 'x'))) // judged on a concrete topic of the filter
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

/**
 * External broker: mqtt.js acknowledges a message once read, before its ingest transaction commits, so
 * telemetry and samples go to the receipt journal first; what a crash left there is replayed [EF-9.1.1].
 */
function journaledDispatch(
  base: HubBase,
  ctx: HandlerContext,
  parts: HubParts,
): (topic: string, payload: Buffer) => void {
  const { journal, leftover } = ReceiptJournal.open(join(base.options.dataDir, 'ingest-journal'))
  parts.journal = journal
  let replaying = leftover.length
  if (replaying > 0)
    base.log.warn({ messages: replaying }, 'replaying telemetry received before the last stop and not committed')
  for (const record of leftover)
    dispatch(ctx, record.topic, record.payload, (err) => {
      if (err) base.log.warn({ err: err.message }, 'replayed message not stored: kept for the next start')
      else if (--replaying === 0) journal.forgetReplayed()
    })
  return (topic, payload) => {
    if (!isIngestTopic(topic)) return dispatch(ctx, topic, payload)
    const receipt = journal.append(topic, payload)
    // A failed transaction keeps the message in the journal: the next start stores it.
    dispatch(ctx, topic, payload, (err) => {
      if (!err) journal.committed(receipt)
    })
  }
}

/** The hub's own MQTT client: publishes commands and chunks; with an external broker it also subscribes. */
async function connectHubMqtt(
  base: HubBase,
  mqttUrl: string,
  keys: HubKeys,
  services: ReturnType<typeof createServices>,
  broker: EmbeddedBroker | undefined,
  parts: HubParts,
): Promise<HubMqtt> {
  const { ctx, retraining } = services
  return HubMqtt.connect({
    // The embedded broker is reached on loopback, trusting the hub's CA (its name need not match: same process).
    url: broker ? `${broker.url.split(':')[0]}://${connectHost(base.host)}:${broker.port}` : mqttUrl,
    ...(base.tls?.ca ? { ca: base.tls.ca } : {}),
    ...(broker && base.tls ? { checkServerIdentity: false } : {}),
    secret: keys.hubSecret,
    log: base.log,
    subscribe: !broker,
    // Replicas on one broker: a session each, and each device message to one of them [EF-12.8].
    ...(base.options.cluster?.url ? { replica: base.options.cluster.replicaId ?? defaultReplicaId() } : {}),
    onMessage: broker ? (t, p) => dispatch(ctx, t, p) : journaledDispatch(base, ctx, parts),
    gate: (next) => (ctx.ingest ?? retraining.ingest).whenReady(next),
  })
}

/** The rollout engine and the HTTP API (and console), listening; resolves with the API's URL. */
async function startApi(
  base: HubBase,
  storage: { store: HubStore; blobs: BlobStore; keys: HubKeys },
  services: ReturnType<typeof createServices>,
  mq: { mqttUrl: string; syncBroker: () => void; broker?: EmbeddedBroker; links: LateLinks },
  parts: HubParts,
): Promise<{ rollouts: RolloutEngine; api: FastifyInstance; httpUrl: string; leadership: Leadership }> {
  const { store, blobs, keys } = storage
  const { registry, deployer, commands, agentUpdates, capturePolicies, distributor, retraining, metrics } = services
  const { log, now, profiles, options } = base
  const leadership = lateLeadership(options, mq.links)
  const rollouts = new RolloutEngine({
    store,
    deployer,
    commands,
    agentUpdates,
    profiles,
    log,
    now,
    random: options.random,
    leading: () => leadership.isLeader(),
  })
  parts.rollouts = rollouts
  registry.rollouts = rollouts // the canary intake policy starts rollouts [EF-9.11]
  const api = await buildApi({
    store,
    registry,
    deployer,
    commands,
    agentUpdates,
    capturePolicies,
    profiles,
    keys,
    blobs,
    metrics,
    mqttUrl: mq.mqttUrl,
    log,
    now,
    onDevicesChanged: mq.syncBroker,
    disconnectDevice: (id) => void mq.broker?.disconnect(id),
    ...(options.natsDir ? { brokerAcceptsId: natsAcceptsId } : {}),
    distribution: distributor.stats,
    rollouts,
    retraining,
    auth: options.auth ?? true,
    ...(base.tls ? { https: { cert: base.tls.cert, key: base.tls.key } } : {}),
    ...(base.tls ? { deviceTls: deviceTls(base.tls, options.dataDir) } : {}),
    brokerClients: () => mq.broker?.aedes.connectedClients,
    brokerLimits: mq.broker?.limits,
    leadership,
  })
  parts.api = api
  const httpUrl = await listenApi(api, base)
  mq.links.httpBase = httpUrl // artifact URLs in deploy commands
  return { rollouts, api, httpUrl, leadership }
}

/** Writes the fleet's users and permissions into an external broker's files (Mosquitto, NATS); a no-op for neither. */
function externalBrokerSync(base: HubBase, store: HubStore, keys: HubKeys): () => void {
  const syncMosquitto = mosquittoSync(base.options, store, keys)
  const syncNats = natsSync(base, store, keys)
  return () => {
    syncMosquitto()
    syncNats()
  }
}

/**
 * The hub's own clocks, which act for the whole fleet and so run on the leader only [EF-12.6]: resends of
 * lost commands, held deploys, the rollout engine, drift and retention. Ingest and the API run everywhere.
 */
function leaderTasks(
  base: HubBase,
  store: HubStore,
  services: ReturnType<typeof createServices>,
  rollouts: RolloutEngine,
  holds: HoldScheduler,
): LeaderTask[] {
  const { log, now, options } = base
  const { deployer, agentUpdates, retraining, distributor } = services
  const tasks: LeaderTask[] = []
  const reconcileMs = options.reconcileMs ?? 30_000
  if (reconcileMs > 0) {
    const reconciler = new Reconciler(
      {
        store,
        now,
        resend: (a) => deployer.resend(a),
        receiving: (deviceId) => distributor.receiving(deviceId),
        onError: (err) => log.warn({ err: err.message }, 'reconciliation resend failed'),
      },
      reconcileMs,
    )
    tasks.push({ name: 'reconcile', start: () => reconciler.start(), stop: () => reconciler.close() })
    // Lost agent updates too [EF-11.9].
    tasks.push({
      name: 'agent-updates',
      start: () => agentUpdates.start(reconcileMs),
      stop: () => agentUpdates.close(),
    })
  }
  const holdTickMs = options.holdTickMs ?? 10_000
  if (holdTickMs > 0) tasks.push({ name: 'holds', start: () => holds.start(holdTickMs), stop: () => holds.close() })
  const tickMs = options.rolloutTickMs ?? defaultEngineOptions.tickMs
  if (tickMs > 0) tasks.push({ name: 'rollouts', start: () => rollouts.start(tickMs), stop: () => rollouts.close() })
  tasks.push({ name: 'drift-retention', start: () => retraining.start(), stop: () => retraining.stopJobs() })
  return tasks
}

/** The sends of held plain-deploy assignments once their window opens and their conditions hold [EF-8.16]. */
function newHolds(base: HubBase, store: HubStore, deployer: Deployer, parts: HubParts): HoldScheduler {
  const holds = new HoldScheduler({
    store,
    profiles: base.profiles,
    now: base.now,
    release: (a) => deployer.resend(a),
    onError: (err) => base.log.warn({ err: err.message }, 'sending a released deploy failed'),
  })
  parts.holds = holds
  return holds
}

/** The election (or the sole replica's stand-in) driving the leader-only work [EF-12]; returns the hold scheduler. */
function startLeaderWork(
  base: HubBase,
  store: HubStore,
  services: ReturnType<typeof createServices>,
  late: { rollouts: RolloutEngine; leadership: Leadership; links: LateLinks },
  parts: HubParts,
): HoldScheduler {
  const holds = newHolds(base, store, services.deployer, parts)
  const tasks = leaderTasks(base, store, services, late.rollouts, holds)
  parts.cluster = startCluster({ ...base.options.cluster, replicaId: late.leadership.replicaId }, tasks, base.log)
  late.links.leadership = parts.cluster.leadership
  return holds
}

/** Whether this replica leads, answered by the election once it runs (started last), not leading until then. */
function lateLeadership(options: HubOptions, links: LateLinks): Leadership {
  return {
    replicaId: options.cluster?.replicaId ?? defaultReplicaId(),
    isLeader: () => links.leadership?.isLeader() ?? false,
    term: () => links.leadership?.term() ?? 0,
  }
}

/** With --stream: before any device is read, accepted telemetry goes to JetStream instead of the writer [EF-9.13]. */
async function streamIngest(
  base: HubBase,
  store: HubStore,
  services: ReturnType<typeof createServices>,
  parts: HubParts,
): Promise<void> {
  const { streamUrl, stream } = base.options
  if (!streamUrl) return
  const deps = { store, retraining: services.retraining, log: base.log, now: base.now }
  parts.streaming = await startStreaming(streamUrl, deps, stream)
  services.ctx.ingest = parts.streaming.ingest
}

/** What `device add` hands out with TLS: the CA to trust, and device certificates on request [EF-10.3]. */
function deviceTls(tls: ServingTls, dataDir: string) {
  return {
    ca: tls.ca?.toString('utf8'),
    caFile: tls.caFile,
    issueCert: async (deviceId: string) => {
      const issued = await issueDeviceCert(dataDir, deviceId)
      return { cert: issued.cert, key: issued.key, clientCa: issued.ca }
    },
  }
}

/** Binds the API (and console); resolves with the URL it listens at. */
async function listenApi(api: FastifyInstance, base: HubBase): Promise<string> {
  const port = base.options.httpPort ?? defaultHubOptions.httpPort
  try {
    await api.listen({ port, host: base.host })
  } catch (err) {
    throw listenError(err, 'HTTP API', base.host, port)
  }
  const addr = api.server.address()
  return `${base.tls ? 'https' : 'http'}://${base.host}:${typeof addr === 'object' && addr ? addr.port : port}`
}

export async function startHub(options: HubOptions): Promise<Hub> {
  const base = resolveBase(options)
  base.tls = await resolveTls(base)
  const { log, now, profiles } = base
  // Every device is a socket: take all the descriptors the hard limit allows before listening.
  raiseFdLimit(log)
  const parts: HubParts = {}
  const links: LateLinks = {}
  try {
    const storage = openStorage(base, parts)
    const { store, keys } = storage
    const broker = await startBroker(base, store, keys, links)
    parts.broker = broker
    // startBroker starts none exactly when options.brokerUrl names an external one.
    const mqttUrl = defined(broker?.url ?? options.brokerUrl, 'MQTT broker URL')
    const syncBroker = externalBrokerSync(base, store, keys)
    syncBroker()
    const services = createServices(base, storage, links, parts)
    const { metrics, registry, deployer, distributor, retraining } = services
    await streamIngest(base, store, services, parts)
    if (broker) await handleInBroker(broker, services.ctx, links)
    links.mqtt = parts.mqtt = await connectHubMqtt(base, mqttUrl, keys, services, broker, parts)
    const adminToken = bootstrapAdminToken(store, options.dataDir, now())
    const serving = { mqttUrl, syncBroker, broker, links }
    const { rollouts, api, httpUrl, leadership } = await startApi(base, storage, services, serving, parts)
    const holds = startLeaderWork(base, store, services, { rollouts, leadership, links }, parts)
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
      leadership,
      holds,
      retraining,
      ...(parts.streaming ? { streaming: parts.streaming } : {}),
      adminToken,
      api,
      broker,
      mqttUrl,
      httpUrl,
      ...(base.tls?.caFile ? { caFile: base.tls.caFile } : {}),
      tls: base.tls,
      log,
      async close() {
        if (closed) return
        closed = true
        await closeParts(parts)
      },
    }
  } catch (err) {
    // A later step failed (e.g. the HTTP port is taken): close what the earlier ones opened, keep the first error.
    await closeParts(parts).catch((closeErr: unknown) =>
      log.error({ err: (closeErr as Error).message }, 'closing after a failed start failed'),
    )
    throw err
  }
}
