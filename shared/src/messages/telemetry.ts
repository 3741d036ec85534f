// Aggregated metrics (ef/v1/dev/{id}/telemetry) [EF-2.6]. Each batch has an id
// unique per device; the hub stores a batch id once, so redelivery is harmless.
import { Type, type Static } from '@sinclair/typebox'
import { codec } from '../schema.js'
import { Id, ProtocolVersion, Timestamp, Version } from './common.js'

/** Upper bounds (ms) of the latency histogram buckets; the last bucket is open-ended [EF-2.6.2]. */
export const LATENCY_BUCKETS_MS = [0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000] as const

/** Upper bounds of the output-confidence histogram: ten bins of 0.1 over [0, 1] [EF-2.6.4]. */
export const CONFIDENCE_BUCKETS = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1] as const

/**
 * Upper bounds of the fixed-bin quantile sketch of input values, symmetric and
 * log-spaced so that features of any scale spread over several bins; one
 * open-ended overflow bin follows. Fixed bins merge across devices by adding
 * counts, and PSI is computed on them directly [EF-2.6.5].
 */
export const FEATURE_BUCKETS = [
  -1000, -100, -10, -3, -1, -0.3, -0.1, -0.03, -0.01, 0, 0.01, 0.03, 0.1, 0.3, 1, 3, 10, 100, 1000,
] as const

/** Elements of one tensor a device (or the hub, for baselines) observes per request: an even stride beyond this [EF-2.6.5]. */
export const MAX_OBSERVED_ELEMENTS = 4096

/** Sketch bin of a value: bin i holds FEATURE_BUCKETS[i-1] < x ≤ FEATURE_BUCKETS[i]; the last bin is the overflow. */
export function featureBin(x: number): number {
  let lo = 0
  let hi: number = FEATURE_BUCKETS.length
  while (lo < hi) {
    const mid = (lo + hi) >> 1
    if (x <= FEATURE_BUCKETS[mid]) hi = mid
    else lo = mid + 1
  }
  return lo
}

/** Empty latency histogram: one count per LATENCY_BUCKETS_MS bucket plus the open-ended one [EF-2.6.2]. */
export const emptyLatencyCounts = (): number[] => new Array<number>(LATENCY_BUCKETS_MS.length + 1).fill(0)

/** Empty confidence histogram: one count per CONFIDENCE_BUCKETS bin [EF-2.6.4]. */
export const emptyConfidenceCounts = (): number[] => new Array<number>(CONFIDENCE_BUCKETS.length).fill(0)

/** Empty feature sketch: one count per FEATURE_BUCKETS bin plus the overflow bin [EF-2.6.5]. */
export const emptyFeatureSketch = (): number[] => new Array<number>(FEATURE_BUCKETS.length + 1).fill(0)

/**
 * A count: a non-negative safe integer [EF-2.6.9]. The hub adds counts (and
 * latency sums) over devices and windows; at 1e308 two of them made Infinity,
 * and a summary whose numbers the API cannot serialize (a 500).
 */
const Count = Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER })

const Counts = (n: number) => Type.Array(Count, { minItems: n, maxItems: n })

/** Statistics of the values of one input tensor over a window [EF-2.6.5]. */
export const FeatureStats = Type.Object(
  {
    input: Type.String({ minLength: 1, maxLength: 256 }),
    /** Values observed (a bounded stride sample of each request's elements). */
    count: Count,
    mean: Type.Number(),
    variance: Type.Number({ minimum: 0 }),
    min: Type.Number(),
    max: Type.Number(),
    /** counts per FEATURE_BUCKETS bin, plus one overflow bin. */
    sketch: Counts(FEATURE_BUCKETS.length + 1),
  },
  { additionalProperties: false },
)
export type FeatureStats = Static<typeof FeatureStats>

