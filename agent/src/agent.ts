// Composition root of the agent: store, slots, runtime, updater, MQTT, local
// API and telemetry. `createAgent` is also the in-process API for apps that
// embed the agent as a library. Start-up builds the parts in order, one
// function per step; what holds something open (database, ORT sessions,
// workers, the API port, the connection, a timer) is recorded in AgentParts
// as soon as it exists, so a step that fails closes what came before it.
import { join } from 'node:path'
import { readFileSync, existsSync } from 'node:fs'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import type { Server } from 'node:http'
import type { Logger } from 'pino'
import {
  PROTOCOL_VERSION,
  EdgeFleetError,
  MAX_FETCH_CHUNKS,
  eventCodec,
  fetchCodec,
  profileCodec,
  telemetryCodec,
  topics,
  type DeviceState,
  type FetchOp,
  type KnownOutcome,
  type FetchRequest,
  type FirmwareProfile,
} from '@edgefleet/shared'
import { readTlsFiles, type AgentConfig, type AgentTls } from './config.js'
import { AgentDb } from './store/db.js'
import { Slots } from './updater/slots.js'
import { ChunkStore } from './updater/chunks.js'
import { Updater, type EventReport } from './updater/updater.js'
import type { ChunkTransport } from './updater/download.js'
import { ModelHost, type InferResult } from './runtime/host.js'
import { chooseBackend, type Tensor } from './runtime/session.js'
import { Connection } from './mqtt/connection.js'
import { OutboxSender } from './mqtt/outbox.js'
import { handleCmd } from './mqtt/handlers/cmd.js'
import { DeferredCmds } from './mqtt/handlers/deferred.js'
import { storageCode } from './store/faults.js'
import { HubTrust } from './trust.js'
import { privateDir } from './private-files.js'
import { createApiServer } from './api/server.js'
import { InferenceCounters } from './telemetry/metrics.js'
import { Aggregator } from './telemetry/aggregator.js'
import { asPino, createLogger } from './telemetry/logger.js'
import { deviceStats, freeStorageBytes } from './telemetry/device.js'
import { createRuntimeServices, type RuntimeServices } from './runtime/services.js'
import { createSelfUpdate } from './selfupdate/index.js'
import { runningAgentVersion } from './selfupdate/version.js'

export const AGENT_VERSION = '0.1.0'

export interface Agent {
  readonly config: Readonly<AgentConfig>
  /** Port of the local API once started (useful with apiPort 0). */
  readonly apiPort: number
  infer(model: string, inputs: Record<string, Tensor>): Promise<InferResult>
  models(): { name: string; version: string; precision: string; slot: string }[]
  /** Cuts and queues a telemetry batch now (otherwise every telemetryIntervalMs). */
  flushTelemetry(): void
  /** Counters: telemetry batches, captures, drops by reason, queue (also GET /v1/stats). */
  stats(): AgentStats
  /** Runtime services (shadow, capture, conditions) for embedding apps and tests. */
  readonly runtime: RuntimeServices
  close(): Promise<void>
}

export interface AgentStats {
  batchesCut: number
  /** Records dropped since start, by reason [EF-2.6.3]. */
  drops: { evicted: number; diskFull: number; capped: number }
  capture: { captured: number; capturedBytes: number; capped: number; policies: number }
  shadow: { model: string; candidate: string; fraction: number }[]
  queued: Record<string, number>
  connected: boolean
}

export interface AgentDeps {
  log?: Logger
  now?: () => number
  /** Test seam: called at each update step (see Updater). */
  onStep?: (step: string) => void
  /** Start the local HTTP API (default true). */
  api?: boolean
  /** Shadow worker script (tests from sources pass the built one). */
  shadowWorkerUrl?: URL
  /** Sampling seam for shadow and capture (default Math.random). */
  random?: () => number
  /** Ends the process so the launcher starts a staged agent [EF-11.6]; without it agent updates are refused. */
  handOver?: () => void
}

function readProfile(dir: string | undefined, id: string): FirmwareProfile | undefined {
  // --profiles-dir, then beside an agent package's dist/ (agent-package), then the repository's.
  const here = import.meta.dirname ?? '.'
  const candidates = [dir, join(here, '..', 'firmware-profiles'), join(here, '..', '..', 'firmware-profiles')].filter(
    (d): d is string => !!d,
  )
  for (const d of candidates) {
    const f = join(d, `${id}.json`)
    if (existsSync(f)) return profileCodec.decode(readFileSync(f))
  }
  return undefined
}

