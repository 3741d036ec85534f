// The hub's side of the device statistics [EF-2.6.4, EF-2.6.5]: the same
// fixed bins the agent fills, so a baseline computed on the hub (from build
// inputs or a training pipeline's tensors) compares bin for bin with the
// field. Mirrors agent/src/telemetry/features.ts and runtime/outputs.ts (the
// hub never imports the agent); the bounds come from @edgefleet/shared.
import {
  CONFIDENCE_BUCKETS,
  MAX_OBSERVED_ELEMENTS,
  decodeTensor,
  featureBin,
  type Manifest,
  type TensorValue,
  emptyFeatureSketch,
} from '@edgefleet/shared'

/** Elements observed per tensor, as on the device [EF-2.6.5]. */
const MAX_OBSERVED = MAX_OBSERVED_ELEMENTS

export { featureBin }

/** Adds a float tensor's (strided) values to `sketch`. */
function sketchInto(sketch: number[], data: ArrayLike<number>): void {
  const n = data.length
  const step = n > MAX_OBSERVED ? n / MAX_OBSERVED : 1
  for (let f = 0; f < n; f += step) {
    const x = data[Math.floor(f)]
    if (Number.isFinite(x)) sketch[featureBin(x)]++
  }
}

export function confidenceBin(c: number): number {
  return Math.min(CONFIDENCE_BUCKETS.length - 1, Math.max(0, Math.floor(c * 10)))
}

/** Confidence of one request read as the agent reads it, or undefined [EF-2.6.4]. */
export function confidenceOf(
  semantics: Manifest['semantics'],
  outputs: Record<string, TensorValue>,
): number | undefined {
  const sem = semantics?.find((s) => s.kind === 'probability' || s.kind === 'scores' || s.kind === 'logits')
  const t = sem && outputs[sem.name]
  if (!sem || !t) return undefined
  const d = decodeTensor(sem.name, t).data
  if (d instanceof BigInt64Array || d.length === 0) return undefined
  const v = Array.from(d as ArrayLike<number>)
  const max = Math.max(...v)
  if (sem.kind !== 'logits') return max
  let sum = 0
  for (const x of v) sum += Math.exp(x - max)
  return 1 / sum
}

/** Sketches of float inputs of wire tensors (other types are not features). */
export function sketchTensors(
  tensors: Record<string, TensorValue>,
  into: Record<string, number[]> = {},
): Record<string, number[]> {
  for (const [name, t] of Object.entries(tensors)) {
    if (t.type !== 'float32' && t.type !== 'float64') continue
    sketchInto((into[name] ??= emptyFeatureSketch()), decodeTensor(name, t).data as Float32Array)
  }
  return into
}
