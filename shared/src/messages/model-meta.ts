// What a model's tensors mean [EF-3.7]: input normalisation and layout,
// output labels, post-processing and units, and the minimum agent and ONNX
// Runtime versions a build needs. `model add --meta meta.json` gives it; the
// hub checks it against the model and carries it in the signed manifest; the
// agent's local API applies it on request (`?preprocess=1`, `?postprocess=1`).
import { Type, type Static } from '@sinclair/typebox'
import { codec } from '../schema.js'
import { Version } from './common.js'

const Text = (maxLength: number) => Type.String({ minLength: 1, maxLength })

/** `y = (x × scale − mean[c]) / std[c]` along the layout's channel axis (`C`), or one mean/std for every element. */
export const InputNormalization = Type.Object(
  {
    scale: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
    mean: Type.Array(Type.Number(), { minItems: 1, maxItems: 4096 }),
    std: Type.Array(Type.Number({ exclusiveMinimum: 0 }), { minItems: 1, maxItems: 4096 }),
  },
  { additionalProperties: false },
)

export const InputMeta = Type.Object(
  {
    /** One letter per axis, e.g. NCHW, NHWC, NC, NCT; `C` marks the channel axis normalisation runs along. */
    layout: Type.Optional(Type.String({ pattern: '^[A-Z]{1,16}$' })),
    normalize: Type.Optional(InputNormalization),
    units: Type.Optional(Text(64)),
    description: Type.Optional(Text(512)),
  },
  { additionalProperties: false },
)
export type InputMeta = Static<typeof InputMeta>

/** Turning raw output values into labelled results: an activation over the last axis, then top-k above a threshold. */
export const PostProcess = Type.Object(
  {
    activation: Type.Union([Type.Literal('none'), Type.Literal('softmax'), Type.Literal('sigmoid')]),
    /** Results scoring below it are left out (after the activation). */
    threshold: Type.Optional(Type.Number()),
    /** At most this many results per row, best first (default: every class). */
    topK: Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000 })),
  },
  { additionalProperties: false },
)
export type PostProcess = Static<typeof PostProcess>

export const OutputMeta = Type.Object(
  {
    /** One label per element of the output's last axis (the class axis). */
    labels: Type.Optional(Type.Array(Text(128), { minItems: 1, maxItems: 100_000 })),
    postprocess: Type.Optional(PostProcess),
    units: Type.Optional(Text(64)),
    description: Type.Optional(Text(512)),
  },
  { additionalProperties: false },
)
export type OutputMeta = Static<typeof OutputMeta>

const tensorsMeta = {
  inputs: Type.Optional(Type.Record(Text(256), InputMeta, { maxProperties: 64 })),
  outputs: Type.Optional(Type.Record(Text(256), OutputMeta, { maxProperties: 64 })),
}

/** The manifest's `meta`: what the inputs and outputs mean [EF-3.7]. */
export const TensorsMeta = Type.Object(tensorsMeta, { additionalProperties: false })
export type TensorsMeta = Static<typeof TensorsMeta>

/** The oldest agent and ONNX Runtime a build runs on; an older agent refuses it before downloading [EF-3.8]. */
export const Requirements = Type.Object(
  { agent: Type.Optional(Version), ort: Type.Optional(Version) },
  { additionalProperties: false },
)
export type Requirements = Static<typeof Requirements>

/** The `--meta` file of `model add` (and the API's `meta` parameter). */
export const ModelMeta = Type.Object(
  { ...tensorsMeta, requires: Type.Optional(Requirements) },
  { additionalProperties: false },
)
export type ModelMeta = Static<typeof ModelMeta>

/** A meta file is small next to the model; 1 MiB bounds it. */
export const modelMetaCodec = codec(ModelMeta, 1024 * 1024)
