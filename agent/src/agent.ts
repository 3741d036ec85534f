// Composition root of the agent: store, slots, runtime, updater, MQTT, local
// API and telemetry. `createAgent` is also the in-process API for apps that
// embed the agent as a library.
import { join } from 'node:path'
import { mkdirSync, readFileSync, existsSync } from 'node:fs'
import { once } from 'node:events'
import type { Server } from 'node:http'
import type { Logger } from 'pino'
import {
  MAX_FETCH_CHUNKS,
  eventCodec,
  fetchCodec,
  profileCodec,
  publicKeyFromText,
  telemetryCodec,
  topics,
  type DeviceState,
  type FetchOp,
  type FetchRequest,
  type FirmwareProfile,
} from '@edgefleet/shared'
import type { AgentConfig } from './config.js'
import { AgentDb } from './store/db.js'
import { Slots } from './updater/slots.js'
import { ChunkStore } from './updater/chunks.js'
import { Updater, type EventReport } from './updater/updater.js'
import type { ChunkTransport } from './updater/download.js'
import { ModelHost, type InferResult } from './runtime/host.js'
import type { Tensor } from './runtime/ort.js'
import { Connection } from './mqtt/connection.js'
import { OutboxSender } from './mqtt/outbox.js'
import { handleCmd } from './mqtt/handlers/cmd.js'
import { createApiServer } from './api/server.js'
import { InferenceCounters } from './telemetry/metrics.js'
import { Aggregator } from './telemetry/aggregator.js'
import { asPino, createLogger } from './telemetry/logger.js'
import { deviceStats, freeStorageBytes } from './telemetry/device.js'
import { createRuntimeServices, type RuntimeServices } from './runtime/services.js'

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
}

