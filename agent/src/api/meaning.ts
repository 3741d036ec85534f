// The manifest's meta applied by the local API, only when the request asks
// [EF-7.1.3]: `?preprocess=1` normalises raw inputs along their channel axis
// (any numeric type in, float32 out), `?postprocess=1` turns outputs into
// labelled results (activation over the last axis, then best first, above the
// threshold, at most top-k per row). Plain requests never pay for it.
import { EdgeFleetError, type OutputMeta, type TensorsMeta } from '@edgefleet/shared'
import type { Tensor } from '../runtime/session.js'

/** One class of one row of an output, as the API returns it. */
interface LabelledScore {
  label: string
  index: number
  score: number
}

/** An output's meaning applied: labelled rows, or the plain values with their units. */
export type OutputResult =
  { units?: string; rows: LabelledScore[][] } | { units?: string; dims: number[]; values: number[] }

const numberAt = (data: Tensor['data'], i: number): number => Number(data[i])

/** Per-element channel index along axis `axis` of a row-major tensor of `dims`. */
function channelOf(dims: number[], axis: number): (i: number) => number {
  const stride = dims.slice(axis + 1).reduce((a, b) => a * b, 1)
  const size = dims[axis]
  return (i) => Math.floor(i / stride) % size
}

function normalizeInput(name: string, meta: NonNullable<TensorsMeta['inputs']>[string], tensor: Tensor): Tensor {
  const norm = meta.normalize
  if (!norm) return tensor
  const scale = norm.scale ?? 1
  let channel: (i: number) => number = () => 0
  if (norm.mean.length > 1) {
    const axis = meta.layout?.indexOf('C') ?? -1
    // The hub checked layout and counts against the model [EF-3.7]; a request with other dims is the caller's mistake.
    if (axis < 0 || tensor.dims[axis] !== norm.mean.length)
      throw new EdgeFleetError(
        'EF_ERR_INFER_BAD_TENSOR',
        `input ${name}: dims [${tensor.dims.join(',')}] do not have ${norm.mean.length} channels on axis C of ${meta.layout ?? '(no layout)'}`,
      )
    channel = channelOf(tensor.dims, axis)
  }
  const out = new Float32Array(tensor.data.length)
  for (let i = 0; i < out.length; i++) {
    const c = channel(i)
    out[i] = (numberAt(tensor.data, i) * scale - norm.mean[c]) / norm.std[c]
  }
  return { type: 'float32', dims: tensor.dims, data: out }
}

/** Inputs with their normalisation applied; inputs without meta pass as they are. */
export function preprocessInputs(
  meta: TensorsMeta | undefined,
  inputs: Record<string, Tensor>,
): Record<string, Tensor> {
  const inputMeta = meta?.inputs
  if (!inputMeta) return inputs
  const out: Record<string, Tensor> = {}
  for (const [name, tensor] of Object.entries(inputs))
    out[name] = inputMeta[name] ? normalizeInput(name, inputMeta[name], tensor) : tensor
  return out
}

function activate(row: number[], activation: NonNullable<OutputMeta['postprocess']>['activation']): number[] {
  if (activation === 'sigmoid') return row.map((x) => 1 / (1 + Math.exp(-x)))
  if (activation !== 'softmax') return row
  // Shifted by the row's maximum so large logits do not overflow exp().
  const max = row.reduce((a, b) => Math.max(a, b), -Infinity)
  const exps = row.map((x) => Math.exp(x - max))
  const sum = exps.reduce((a, b) => a + b, 0)
  return exps.map((e) => e / sum)
}

function labelledRows(meta: OutputMeta, tensor: Tensor): LabelledScore[][] {
  const classes = tensor.dims.at(-1) ?? 1
  const rowCount = classes > 0 ? Math.floor(tensor.data.length / classes) : 0
  const post = meta.postprocess ?? { activation: 'none' as const }
  const rows: LabelledScore[][] = []
  for (let r = 0; r < rowCount; r++) {
    const raw = Array.from({ length: classes }, (_, k) => numberAt(tensor.data, r * classes + k))
    const scored = activate(raw, post.activation)
      .map((score, index) => ({ label: meta.labels?.[index] ?? String(index), index, score }))
      .filter((s) => post.threshold === undefined || s.score >= post.threshold)
      .sort((a, b) => b.score - a.score)
    rows.push(post.topK === undefined ? scored : scored.slice(0, post.topK))
  }
  return rows
}

/** The outputs the manifest describes, with their meaning applied [EF-7.1.3]. */
export function postprocessOutputs(
  meta: TensorsMeta | undefined,
  outputs: Record<string, Tensor>,
): Record<string, OutputResult> {
  const results: Record<string, OutputResult> = {}
  for (const [name, outputMeta] of Object.entries(meta?.outputs ?? {})) {
    const tensor = outputs[name]
    if (!tensor) continue
    const units = outputMeta.units !== undefined ? { units: outputMeta.units } : {}
    results[name] =
      outputMeta.labels || outputMeta.postprocess
        ? { ...units, rows: labelledRows(outputMeta, tensor) }
        : { ...units, dims: tensor.dims, values: Array.from(tensor.data, Number) }
  }
  return results
}