function chunkList<T>(xs: T[], n: number): T[][] {
  const out: T[][] = []
  for (let i = 0; i < xs.length; i += n) out.push(xs.slice(i, i + n))
  return out
}

/** Everything start-up opened, in the order it is closed (see closeParts). */
interface AgentParts {
  timer?: NodeJS.Timeout
  services?: RuntimeServices
  server?: Server
  conn?: Connection
  host?: ModelHost
  db?: AgentDb
  deferred?: DeferredCmds
  /** The self-update wiring: its event-loop monitor stops at close [EF-11.10]. */
  selfUpdate?: { close(): void }
}

/** Stops telemetry and shadow runs, the local API and the connection, then the ORT sessions and the database. */
async function closeParts(opened: AgentParts): Promise<void> {
  clearInterval(opened.timer)
  opened.selfUpdate?.close()
  opened.deferred?.close()
  await opened.services?.close()
  const server = opened.server
  if (server?.listening) await new Promise<void>((r) => server.close(() => r()))
  await opened.conn?.close()
  await opened.host?.close()
  opened.db?.close()
}

/**
 * Links from parts built early to parts built later (each set once, when the
 * later part exists): the outbox, transport and state reports need the
 * connection; the state report needs the runtime services and the API port.
 */
interface LateLinks {
  conn?: Connection
  services?: RuntimeServices
  apiPort: number
}

interface AgentBase {
  config: Readonly<AgentConfig>
  log: Logger
  now: () => number
  /** CA and client certificate contents [EF-10]. */
  tls?: AgentTls
}

/** The outbox (telemetry, samples and events queued in the database) and its writers. */
function createOutbox(b: AgentBase, db: AgentDb, links: LateLinks) {
  const { config, log, now } = b
  const outbox = new OutboxSender(
    db,
    () => links.conn?.client,
    (err) => log.warn({ code: storageCode(err), err: err.message }, 'outbox storage fault; row kept for a later round'),
  )
  // Drops since start by reason [EF-2.6.3]: row-bound evictions live in the db's counters; records lost to the
  // size cap (queued rows dropped to make room, and records refused when no room could be made) count as diskFull.
  const evictedAtStart = db.counter('outbox_evicted')
  let refused = 0
  const enqueue = (topic: string, payload: Buffer, kind: string): boolean => {
    try {
      db.withRoom(() => db.enqueue(topic, payload, kind, now(), config.outboxMaxRows))
      return true
    } catch (err) {
      // Size cap or disk full and nothing left to evict [EF-7.3]: this record is dropped, inference goes on.
      refused++
      log.warn(
        { code: storageCode(err) ?? 'EF_ERR_STORAGE_FULL', kind, err: (err as Error).message },
        'outbox write failed; record dropped',
      )
      // An event still goes out while connected (without the queue's durability): the hub must hear
      // of a full disk, and reconciliation repairs it if this copy is lost [EF-2.1.4, EF-7.3.1].
      const c = links.conn?.client
      if (kind === 'event' && c?.connected) c.publish(topic, payload, { qos: 1 }, () => undefined)
      return false
    } finally {
      outbox.kick()
    }
  }
  const outcomes: KnownOutcome[] = []
  const report = (ev: EventReport) => {
    const full = eventCodec.check({ v: PROTOCOL_VERSION, deviceId: config.deviceId, ts: now(), ...ev })
    log.info({ kind: ev.kind, model: ev.model, version: ev.version, code: ev.code }, ev.message ?? 'event')
    enqueue(topics.events(config.deviceId), eventCodec.encode(full), 'event')
    if (ev.deploymentId && FINAL_KINDS.has(ev.kind)) rememberOutcome(outcomes, ev)
  }
  const dropsBeforeCapture = () => ({
    evicted: db.counter('outbox_evicted') - evictedAtStart,
    diskFull: db.spaceDrops + refused,
  })
  return { outbox, enqueue, report, dropsBeforeCapture, outcomes }
}

const FINAL_KINDS: ReadonlySet<string> = new Set(['activated', 'rejected', 'health_failed', 'failed', 'rolled_back'])
/** Outcomes the state carries [EF-2.1.4]. */
const MAX_OUTCOMES = 32

