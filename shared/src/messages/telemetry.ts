// Aggregated metrics (ef/v1/dev/{id}/telemetry) [EF-2.6]. Each batch has an id
// unique per device; the hub stores a batch id once, so redelivery is harmless.
import { Type, type Static } from '@sinclair/typebox'
import { codec } from '../schema.js'
import { Id, Timestamp, Version } from './common.js'

/** Upper bounds (ms) of the latency histogram buckets; the last bucket is open-ended [EF-2.6.2]. */
export const LATENCY_BUCKETS_MS = [
  0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000,
] as const

export const ModelMetrics = Type.Object(
  {
    model: Id,
    version: Version,
    requests: Type.Integer({ minimum: 0 }),
    errors: Type.Integer({ minimum: 0 }),
    /** counts per LATENCY_BUCKETS_MS bucket, plus one overflow bucket. */
    latency: Type.Array(Type.Integer({ minimum: 0 }), { minItems: LATENCY_BUCKETS_MS.length + 1, maxItems: LATENCY_BUCKETS_MS.length + 1 }),
    latencySumMs: Type.Number({ minimum: 0 }),
  },
  { additionalProperties: false },
)
export type ModelMetrics = Static<typeof ModelMetrics>

export const TelemetryBatch = Type.Object(
  {
    v: Type.Literal(1),
    deviceId: Id,
    batchId: Type.String({ minLength: 8, maxLength: 64 }),
    from: Timestamp,
    to: Timestamp,
    models: Type.Array(ModelMetrics, { maxItems: 64 }),
    device: Type.Optional(
      Type.Object(
        {
          rssBytes: Type.Optional(Type.Integer({ minimum: 0 })),
          cpuLoad: Type.Optional(Type.Number({ minimum: 0 })),
          freeStorageBytes: Type.Optional(Type.Integer({ minimum: 0 })),
        },
        { additionalProperties: false },
      ),
    ),
    /** Telemetry batches the agent had to drop (queue full, disk full) since it started. */
    dropped: Type.Optional(Type.Integer({ minimum: 0 })),
  },
  { additionalProperties: false },
)
export type TelemetryBatch = Static<typeof TelemetryBatch>

export const telemetryCodec = codec(TelemetryBatch, 256 * 1024)
