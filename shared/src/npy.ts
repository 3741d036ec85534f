// The one NumPy .npy codec [EF-9.8]: pure bytes ↔ tensor, no file I/O.
// Encodes format 1.0 (little-endian, C order, header padded so the data
// starts on a 64-byte boundary; np.load() reads it directly); decodes formats
// 1, 2 and 3 of every dtype the wire knows (shared's tensor type table), either
// byte order. Malformed input throws EF_ERR_NPY_INVALID, never a RangeError
// from a typed array: the hub decodes files users hand it.
import { EdgeFleetError } from './errors.js'
import type { TensorType, TensorValue } from './messages/common.js'
import {
  TENSOR_TYPES,
  bytesPerElement,
  elementCount,
  decodeTensor,
  typedView,
  type DecodedTensor,
  type TypedData,
} from './tensor.js'

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59] // \x93NUMPY
/** Largest header we read: numpy writes a few hundred bytes; anything far larger is not a .npy. */
const MAX_HEADER_BYTES = 65_536

/** NumPy's kind letter of a tensor type: the descr is kind + byte size (float16 stays raw IEEE half bits). */
function kindOf(type: TensorType): string {
  if (type === 'bool') return 'b'
  if (type.startsWith('float')) return 'f'
  return type.startsWith('uint') ? 'u' : 'i'
}

/** The .npy descr of a tensor type, e.g. '<f4' or '|u1'. */
export function npyDescr(type: TensorType): string {
  const size = bytesPerElement(type)
  return `${size === 1 ? '|' : '<'}${kindOf(type)}${size}`
}

/** descr without byte-order character → tensor type ('f4' → float32). */
const TYPE_OF_DESCR: ReadonlyMap<string, TensorType> = new Map(
  TENSOR_TYPES.map((t) => [`${kindOf(t)}${bytesPerElement(t)}`, t] as const),
)

function invalid(why: string): EdgeFleetError {
  return new EdgeFleetError('EF_ERR_NPY_INVALID', why)
}

/** .npy (v1.0) bytes of raw little-endian tensor data (a typed array or its bytes). */
export function encodeNpy(type: TensorType, dims: readonly number[], data: TypedData | Uint8Array): Buffer {
  if (elementCount(dims) * bytesPerElement(type) !== data.byteLength)
    throw new RangeError(`encodeNpy: ${data.byteLength} bytes for dims [${dims.join(', ')}] of ${type}`)
  const shape = dims.length === 1 ? `(${dims[0]},)` : `(${dims.join(', ')})`
  let header = `{'descr': '${npyDescr(type)}', 'fortran_order': False, 'shape': ${shape}, }`
  // magic(6) + version(2) + header length(2) + header + '\n', padded to 64 bytes.
  header += ' '.repeat((64 - ((10 + header.length + 1) % 64)) % 64) + '\n'
  const out = Buffer.alloc(10 + header.length + data.byteLength)
  out.set(MAGIC)
  out[6] = 1
  out[7] = 0
  out.writeUInt16LE(header.length, 8)
  out.set(Buffer.from(header, 'latin1'), 10)
  out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), 10 + header.length)
  return out
}

/** .npy bytes of a wire tensor (JSON data or b64) [EF-2.5]; an inconsistent tensor throws EF_ERR_INFER_BAD_TENSOR. */
export function npyOfTensor(name: string, t: TensorValue): Buffer {
  const d = decodeTensor(name, t)
  return encodeNpy(d.type, d.dims, d.data)
}

interface NpyHeader {
  type: TensorType
  dims: number[]
  bigEndian: boolean
  dataStart: number
}

/** Reads and validates the preamble and the header dict. */
function readHeader(bytes: Uint8Array): NpyHeader {
  if (bytes.length < 10 || MAGIC.some((b, i) => bytes[i] !== b)) throw invalid('not a .npy file (bad magic)')
  const major = bytes[6]
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  let headerLen: number
  let start: number
  if (major === 1) {
    headerLen = dv.getUint16(8, true)
    start = 10
  } else if (major === 2 || major === 3) {
    if (bytes.length < 12) throw invalid('truncated header')
    headerLen = dv.getUint32(8, true)
    start = 12
  } else throw invalid(`unsupported .npy version ${major}`)
  if (headerLen > MAX_HEADER_BYTES) throw invalid(`header of ${headerLen} bytes (at most ${MAX_HEADER_BYTES})`)
  if (start + headerLen > bytes.length) throw invalid('truncated header')
  const header = Buffer.from(bytes.subarray(start, start + headerLen)).toString(major === 3 ? 'utf8' : 'latin1')
  const descr = /'descr'\s*:\s*'([<>|=])([a-z])(\d+)'/.exec(header)
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header)
  const shapeM = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)
  if (!descr || !fortran || !shapeM) throw invalid(`unreadable header ${JSON.stringify(header.trim().slice(0, 200))}`)
  if (fortran[1] === 'True') throw invalid('Fortran-ordered arrays are not supported; save with np.ascontiguousarray')
  const type = TYPE_OF_DESCR.get(descr[2] + descr[3])
  if (!type) throw invalid(`unsupported dtype ${descr[1]}${descr[2]}${descr[3]}`)
  const parts = shapeM[1]
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
  // Decimal digits only, and safe integers: '1e300' or '0x10' would pass Number() but are no numpy shape.
  if (parts.some((s) => !/^\d{1,15}$/.test(s))) throw invalid(`bad shape (${shapeM[1]})`)
  return { type, dims: parts.map(Number), bigEndian: descr[1] === '>', dataStart: start + headerLen }
}

/**
 * Decodes .npy bytes into a tensor (a fresh, aligned, native-order typed array).
 * Trailing bytes after the data are ignored, as np.load does.
 */
export function decodeNpy(bytes: Uint8Array): DecodedTensor {
  const header = readHeader(bytes)
  const size = bytesPerElement(header.type)
  let count = 1
  for (const d of header.dims) count *= d
  const present = bytes.length - header.dataStart
  // Compared before any allocation: a header may claim any shape.
  if (!Number.isSafeInteger(count * size) || count * size > present)
    throw invalid(`truncated data: ${count} × ${size} bytes expected, ${present} present`)
  const aligned = new Uint8Array(count * size) // fresh buffer: typed arrays need aligned offsets
  aligned.set(bytes.subarray(header.dataStart, header.dataStart + count * size))
  if (header.bigEndian && size > 1) {
    const view = Buffer.from(aligned.buffer, 0, aligned.byteLength) // same memory, swapped in place
    if (size === 2) view.swap16()
    else if (size === 4) view.swap32()
    else view.swap64()
  }
  return { type: header.type, dims: header.dims, data: typedView(header.type, aligned.buffer, 0, count) }
}
