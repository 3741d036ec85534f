// The hub's NATS JetStream connection for `--stream nats://…` [EF-9.13]: one
// nats.js client to the cluster's nodes, and the two streams it owns, created
// (or updated) at start: EF_TELEMETRY, the accepted telemetry and samples on
// their way to the database, and EF_FEED, the retraining feed for training
// pipelines. Both use file storage, replicated on min(3, cluster size) nodes,
// so a node may die without losing an acknowledged message.
import {
  connect,
  DiscardPolicy,
  RetentionPolicy,
  StorageType,
  nanos,
  type JetStreamClient,
  type JetStreamManager,
  type NatsConnection,
  type StreamConfig,
} from 'nats'
import type { Logger } from 'pino'
import { EdgeFleetError } from '@edgefleet/shared'

/** Stream and consumer names, and subject prefixes (fixed: training pipelines name them) [EF-9.13]. */
export const STREAM_NAMES = {
  telemetry: 'EF_TELEMETRY',
  feed: 'EF_FEED',
  /** The durable pull consumer every hub replica on one store shares. */
  ingestConsumer: 'ef-ingest',
} as const

export const SUBJECTS = {
  telemetry: 'ef.ingest.telemetry',
  samples: 'ef.ingest.samples',
  feed: 'ef.feed',
} as const

export interface StreamOptions {
  /** Window in which JetStream drops a second message with the same id (ms) [EF-9.13]. */
  duplicateWindowMs: number
  /** Oldest telemetry kept in EF_TELEMETRY once applied (ms; the database holds it after that). */
  telemetryMaxAgeMs: number
  /** Oldest record kept in EF_FEED (ms); a pipeline resumes from any cursor inside it. */
  feedMaxAgeMs: number
  /** Replicas per stream; 0: min(3, the cluster's size). */
  replicas: number
  /** How long a delivered message may wait for its commit before JetStream delivers it again (ms). */
  ackWaitMs: number
  /** How long a publish waits for the stream's acknowledgement (ms) before the device is refused. */
  publishTimeoutMs: number
}

const defaultStreamOptions: StreamOptions = {
  duplicateWindowMs: 2 * 60_000, // 2 minutes: longer than an agent's resend after a lost PUBACK
  telemetryMaxAgeMs: 24 * 3_600_000, // 1 day
  feedMaxAgeMs: 30 * 24 * 3_600_000, // 30 days, the NDJSON feed's default retention
  replicas: 0,
  publishTimeoutMs: 5_000,
  ackWaitMs: 30_000,
}

/** Wait for JetStream management requests (create, update, info), ms. */
const JS_API_TIMEOUT_MS = 20_000

export interface HubStream {
  readonly nc: NatsConnection
  readonly js: JetStreamClient
  readonly jsm: JetStreamManager
  readonly options: StreamOptions
  /** Replicas the streams were created with. */
  readonly replicas: number
  close(): Promise<void>
}

/** Servers and credentials from `nats://[user:pass@]host:port[,host:port…]` (credentials of the first URL). */
export function parseStreamUrl(url: string): { servers: string[]; user?: string; pass?: string } {
  const parts = url
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
  if (parts.length === 0) throw new EdgeFleetError('EF_ERR_CONFIG_INVALID', '--stream needs nats://host:port[,…]')
  let user: string | undefined
  let pass: string | undefined
  const servers = parts.map((p) => {
    const u = new URL(p.includes('://') ? p : `nats://${p}`)
    if (u.protocol !== 'nats:' && u.protocol !== 'tls:')
      throw new EdgeFleetError('EF_ERR_CONFIG_INVALID', `--stream: ${u.protocol} is not nats:// or tls://`)
    if (u.username && user === undefined) {
      user = decodeURIComponent(u.username)
      pass = decodeURIComponent(u.password)
    }
    return `${u.protocol}//${u.host}`
  })
  return { servers, ...(user !== undefined ? { user, pass } : {}) }
}

/** The cluster's size as the server tells clients (its other nodes' client URLs), at least the URLs given. */
function clusterSize(nc: NatsConnection, given: number): number {
  const urls = nc.info?.connect_urls ?? []
  return Math.max(given, urls.length, 1)
}

function streamConfigs(settings: StreamOptions, replicas: number): Partial<StreamConfig>[] {
  const common = {
    storage: StorageType.File,
    num_replicas: replicas,
    retention: RetentionPolicy.Limits,
    discard: DiscardPolicy.Old,
    duplicate_window: nanos(settings.duplicateWindowMs),
  }
  return [
    {
      ...common,
      name: STREAM_NAMES.telemetry,
      subjects: [`${SUBJECTS.telemetry}.>`, `${SUBJECTS.samples}.>`],
      max_age: nanos(settings.telemetryMaxAgeMs),
    },
    { ...common, name: STREAM_NAMES.feed, subjects: [`${SUBJECTS.feed}.>`], max_age: nanos(settings.feedMaxAgeMs) },
  ]
}

/** Creates a stream, or brings an existing one to this configuration (replicas included). */
async function ensureStream(jsm: JetStreamManager, config: Partial<StreamConfig>): Promise<void> {
  const name = config.name ?? ''
  const existing = await jsm.streams.info(name).catch(() => undefined)
  if (!existing) await jsm.streams.add(config)
  else await jsm.streams.update(name, { ...existing.config, ...config })
}

/** Connects (reconnecting for ever after) and ensures both streams exist. */
export async function openStream(url: string, log: Logger, options: Partial<StreamOptions> = {}): Promise<HubStream> {
  const settings = Object.freeze({ ...defaultStreamOptions, ...options })
  const { servers, user, pass } = parseStreamUrl(url)
  const nc = await connect({
    servers,
    ...(user !== undefined ? { user, pass } : {}),
    name: 'edgefleet-hub',
    maxReconnectAttempts: -1,
    reconnectTimeWait: 500,
  })
  void (async () => {
    for await (const s of nc.status())
      log.info(
        { stream: s.type, data: typeof s.data === 'string' ? s.data : JSON.stringify(s.data) },
        'nats connection status',
      )
  })()
  try {
    // Stream and consumer management waits longer than a publish: a loaded cluster answers slowly after start.
    const jsm = await nc.jetstreamManager({ timeout: JS_API_TIMEOUT_MS })
    const replicas = settings.replicas > 0 ? settings.replicas : Math.min(3, clusterSize(nc, servers.length))
    for (const config of streamConfigs(settings, replicas)) await ensureStream(jsm, config)
    log.info({ servers, replicas }, 'JetStream streams ready')
    return {
      nc,
      js: nc.jetstream({ timeout: settings.publishTimeoutMs }),
      jsm,
      options: settings,
      replicas,
      close: () => nc.drain(),
    }
  } catch (err) {
    await nc.close()
    throw err
  }
}

/** A subject token for any string: [A-Za-z0-9_-] kept, every other UTF-8 byte as `~HH` (no `.`, `*`, `>`, spaces). */
export function subjectToken(s: string): string {
  let out = ''
  for (const byte of Buffer.from(s, 'utf8')) {
    const c = String.fromCharCode(byte)
    out += /[A-Za-z0-9_-]/.test(c) ? c : `~${byte.toString(16).padStart(2, '0')}`
  }
  return out || '~'
}
