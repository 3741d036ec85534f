// NumPy .npy (format 1.0) writer for the feed's tensors [EF-9.8, EF-9.9]:
// little-endian, C order, header padded so the data starts on a 64-byte
// boundary. np.load() reads the result directly.
import { decodeTensor, type TensorType, type TensorValue } from '@edgefleet/shared'

const DESCR: Record<TensorType, string> = {
  float32: '<f4',
  float64: '<f8',
  float16: '<f2',
  int8: '|i1',
  uint8: '|u1',
  int16: '<i2',
  uint16: '<u2',
  int32: '<i4',
  uint32: '<u4',
  int64: '<i8',
  uint64: '<u8',
  bool: '|b1',
} as Record<TensorType, string>

/** .npy bytes of raw little-endian tensor data. */
export function npyBytes(type: TensorType, dims: readonly number[], data: Uint8Array): Buffer {
  const descr = DESCR[type]
  if (!descr) throw new TypeError(`no .npy dtype for ${type}`)
  const shape = dims.length === 1 ? `(${dims[0]},)` : `(${dims.join(', ')})`
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shape}, }`
  // magic(6) + version(2) + header length(2) + header + '\n', padded to 64 bytes.
  const unpadded = 10 + header.length + 1
  header += ' '.repeat((64 - (unpadded % 64)) % 64) + '\n'
  const head = Buffer.alloc(10)
  head.write('\x93NUMPY', 0, 'latin1')
  head[6] = 1
  head[7] = 0
  head.writeUInt16LE(header.length, 8)
  return Buffer.concat([head, Buffer.from(header, 'latin1'), data])
}

/** .npy bytes of a wire tensor (json data or b64) [EF-2.5]. */
export function npyOfTensor(name: string, t: TensorValue): Buffer {
  const d = decodeTensor(name, t)
  const bytes = new Uint8Array(d.data.buffer, d.data.byteOffset, d.data.byteLength)
  return npyBytes(d.type, d.dims, bytes)
}
