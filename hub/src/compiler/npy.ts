// A small reader for NumPy .npy files (format versions 1, 2 and 3), enough for
// calibration tensors: C-order arrays of bool, (u)int8/16/32/64, float16/32/64,
// either byte order. Fortran order is refused (would need a transpose).
import { EdgeFleetError, type TensorType, type TypedData } from '@edgefleet/shared'
import type { NamedTensor } from './ort.js'

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59] // \x93NUMPY

interface Kind {
  size: number
  type: TensorType
  read: (dv: DataView, off: number, le: boolean) => number | bigint
}

const KINDS: Record<string, Kind> = {
  f4: { size: 4, type: 'float32', read: (d, o, le) => d.getFloat32(o, le) },
  f8: { size: 8, type: 'float64', read: (d, o, le) => d.getFloat64(o, le) },
  f2: { size: 2, type: 'float32', read: (d, o, le) => halfToFloat(d.getUint16(o, le)) },
  i8: { size: 8, type: 'int64', read: (d, o, le) => d.getBigInt64(o, le) },
  i4: { size: 4, type: 'int32', read: (d, o, le) => d.getInt32(o, le) },
  i2: { size: 2, type: 'int16', read: (d, o, le) => d.getInt16(o, le) },
  i1: { size: 1, type: 'int8', read: (d, o) => d.getInt8(o) },
  u1: { size: 1, type: 'uint8', read: (d, o) => d.getUint8(o) },
  u2: { size: 2, type: 'uint16', read: (d, o, le) => d.getUint16(o, le) },
  u4: { size: 4, type: 'uint32', read: (d, o, le) => d.getUint32(o, le) },
  u8: { size: 8, type: 'uint64', read: (d, o, le) => d.getBigUint64(o, le) },
  b1: { size: 1, type: 'bool', read: (d, o) => d.getUint8(o) },
}

function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1
  const e = (h >> 10) & 0x1f
  const m = h & 0x3ff
  if (e === 0) return s * m * 2 ** -24
  if (e === 31) return m ? NaN : s * Infinity
  return s * (1 + m / 1024) * 2 ** (e - 15)
}

function bad(file: string, why: string): EdgeFleetError {
  return new EdgeFleetError('EF_ERR_CALIBRATION_INVALID', `calibration file ${file}: ${why}`)
}

/** Parses .npy bytes into a tensor. `file` only names the source in errors. */
export function readNpy(bytes: Uint8Array, file = '<npy>'): NamedTensor {
  if (bytes.length < 10 || MAGIC.some((b, i) => bytes[i] !== b)) throw bad(file, 'not a .npy file (bad magic)')
  const major = bytes[6]
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  let headerLen: number
  let start: number
  if (major === 1) {
    headerLen = dv.getUint16(8, true)
    start = 10
  } else if (major === 2 || major === 3) {
    if (bytes.length < 12) throw bad(file, 'truncated header')
    headerLen = dv.getUint32(8, true)
    start = 12
  } else throw bad(file, `unsupported .npy version ${major}`)
  if (start + headerLen > bytes.length) throw bad(file, 'truncated header')
  const header = Buffer.from(bytes.subarray(start, start + headerLen)).toString(major === 3 ? 'utf8' : 'latin1')
  const descr = /'descr'\s*:\s*'([<>|=])([a-z])(\d+)'/.exec(header)
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header)
  const shapeM = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)
  if (!descr || !fortran || !shapeM) throw bad(file, `unreadable header ${header.trim()}`)
  if (fortran[1] === 'True') throw bad(file, 'Fortran-ordered arrays are not supported; save with np.ascontiguousarray')
  const kind = KINDS[descr[2] + descr[3]]
  if (!kind) throw bad(file, `unsupported dtype ${descr[1]}${descr[2]}${descr[3]}`)
  const dims = shapeM[1]
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map(Number)
  if (dims.some((d) => !Number.isInteger(d) || d < 0)) throw bad(file, `bad shape (${shapeM[1]})`)
  const count = dims.reduce((a, b) => a * b, 1)
  const dataStart = start + headerLen
  if (bytes.length - dataStart < count * kind.size)
    throw bad(file, `truncated data: ${count} × ${kind.size} bytes expected, ${bytes.length - dataStart} present`)
  const le = descr[1] !== '>'
  const data = alloc(kind.type, count)
  const body = new DataView(bytes.buffer, bytes.byteOffset + dataStart, count * kind.size)
  for (let i = 0; i < count; i++) (data as unknown as (number | bigint)[])[i] = kind.read(body, i * kind.size, le)
  return { type: kind.type, dims, data }
}

function alloc(type: TensorType, n: number): TypedData {
  switch (type) {
    case 'float32':
      return new Float32Array(n)
    case 'float64':
      return new Float64Array(n)
    case 'int64':
      return new BigInt64Array(n)
    case 'uint64':
      return new BigUint64Array(n)
    case 'int32':
      return new Int32Array(n)
    case 'uint32':
      return new Uint32Array(n)
    case 'int16':
      return new Int16Array(n)
    case 'uint16':
      return new Uint16Array(n)
    case 'int8':
      return new Int8Array(n)
    default:
      return new Uint8Array(n)
  }
}

/** Writes a C-order little-endian .npy (v1); used by tests and the benchmark to make calibration folders. */
export function writeNpy(t: NamedTensor): Uint8Array {
  const descr: Record<string, string> = {
    float32: '<f4',
    float64: '<f8',
    int64: '<i8',
    int32: '<i4',
    uint8: '|u1',
    int8: '|i1',
    bool: '|b1',
  }
  const d = descr[t.type]
  if (!d) throw new TypeError(`writeNpy: unsupported type ${t.type}`)
  const shape = t.dims.length === 1 ? `(${t.dims[0]},)` : `(${t.dims.join(', ')})`
  let header = `{'descr': '${d}', 'fortran_order': False, 'shape': ${shape}, }`
  const pad = 64 - ((10 + header.length + 1) % 64)
  header += ' '.repeat(pad % 64) + '\n'
  const data = t.data as unknown as { buffer: ArrayBufferLike; byteOffset: number; byteLength: number }
  const out = new Uint8Array(10 + header.length + data.byteLength)
  out.set(MAGIC)
  out[6] = 1
  out[7] = 0
  new DataView(out.buffer).setUint16(8, header.length, true)
  out.set(Buffer.from(header, 'latin1'), 10)
  out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), 10 + header.length)
  return out
}