/** Keeps the latest final outcome per deployment, newest last, at most MAX_OUTCOMES. */
function rememberOutcome(outcomes: KnownOutcome[], ev: EventReport): void {
  const { deploymentId } = ev
  if (deploymentId === undefined) return // only deploys' outcomes are carried
  const i = outcomes.findIndex((o) => o.deploymentId === deploymentId)
  if (i >= 0) outcomes.splice(i, 1)
  outcomes.push({
    deploymentId,
    kind: ev.kind as KnownOutcome['kind'],
    ...(ev.code ? { code: ev.code } : {}),
  })
  if (outcomes.length > MAX_OUTCOMES) outcomes.shift()
}

/** The updater's MQTT side: artifact subscriptions, fetch requests [EF-2.7], chunk and reconnect fan-out. */
function createTransport(config: Readonly<AgentConfig>, links: LateLinks) {
  const chunkListeners = new Set<(d: string, i: number, p: Buffer, broadcast: boolean) => void>()
  const reconnectListeners = new Set<() => void>()
  const sendFetch = (
    digest: string,
    op: FetchOp,
    extra: { chunks?: number[]; last?: number; fresh?: boolean } = {},
  ) => {
    const client = links.conn?.client
    if (!client) return
    // Large missing sets are split over several requests [EF-2.7].
    const lists =
      extra.chunks && extra.chunks.length > MAX_FETCH_CHUNKS
        ? chunkList(extra.chunks, MAX_FETCH_CHUNKS)
        : [extra.chunks]
    for (const chunks of lists) {
      const req: FetchRequest = {
        v: PROTOCOL_VERSION,
        deviceId: config.deviceId,
        artifact: digest,
        op,
        ...(chunks ? { chunks } : {}),
        ...(extra.last !== undefined ? { last: extra.last } : {}),
        ...(extra.fresh ? { fresh: true } : {}),
      }
      client.publish(topics.fetch(config.deviceId), fetchCodec.encode(req), { qos: op === 'ack' ? 0 : 1 })
    }
  }
  const transport: ChunkTransport = {
    subscribeArtifact: async (digest) => {
      const c = links.conn?.client
      // Not connected: the download is deferred and resumes after the reconnect [EF-2.4.1].
      if (!c?.connected) throw new EdgeFleetError('EF_ERR_CONNECTION_LOST', 'not connected to the broker')
      // QoS 0: the broker keeps no per-receiver state for a broadcast; the hub paces on acks and
      // repairs what is lost [EF-2.7].
      await c.subscribeAsync(topics.artifact(digest), { qos: 0 })
    },
    unsubscribeArtifact: async (digest) => {
      await links.conn?.client?.unsubscribeAsync(topics.artifact(digest))
    },
    requestChunks: (digest, indexes) => sendFetch(digest, 'repair', { chunks: indexes }),
    join: (digest, missing, fresh) => sendFetch(digest, 'join', { chunks: missing, fresh }),
    ack: (digest, last) => sendFetch(digest, 'ack', { last }),
    done: (digest) => sendFetch(digest, 'done'),
    onChunk: (fn) => {
      chunkListeners.add(fn)
      return () => chunkListeners.delete(fn)
    },
    onReconnect: (fn) => {
      reconnectListeners.add(fn)
      return () => reconnectListeners.delete(fn)
    },
  }
  return { transport, chunkListeners, reconnectListeners }
}

/** The retained state report [EF-2.1]. */
function stateReporter(
  config: Readonly<AgentConfig>,
  host: ModelHost,
  now: () => number,
  links: LateLinks,
  trust: HubTrust,
  outcomes: readonly KnownOutcome[],
) {
  return (): DeviceState => ({
    v: PROTOCOL_VERSION,
    deviceId: config.deviceId,
    online: true,
    ts: now(),
    profile: config.profile,
    agentVersion: runningAgentVersion(AGENT_VERSION),
    agentChunks: true, // send agent releases with their chunk list: they come by broadcast [EF-11.4]
    models: host.list().map((m) => ({
      name: m.name,
      version: m.version,
      precision: m.manifest.precision,
      artifact: m.manifest.artifact.digest,
      slot: m.slot,
      provider: m.session.provider,
    })),
    freeStorageBytes: freeStorageBytes(config.dataDir),
    ...(links.services ? links.services.conditions.current() : { network: config.network }),
    apiPort: links.apiPort,
    hubKey: trust.current,
    ...(outcomes.length ? { outcomes: [...outcomes] } : {}),
  })
}

