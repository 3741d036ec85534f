// Deterministic synthetic inputs for models whose callers gave none: used for
// health-check vectors and as a weak fallback for validation [EF-3.4].
import { EdgeFleetError, type TensorSpec, type TensorType, type TypedData } from '@edgefleet/shared'
import type { NamedTensor } from './ort.js'
import { seededRandom as prng } from '../stats.js'

/** Seedable PRNG for test vectors: the hub's one mulberry32 (stats.ts), under the name the compiler exports. */
export { prng }

/** Concrete dims for a declared shape: explicit overrides first, then symbolic batch → 1, other symbolic → `fallbackDim`. */
export function concreteDims(spec: TensorSpec, override?: number[], fallbackDim = 16): number[] {
  if (override) {
    if (override.length !== spec.dims.length) {
      throw new EdgeFleetError(
        'EF_ERR_MODEL_INVALID',
        `input ${spec.name} has rank ${spec.dims.length}, shape override has ${override.length}`,
      )
    }
    return override
  }
  return spec.dims.map((d, i) => (typeof d === 'number' && d >= 0 ? d : i === 0 ? 1 : fallbackDim))
}

export function synthesizeInputs(
  specs: readonly TensorSpec[],
  opts: { seed?: number; shapes?: Record<string, number[]>; values?: Record<string, number> } = {},
): Record<string, NamedTensor> {
  const rand = prng(opts.seed ?? 42)
  const out: Record<string, NamedTensor> = {}
  for (const spec of specs) {
    const dims = concreteDims(spec, opts.shapes?.[spec.name])
    const count = dims.reduce((a, b) => a * b, 1)
    const type = spec.type as TensorType
    const fixed = opts.values?.[spec.name]
    let data: TypedData
    switch (type) {
      case 'float32':
      case 'float64': {
        const arr = type === 'float32' ? new Float32Array(count) : new Float64Array(count)
        for (let i = 0; i < count; i++) arr[i] = fixed ?? rand() * 2 - 1
        data = arr
        break
      }
      case 'int64': {
        const arr = new BigInt64Array(count)
        for (let i = 0; i < count; i++) arr[i] = BigInt(fixed ?? Math.floor(rand() * 4))
        data = arr
        break
      }
      case 'int32': {
        const arr = new Int32Array(count)
        for (let i = 0; i < count; i++) arr[i] = fixed ?? Math.floor(rand() * 4)
        data = arr
        break
      }
      case 'uint8':
      case 'bool': {
        const arr = new Uint8Array(count)
        for (let i = 0; i < count; i++)
          arr[i] = fixed ?? (type === 'bool' ? (rand() < 0.5 ? 0 : 1) : Math.floor(rand() * 256))
        data = arr
        break
      }
      default:
        throw new EdgeFleetError(
          'EF_ERR_MODEL_INVALID',
          `input ${spec.name}: cannot synthesize values of type ${type}; give health-check inputs explicitly`,
        )
    }
    out[spec.name] = { type, dims, data }
  }
  return out
}
