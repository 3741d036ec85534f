// Calibration tensors from .npy files: the shared codec [EF-9.8] with the
// compiler's two differences. A malformed file is EF_ERR_CALIBRATION_INVALID
// naming the file (the user's --calibration folder is what is wrong), and
// float16 arrays are widened to float32, the type calibration computes in.
import { EdgeFleetError, decodeNpy, encodeNpy } from '@edgefleet/shared'
import type { NamedTensor } from './ort.js'

/** Parses .npy bytes into a tensor. `file` only names the source in errors. */
export function readNpy(bytes: Uint8Array, file = '<npy>'): NamedTensor {
  let decoded: NamedTensor
  try {
    decoded = decodeNpy(bytes)
  } catch (err) {
    if (!(err instanceof EdgeFleetError)) throw err
    throw new EdgeFleetError('EF_ERR_CALIBRATION_INVALID', `calibration file ${file}: ${err.detail}`, { cause: err })
  }
  if (decoded.type !== 'float16') return decoded
  const half = decoded.data as Uint16Array
  const wide = new Float32Array(half.length)
  for (let i = 0; i < half.length; i++) wide[i] = halfToFloat(half[i])
  return { type: 'float32', dims: decoded.dims, data: wide }
}

function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1
  const e = (h >> 10) & 0x1f
  const m = h & 0x3ff
  if (e === 0) return s * m * 2 ** -24
  if (e === 31) return m ? NaN : s * Infinity
  return s * (1 + m / 1024) * 2 ** (e - 15)
}

/** A C-order little-endian .npy (v1); used by tests and the benchmark to make calibration folders. */
export function writeNpy(t: NamedTensor): Uint8Array {
  return encodeNpy(t.type, t.dims, t.data)
}