/** The local inference API; resolves with the bound port (EF_ERR_LISTEN_FAILED if it cannot bind). */
async function listenApi(server: Server, config: Readonly<AgentConfig>): Promise<number> {
  server.listen(config.apiPort, config.apiHost)
  try {
    await once(server, 'listening')
  } catch (err) {
    throw new EdgeFleetError(
      'EF_ERR_LISTEN_FAILED',
      `local API on ${config.apiHost}:${config.apiPort}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      { cause: err },
    )
  }
  return (server.address() as AddressInfo).port
}

export async function createAgent(config: Readonly<AgentConfig>, deps: AgentDeps = {}): Promise<Agent> {
  // A tiny JSON logger instead of pino: ~8 MiB less RSS on a device (docs/BENCHMARKS.md, Agent runtime).
  const log = deps.log ?? asPino(createLogger(config.logLevel, { svc: 'agent', device: config.deviceId }))
  const b: AgentBase = { config, log, now: deps.now ?? Date.now, tls: readTlsFiles(config) }
  const profile = readProfile(config.profilesDir, config.profile)
  if (!profile) log.warn({ profile: config.profile }, 'profile file not found; using 1 thread on cpu')
  privateDir(config.dataDir) // 0700: the secret-bearing database, models and key chain live here
  // The pinned key, moved along any rotation the hub announced earlier [EF-3.6].
  const trust = HubTrust.load(config.dataDir, config.hubKey)
  const parts: AgentParts = {}
  try {
    return await startParts(b, deps, trust, profile, parts)
  } catch (err) {
    // A later step failed (e.g. the API port is taken): close what the earlier ones opened, keep the first error.
    await closeParts(parts).catch((closeErr: unknown) =>
      log.error({ err: (closeErr as Error).message }, 'closing after a failed start failed'),
    )
    throw err
  }
}

/** The database, slots, chunk store and ONNX Runtime host, with inference counted for telemetry and /metrics. */
function openRuntime(b: AgentBase, profile: FirmwareProfile | undefined, parts: AgentParts) {
  const { config, now } = b
  const db = (parts.db = new AgentDb(join(config.dataDir, 'agent.db')))
  if (config.maxDbBytes > 0) db.setMaxBytes(config.maxDbBytes)
  const host = (parts.host = new ModelHost({
    threads: profile?.threads ?? 1,
    executionProviders: profile?.executionProviders ?? ['cpu'],
    backend: chooseBackend(profile?.arch, config.runtime),
  }))
  const agg = new Aggregator(config.deviceId, now)
  const counters = new InferenceCounters()
  host.onInfer((m, v, ms, ok, provider) => {
    agg.record(m, v, ms, ok, provider)
    counters.record(m, v, ms, ok)
  })
  const slots = new Slots(join(config.dataDir, 'models'))
  const chunks = new ChunkStore(join(config.dataDir, 'chunks'))
  return { db, host, agg, counters, slots, chunks }
}
type Runtime = ReturnType<typeof openRuntime>
type Outbox = ReturnType<typeof createOutbox>

/** The updater and the runtime services (shadow, capture, conditions), each restored from disk. */
async function restoreModels(
  base: AgentBase,
  deps: AgentDeps,
  trust: HubTrust,
  rt: Runtime,
  out: Outbox,
  transport: ChunkTransport,
  onChange: () => void,
  parts: AgentParts,
): Promise<{ updater: Updater; svc: RuntimeServices }> {
  const { config, now } = base
  const { slots, chunks, host } = rt
  const common = {
    slots,
    chunks,
    host,
    transport,
    trust,
    profile: config.profile,
    agentVersion: runningAgentVersion(AGENT_VERSION), // a self-updated agent checks requires.agent against its package's version [EF-11.6]
    fetchWindow: config.fetchWindow,
    downloadTimeoutMs: config.downloadTimeoutMs,
    report: out.report,
    onChange,
  }
  const updater = new Updater({
    ...common,
    http: { deviceId: config.deviceId, secret: config.secret, prefer: config.transfer === 'http', tls: base.tls },
    onStep: deps.onStep,
  })
  await updater.restore()
  const svc = (parts.services = createRuntimeServices({
    ...common,
    deviceId: config.deviceId,
    dataDir: config.dataDir,
    agg: rt.agg,
    conditions: {
      ...(config.network !== 'unknown' ? { network: config.network } : {}),
      ...(config.power !== undefined ? { power: config.power } : {}),
      ...(config.idle !== undefined ? { idle: config.idle } : {}),
    },
    now,
    enqueueSample: (payload) => out.enqueue(topics.samples(config.deviceId), payload, 'sample'),
    queuedSampleBytes: () => rt.db.queuedBytes('sample'),
    shadowWorkerUrl: deps.shadowWorkerUrl,
    random: deps.random,
  }))
  await svc.restore()
  return { updater, svc }
}

/** The local inference API with /v1/stats and /metrics; resolves with its port. */
async function startLocalApi(
  config: Readonly<AgentConfig>,
  rt: Runtime,
  stats: () => AgentStats,
  parts: AgentParts,
): Promise<number> {
  const metrics = () => {
    const st = stats()
    return rt.counters.render({
      active: rt.host.list(),
      queued: st.queued,
      drops: st.drops,
      captured: st.capture.captured,
      connected: st.connected,
    })
  }
  const server = createApiServer({
    host: rt.host,
    maxBodyBytes: config.maxBodyBytes,
    maxJsonBodyBytes: config.maxJsonBodyBytes,
    deviceId: config.deviceId,
    stats,
    metrics,
    listenHost: config.apiHost,
  })
  parts.server = server
  return listenApi(server, config)
}

/** The MQTT connection: commands to the handler, chunks to the updater; on (re)connect, state and the outbox. */
function connectToHub(
  base: AgentBase,
  cmdCtx: Parameters<typeof handleCmd>[0],
  out: Outbox,
  net: ReturnType<typeof createTransport>,
  publishState: () => void,
  parts: AgentParts,
): Connection {
  const { config, log } = base
  const conn = (parts.conn = new Connection({
    url: config.hubUrl,
    deviceId: config.deviceId,
    maxBackoffMs: config.reconnectMaxMs,
    secret: config.secret,
    tls: base.tls,
    log,
    onCmd: (p) =>
      void handleCmd(cmdCtx, p).catch((err: unknown) =>
        log.error({ err: (err as Error).message }, 'command handler failed'),
      ),
    onChunk: (d, i, p, broadcast) => {
      for (const fn of net.chunkListeners) fn(d, i, p, broadcast)
    },
    onConnect: () => {
      publishState()
      out.outbox.restart()
      for (const fn of net.reconnectListeners) fn()
    },
  }))
  conn.start()
  return conn
}

async function startParts(
  base: AgentBase,
  deps: AgentDeps,
  trust: HubTrust,
  profile: FirmwareProfile | undefined,
  parts: AgentParts,
): Promise<Agent> {
  const { config, log, now } = base
  const links: LateLinks = { apiPort: config.apiPort }
  const rt = openRuntime(base, profile, parts)
  const out = createOutbox(base, rt.db, links)
  reportProviderFallbacks(rt.host, out)
  const net = createTransport(config, links)
  const state = stateReporter(config, rt.host, now, links, trust, out.outcomes)
  const publishState = () => links.conn?.publishState(state())
  const { updater, svc } = await restoreModels(base, deps, trust, rt, out, net.transport, publishState, parts)
  links.services = svc
  const counters = agentCounters(rt, out, svc, links)
  if (deps.api !== false) links.apiPort = await startLocalApi(config, rt, counters.stats, parts)
  const selfUpdate = startSelfUpdate(base, deps, trust, rt.host, out, net, parts)
  const cmdCtx = {
    agentUpdate: selfUpdate.apply,
    deviceId: config.deviceId,
    trust,
    db: rt.db,
    updater,
    log,
    report: out.report,
    now,
    runtime: svc.handle,
    onTrustChanged: publishState, // the state names the trusted key [EF-3.6]
    deferred: (parts.deferred = new DeferredCmds({
      onReconnect: (fn) => {
        net.reconnectListeners.add(fn)
        return () => net.reconnectListeners.delete(fn)
      },
    })),
  }
  links.conn = connectToHub(base, cmdCtx, out, net, publishState, parts)
  const flushTelemetry = startTelemetryTimer(base, rt, out, counters.drops, parts)
  return {
    config,
    get apiPort() {
      return links.apiPort
    },
    infer: (model, inputs) => rt.host.infer(model, inputs),
    models: () =>
      rt.host.list().map((m) => ({ name: m.name, version: m.version, precision: m.manifest.precision, slot: m.slot })),
    flushTelemetry,
    stats: counters.stats,
    runtime: svc,
    async close() {
      clearInterval(parts.timer)
      flushTelemetry()
      await closeParts(parts)
    },
  }
}

/** A model served on a later provider than the profile's first says why, on each activation [EF-5.7]. */
function reportProviderFallbacks(host: ModelHost, out: Outbox): void {
  host.onFallback((m, provider, fallbacks) =>
    out.report({
      kind: 'provider_fallback',
      model: m.model,
      version: m.version,
      message: `serving on ${provider}: ${fallbacks.map((f) => f.reason).join('; ')}`.slice(0, 2048),
    }),
  )
}

/** Readers of the agent's counters: drops by reason [EF-2.6.3], and everything GET /v1/stats shows. */
function agentCounters(rt: Runtime, out: Outbox, svc: RuntimeServices, links: LateLinks) {
  const drops = () => ({ ...out.dropsBeforeCapture(), capped: svc.capture.stats.capped })
  const stats = (): AgentStats => ({
    batchesCut: rt.agg.batchesCut,
    drops: drops(),
    capture: { ...svc.capture.stats, policies: svc.capture.getPolicies().length },
    shadow: svc.runner
      .list()
      .map((c) => ({ model: c.manifest.model, candidate: c.manifest.version, fraction: c.fraction })),
    queued: rt.db.queuedByKind(),
    connected: links.conn?.connected ?? false,
  })
  return { drops, stats }
}

/** The agent's own updates [EF-11]: packages come over the models' chunk path, the new agent confirms once connected. */
function startSelfUpdate(
  base: AgentBase,
  deps: AgentDeps,
  trust: HubTrust,
  host: ModelHost,
  out: Outbox,
  net: ReturnType<typeof createTransport>,
  parts: AgentParts,
) {
  const { config, log, now } = base
  const selfUpdate = (parts.selfUpdate = createSelfUpdate({
    dataDir: config.dataDir,
    runningVersion: runningAgentVersion(AGENT_VERSION),
    trust,
    host,
    fetch: { deviceId: config.deviceId, secret: config.secret, timeoutMs: config.downloadTimeoutMs, tls: base.tls },
    // Agent packages take the models' chunk path [EF-11.4], the same transport and settings.
    chunks: {
      transport: net.transport,
      window: config.fetchWindow,
      timeoutMs: config.downloadTimeoutMs,
      http: { deviceId: config.deviceId, secret: config.secret, prefer: config.transfer === 'http', tls: base.tls },
    },
    report: out.report,
    log,
    now,
    onStep: deps.onStep,
    handOver: deps.handOver,
  }))
  net.reconnectListeners.add(selfUpdate.onConnect) // the new agent confirms once connected and healthy [EF-11.6]
  return selfUpdate
}

/**
 * Cuts and queues a telemetry batch every telemetryIntervalMs; returns the cut, which close() also runs.
 * An idle device still sends its stats every healthIntervalMs, so the hub sees its RSS and storage [EF-2.6.7].
 */
function startTelemetryTimer(
  base: AgentBase,
  rt: Runtime,
  out: Outbox,
  drops: () => AgentStats['drops'],
  parts: AgentParts,
): () => void {
  const { config, now } = base
  let lastBatchAt = now()
  const flushTelemetry = () => {
    const dropped = drops()
    const heartbeatDue = config.healthIntervalMs > 0 && now() - lastBatchAt >= config.healthIntervalMs
    const batch = rt.agg.cut(
      {
        device: deviceStats(config.dataDir, rt.db.outboxSize()),
        dropped: dropped.evicted + dropped.diskFull + dropped.capped,
        drops: dropped,
      },
      heartbeatDue,
    )
    if (!batch) return
    lastBatchAt = now()
    out.enqueue(topics.telemetry(config.deviceId), telemetryCodec.encode(batch), 'telemetry')
  }
  parts.timer = setInterval(flushTelemetry, config.telemetryIntervalMs)
  parts.timer.unref()
  return flushTelemetry
}