function readProfile(dir: string | undefined, id: string): FirmwareProfile | undefined {
  const candidates = [dir, join(import.meta.dirname ?? '.', '..', '..', 'firmware-profiles')].filter(
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

export async function createAgent(config: Readonly<AgentConfig>, deps: AgentDeps = {}): Promise<Agent> {
  // A tiny JSON logger instead of pino: ~8 MiB less RSS on a device (docs/BENCHMARKS.md, Agent runtime).
  const log = deps.log ?? asPino(createLogger(config.logLevel, { svc: 'agent', device: config.deviceId }))
  const now = deps.now ?? Date.now
  mkdirSync(config.dataDir, { recursive: true })
  const hubKey = publicKeyFromText(config.hubKey)
  const profile = readProfile(config.profilesDir, config.profile)
  if (!profile) log.warn({ profile: config.profile }, 'profile file not found; using 1 thread on cpu')
  const db = new AgentDb(join(config.dataDir, 'agent.db'))
  if (config.maxDbBytes > 0) db.setMaxBytes(config.maxDbBytes)
  const slots = new Slots(join(config.dataDir, 'models'))
  const chunks = new ChunkStore(join(config.dataDir, 'chunks'))
  const host = new ModelHost({
    threads: profile?.threads ?? 1,
    executionProviders: profile?.executionProviders ?? ['cpu'],
  })
  const agg = new Aggregator(config.deviceId, now)
  const counters = new InferenceCounters()
  host.onInfer((m, v, ms, ok) => {
    agg.record(m, v, ms, ok)
    counters.record(m, v, ms, ok)
  })

  let conn: Connection | undefined
  const outbox = new OutboxSender(db, () => conn?.client)
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
        { code: 'EF_ERR_STORAGE_FULL', kind, err: (err as Error).message },
        'outbox write failed; record dropped',
      )
      return false
    } finally {
      outbox.kick()
    }
  }
  const report = (ev: EventReport) => {
    const full = eventCodec.check({ v: 1, deviceId: config.deviceId, ts: now(), ...ev })
    log.info({ kind: ev.kind, model: ev.model, version: ev.version, code: ev.code }, ev.message ?? 'event')
    enqueue(topics.events(config.deviceId), eventCodec.encode(full), 'event')
  }

  const chunkListeners = new Set<(d: string, i: number, p: Buffer, broadcast: boolean) => void>()
  const reconnectListeners = new Set<() => void>()
  const sendFetch = (digest: string, op: FetchOp, extra: { chunks?: number[]; last?: number } = {}) => {
    const c = conn?.client
    if (!c) return
    // Large missing sets are split over several requests [EF-2.7].
    const lists =
      extra.chunks && extra.chunks.length > MAX_FETCH_CHUNKS
        ? chunkList(extra.chunks, MAX_FETCH_CHUNKS)
        : [extra.chunks]
    for (const chunks of lists) {
      const req: FetchRequest = {
        v: 1,
        deviceId: config.deviceId,
        artifact: digest,
        op,
        ...(chunks ? { chunks } : {}),
        ...(extra.last !== undefined ? { last: extra.last } : {}),
      }
      c.publish(topics.fetch(config.deviceId), fetchCodec.encode(req), { qos: op === 'ack' ? 0 : 1 })
    }
  }
  const transport: ChunkTransport = {
    subscribeArtifact: async (digest) => {
      // QoS 0: the broker keeps no per-receiver state for a broadcast; the hub paces on acks and
      // repairs what is lost [EF-2.7].
      await conn?.client?.subscribeAsync(topics.artifact(digest), { qos: 0 })
    },
    unsubscribeArtifact: async (digest) => {
      await conn?.client?.unsubscribeAsync(topics.artifact(digest))
    },
    requestChunks: (digest, indexes) => sendFetch(digest, 'repair', { chunks: indexes }),
    join: (digest, missing) => sendFetch(digest, 'join', { chunks: missing }),
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

  const freeStorage = (): number | undefined => freeStorageBytes(config.dataDir)
  let apiPort = config.apiPort
  // Assigned below, before anything can publish a state.
  let services: RuntimeServices | undefined
  const state = (): DeviceState => ({
    v: 1,
    deviceId: config.deviceId,
    online: true,
    ts: now(),
    profile: config.profile,
    agentVersion: AGENT_VERSION,
    models: host
      .list()
      .map((m) => ({
        name: m.name,
        version: m.version,
        precision: m.manifest.precision,
        artifact: m.manifest.artifact.digest,
        slot: m.slot,
      })),
    freeStorageBytes: freeStorage(),
    ...(services ? services.conditions.current() : { network: config.network }),
    apiPort,
  })

  const updater = new Updater({
    slots,
    chunks,
    host,
    transport,
    hubKey,
    profile: config.profile,
    fetchWindow: config.fetchWindow,
    downloadTimeoutMs: config.downloadTimeoutMs,
    report,
    onChange: () => conn?.publishState(state()),
    http: { deviceId: config.deviceId, secret: config.secret, prefer: config.transfer === 'http' },
    onStep: deps.onStep,
  })
  await updater.restore()

  services = createRuntimeServices({
    deviceId: config.deviceId,
    dataDir: config.dataDir,
    host,
    agg,
    slots,
    chunks,
    transport,
    hubKey,
    profile: config.profile,
    fetchWindow: config.fetchWindow,
    downloadTimeoutMs: config.downloadTimeoutMs,
    conditions: {
      ...(config.network !== 'unknown' ? { network: config.network } : {}),
      ...(config.power !== undefined ? { power: config.power } : {}),
      ...(config.idle !== undefined ? { idle: config.idle } : {}),
    },
    now,
    report,
    enqueueSample: (payload) => enqueue(topics.samples(config.deviceId), payload, 'sample'),
    queuedSampleBytes: () => db.queuedBytes('sample'),
    onChange: () => conn?.publishState(state()),
    shadowWorkerUrl: deps.shadowWorkerUrl,
    random: deps.random,
  })
  const svc = services
  await svc.restore()
  const drops = () => ({
    evicted: db.counter('outbox_evicted') - evictedAtStart,
    diskFull: db.spaceDrops + refused,
    capped: svc.capture.stats.capped,
  })
  const stats = (): AgentStats => ({
    batchesCut: agg.batchesCut,
    drops: drops(),
    capture: { ...svc.capture.stats, policies: svc.capture.getPolicies().length },
    shadow: svc.runner
      .list()
      .map((c) => ({ model: c.manifest.model, candidate: c.manifest.version, fraction: c.fraction })),
    queued: db.queuedByKind(),
    connected: conn?.connected ?? false,
  })

  let server: Server | undefined
  if (deps.api !== false) {
    const metrics = () => {
      const st = stats()
      return counters.render({
        active: host.list(),
        queued: st.queued,
        drops: st.drops,
        captured: st.capture.captured,
        connected: st.connected,
      })
    }
    server = createApiServer({ host, maxBodyBytes: config.maxBodyBytes, deviceId: config.deviceId, stats, metrics })
    server.listen(config.apiPort, config.apiHost)
    await once(server, 'listening')
    const a = server.address()
    apiPort = typeof a === 'object' && a ? a.port : config.apiPort
  }

  const cmdCtx = { deviceId: config.deviceId, hubKey, db, updater, log, report, now, runtime: svc.handle }
  conn = new Connection({
    url: config.hubUrl,
    deviceId: config.deviceId,
    maxBackoffMs: config.reconnectMaxMs,
    secret: config.secret,
    log,
    onCmd: (p) =>
      void handleCmd(cmdCtx, p).catch((err: Error) => log.error({ err: err.message }, 'command handler failed')),
    onChunk: (d, i, p, broadcast) => {
      for (const fn of chunkListeners) fn(d, i, p, broadcast)
    },
    onConnect: () => {
      conn?.publishState(state())
      outbox.restart()
      for (const fn of reconnectListeners) fn()
    },
  })
  conn.start()

  const flushTelemetry = () => {
    const d = drops()
    const batch = agg.cut({
      device: deviceStats(config.dataDir, db.outboxSize()),
      dropped: d.evicted + d.diskFull + d.capped,
      drops: d,
    })
    if (batch) enqueue(topics.telemetry(config.deviceId), telemetryCodec.encode(batch), 'telemetry')
  }
  const timer = setInterval(flushTelemetry, config.telemetryIntervalMs)
  timer.unref()

  return {
    config,
    get apiPort() {
      return apiPort
    },
    infer: (model, inputs) => host.infer(model, inputs),
    models: () =>
      host.list().map((m) => ({ name: m.name, version: m.version, precision: m.manifest.precision, slot: m.slot })),
    flushTelemetry,
    stats,
    runtime: svc,
    async close() {
      clearInterval(timer)
      flushTelemetry()
      await svc.close()
      if (server) await new Promise<void>((r) => server!.close(() => r()))
      await conn?.close()
      await host.close()
      db.close()
    },
  }
}
