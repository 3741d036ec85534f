// Captured inputs and outputs (ef/v1/dev/{id}/samples) for retraining, taken
// under the hub's capture policy [EF-2.9]. One sample per message; the hub
// stores a (deviceId, sampleId) pair once, like telemetry batches.
import { Type, type Static } from '@sinclair/typebox'
import { codec } from '../schema.js'
import { Id, ProtocolVersion, TensorValue, Timestamp, Version } from './common.js'

export const CAPTURE_REASONS = ['random', 'low_confidence', 'disagreement'] as const
export type CaptureReason = (typeof CAPTURE_REASONS)[number]

export const Sample = Type.Object(
  {
    v: ProtocolVersion,
    deviceId: Id,
    sampleId: Type.String({ minLength: 8, maxLength: 64 }),
    ts: Timestamp,
    model: Id,
    version: Version,
    reason: Type.Union(CAPTURE_REASONS.map((r) => Type.Literal(r))),
    /** Confidence read from the outputs, when the manifest says how [EF-2.6.4]. */
    confidence: Type.Optional(Type.Number()),
    inputs: Type.Record(Type.String(), TensorValue),
    outputs: Type.Record(Type.String(), TensorValue),
    /** What the device's privacy filter did to the inputs [EF-2.9.5]. */
    privacy: Type.Optional(
      Type.Object(
        {
          /** Inputs left out (named by the policy, audio without allowAudio, or a region that did not fit). */
          dropped: Type.Optional(Type.Array(Type.String({ maxLength: 256 }), { maxItems: 64 })),
          /** Inputs replaced by their keyed hash (hex). */
          hashed: Type.Optional(
            Type.Record(Type.String({ maxLength: 256 }), Type.String({ pattern: '^[0-9a-f]{64}$' })),
          ),
          /** Outputs left out (named by the policy, or audio without allowAudio). */
          droppedOutputs: Type.Optional(Type.Array(Type.String({ maxLength: 256 }), { maxItems: 64 })),
          /** Inputs with blanked regions. */
          blanked: Type.Optional(Type.Array(Type.String({ maxLength: 256 }), { maxItems: 64 })),
        },
        { additionalProperties: false },
      ),
    ),
    /** The shadow candidate's outputs, for a disagreement capture. */
    shadow: Type.Optional(
      Type.Object(
        { version: Version, outputs: Type.Record(Type.String(), TensorValue) },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
)
export type Sample = Static<typeof Sample>

/** One captured sample; larger captures are skipped on the device and counted [EF-2.9.1]. */
export const sampleCodec = codec(Sample, 2 * 1024 * 1024)
