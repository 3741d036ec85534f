// Topic names of the ef/v1 protocol (shared/PROTOCOL.md, EF-1). Every topic is
// built and parsed here so that no other module spells one by hand.

export const TOPIC_PREFIX = 'ef/v1'

export const DEVICE_TOPIC_KINDS = ['state', 'cmd', 'events', 'telemetry', 'samples', 'fetch'] as const
export type DeviceTopicKind = (typeof DEVICE_TOPIC_KINDS)[number]

/** Topics an agent publishes on (its own only) [EF-1.3]. */
export const AGENT_PUBLISH_KINDS: readonly DeviceTopicKind[] = ['state', 'events', 'telemetry', 'samples', 'fetch']

const ID_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/
const DIGEST_RE = /^[0-9a-f]{64}$/

/** Device ids and model names share one shape: safe in topics, file names and URLs [EF-1.2]. */
export function isValidId(id: string): boolean {
  return ID_RE.test(id)
}

export function isDigest(s: string): boolean {
  return DIGEST_RE.test(s)
}

// Builders refuse what parseTopic would refuse: an id such as "+", "#" or
// "a/b" would otherwise yield a wildcard filter or a topic outside the device's
// own namespace [EF-1.2, EF-1.3].
function checkId(id: string): string {
  if (typeof id !== 'string' || !isValidId(id))
    throw new TypeError(`invalid device id ${JSON.stringify(id)}: 1-64 characters of letters, digits, ".", "_" or "-"`)
  return id
}

function checkDigest(digest: string): string {
  if (typeof digest !== 'string' || !isDigest(digest))
    throw new TypeError(`invalid artifact digest ${JSON.stringify(digest)}: 64 lowercase hex characters`)
  return digest
}

export const topics = {
  device(id: string, kind: DeviceTopicKind): string {
    if (!(DEVICE_TOPIC_KINDS as readonly string[]).includes(kind))
      throw new TypeError(`unknown device topic kind ${JSON.stringify(kind)}`)
    return `${TOPIC_PREFIX}/dev/${checkId(id)}/${kind}`
  },
  state: (id: string) => topics.device(id, 'state'),
  cmd: (id: string) => topics.device(id, 'cmd'),
  events: (id: string) => topics.device(id, 'events'),
  telemetry: (id: string) => topics.device(id, 'telemetry'),
  samples: (id: string) => topics.device(id, 'samples'),
  fetch: (id: string) => topics.device(id, 'fetch'),
  /** Chunk n of an artifact [EF-1.4]. */
  chunk(artifactDigest: string, n: number): string {
    if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`chunk index must be a non-negative integer, got ${n}`)
    return `${TOPIC_PREFIX}/art/${checkDigest(artifactDigest)}/${n}`
  },
  /** All chunks of one artifact (subscription filter). */
  artifact: (artifactDigest: string) => `${TOPIC_PREFIX}/art/${checkDigest(artifactDigest)}/+`,
  /** Chunk n of an artifact sent to one device only: repairs [EF-1.6]. */
  repair(id: string, artifactDigest: string, n: number): string {
    if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`chunk index must be a non-negative integer, got ${n}`)
    return `${TOPIC_PREFIX}/dev/${checkId(id)}/chunk/${checkDigest(artifactDigest)}/${n}`
  },
  /** Every repair chunk for one device (its subscription filter). */
  repairs: (id: string) => `${TOPIC_PREFIX}/dev/${checkId(id)}/chunk/#`,
  /** The live retraining feed of one model: records as the hub commits them [EF-9.7]. */
  feed: (model: string) => `${TOPIC_PREFIX}/feed/${checkId(model)}`,
  /** Every model's live feed (a consumer's subscription filter) [EF-9.7]. */
  feeds: () => `${TOPIC_PREFIX}/feed/+`,
  /** Filters the hub subscribes to: everything agents publish. */
  hubSubscriptions: (): string[] => AGENT_PUBLISH_KINDS.map((k) => `${TOPIC_PREFIX}/dev/+/${k}`),
}

export type ParsedTopic =
  | { kind: DeviceTopicKind; deviceId: string }
  | { kind: 'chunk'; digest: string; index: number }
  | { kind: 'repair'; deviceId: string; digest: string; index: number }

const INDEX_RE = /^(0|[1-9]\d{0,14})$/

/** Parses a concrete topic (no wildcards); returns null for anything outside ef/v1. */
export function parseTopic(topic: string): ParsedTopic | null {
  const parts = topic.split('/')
  if (parts[0] !== 'ef' || parts[1] !== 'v1') return null
  if (parts.length === 5 && parts[2] === 'dev') {
    const [, , , deviceId, kind] = parts
    if (!isValidId(deviceId) || !(DEVICE_TOPIC_KINDS as readonly string[]).includes(kind)) return null
    return { kind: kind as DeviceTopicKind, deviceId }
  }
  if (parts.length === 7 && parts[2] === 'dev' && parts[4] === 'chunk') {
    if (!isValidId(parts[3]) || !isDigest(parts[5]) || !INDEX_RE.test(parts[6])) return null
    return { kind: 'repair', deviceId: parts[3], digest: parts[5], index: Number(parts[6]) }
  }
  if (parts.length === 5 && parts[2] === 'art') {
    const index = Number(parts[4])
    if (!isDigest(parts[3]) || !Number.isInteger(index) || index < 0 || String(index) !== parts[4]) return null
    return { kind: 'chunk', digest: parts[3], index }
  }
  return null
}