export const ModelMetrics = Type.Object(
  {
    model: Id,
    version: Version,
    requests: Count,
    errors: Count,
    /** The execution provider the requests ran on (`cpu`, `cuda`, `tensorrt`, `wasm`, …) [EF-5.7]. */
    provider: Type.Optional(Type.String({ minLength: 1, maxLength: 32 })),
    /** counts per LATENCY_BUCKETS_MS bucket, plus one overflow bucket. */
    latency: Counts(LATENCY_BUCKETS_MS.length + 1),
    latencySumMs: Type.Number({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }),
    /** counts per CONFIDENCE_BUCKETS bin, when the manifest says how to read confidence [EF-2.6.4]. */
    confidence: Type.Optional(Counts(CONFIDENCE_BUCKETS.length)),
    features: Type.Optional(Type.Array(FeatureStats, { maxItems: 16 })),
  },
  { additionalProperties: false },
)
export type ModelMetrics = Static<typeof ModelMetrics>

/** A shadow (challenger) version compared with the live one on sampled requests [EF-2.6.6]. */
export const ShadowMetrics = Type.Object(
  {
    model: Id,
    /** The live (champion) version the candidate was compared with. */
    version: Version,
    candidate: Version,
    /** Comparisons made. */
    runs: Count,
    /** Sampled requests not shadowed because a shadow run was still busy (never queued on the hot path). */
    skipped: Count,
    errors: Count,
    /** Runs whose top-1 class equals the live one (outputs with a score semantics; else the first output's argmax). */
    top1Agree: Count,
    /** Largest |live − candidate| seen over all output elements. */
    maxAbsDiff: Type.Number({ minimum: 0 }),
    /** Sum of per-run cosine similarities (mean = cosineSum / runs). */
    cosineSum: Type.Number({ minimum: -Number.MAX_SAFE_INTEGER, maximum: Number.MAX_SAFE_INTEGER }),
    latency: Counts(LATENCY_BUCKETS_MS.length + 1),
    latencySumMs: Type.Number({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }),
  },
  { additionalProperties: false },
)
export type ShadowMetrics = Static<typeof ShadowMetrics>

/** Why records were dropped on the device, counted since the agent started [EF-2.6.3]. */
export const DropCounts = Type.Object(
  {
    /** Oldest outbox rows evicted because the queue hit its row bound. */
    evicted: Count,
    /** Records not queued because the agent database hit its size cap or the disk is full. */
    diskFull: Count,
    /** Captures skipped by the per-hour or on-disk byte caps [EF-2.9.2]. */
    capped: Count,
  },
  { additionalProperties: false },
)
export type DropCounts = Static<typeof DropCounts>

export const DeviceStats = Type.Object(
  {
    rssBytes: Type.Optional(Count),
    cpuLoad: Type.Optional(Type.Number({ minimum: 0 })),
    freeStorageBytes: Type.Optional(Count),
    /** Highest thermal zone reading, where /sys shows one. */
    temperatureC: Type.Optional(Type.Number()),
    /** Outbox rows waiting for a PUBACK when the batch was cut. */
    queued: Type.Optional(Count),
  },
  { additionalProperties: false },
)
export type DeviceStats = Static<typeof DeviceStats>

export const TelemetryBatch = Type.Object(
  {
    v: ProtocolVersion,
    deviceId: Id,
    batchId: Type.String({ minLength: 8, maxLength: 64 }),
    from: Timestamp,
    to: Timestamp,
    models: Type.Array(ModelMetrics, { maxItems: 64 }),
    shadow: Type.Optional(Type.Array(ShadowMetrics, { maxItems: 64 })),
    device: Type.Optional(DeviceStats),
    /** Records (telemetry, samples, events) the agent had to drop since it started [EF-2.6.3]. */
    dropped: Type.Optional(Count),
    drops: Type.Optional(DropCounts),
  },
  { additionalProperties: false },
)
export type TelemetryBatch = Static<typeof TelemetryBatch>

export const telemetryCodec = codec(TelemetryBatch, 256 * 1024)
