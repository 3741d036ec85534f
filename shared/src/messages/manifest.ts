// The manifest: everything a device needs to fetch, verify, load and health
// check one build [EF-3]. Signed as a whole by the hub (signature travels beside it).
import { Type, type Static } from '@sinclair/typebox'
import { codec } from '../schema.js'
import { Digest, Id, ProtocolVersion, TensorSpec, TensorValue, Timestamp, Version } from './common.js'
import { Requirements, TensorsMeta } from './model-meta.js'

export const Precision = Type.Union([
  Type.Literal('fp32'),
  Type.Literal('fp16'),
  Type.Literal('int8-dynamic'),
  Type.Literal('int8-static'),
  Type.Literal('int8-weight'),
])
export type Precision = Static<typeof Precision>

export const ChunkRefSchema = Type.Object(
  { digest: Digest, size: Type.Integer({ minimum: 0 }) },
  { additionalProperties: false },
)

/** What an output means, so the agent can read confidence from it. */
export const OutputSemantics = Type.Object(
  {
    name: Type.String(),
    kind: Type.Union([
      Type.Literal('scores'),
      Type.Literal('logits'),
      Type.Literal('probability'),
      Type.Literal('regression'),
      Type.Literal('other'),
    ]),
  },
  { additionalProperties: false },
)

export const Manifest = Type.Object(
  {
    v: ProtocolVersion,
    model: Id,
    version: Version,
    profile: Id,
    precision: Precision,
    createdAt: Timestamp,
    artifact: Type.Object(
      {
        format: Type.Literal('onnx'),
        digest: Digest,
        size: Type.Integer({ minimum: 0 }),
        chunks: Type.Array(ChunkRefSchema, { minItems: 1, maxItems: 100_000 }),
        /** Where the artifact can also be fetched over HTTP (range requests), relative to the hub's URL [EF-4.10]. */
        url: Type.Optional(Type.String({ maxLength: 512 })),
      },
      { additionalProperties: false },
    ),
    inputs: Type.Array(TensorSpec),
    outputs: Type.Array(TensorSpec),
    semantics: Type.Optional(Type.Array(OutputSemantics)),
    /** What the tensors mean (normalisation, layout, labels, post-processing, units) [EF-3.7]. */
    meta: Type.Optional(TensorsMeta),
    /** The oldest agent and ONNX Runtime this build runs on [EF-3.8]. */
    requires: Type.Optional(Requirements),
    healthCheck: Type.Object(
      {
        inputs: Type.Record(Type.String(), TensorValue),
        outputs: Type.Record(Type.String(), TensorValue),
        atol: Type.Number({ minimum: 0 }),
        rtol: Type.Number({ minimum: 0 }),
      },
      { additionalProperties: false },
    ),
    validation: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
    parent: Type.Optional(Type.String()),
  },
  { additionalProperties: false },
)
export type Manifest = Static<typeof Manifest>

/** Manifests carry health-check tensors, so they may be large; 8 MiB bounds them. */
export const manifestCodec = codec(Manifest, 8 * 1024 * 1024)
