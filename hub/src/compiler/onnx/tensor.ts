// Tensor payloads: reading TensorProto data in any of its encodings and making
// new tensors (always raw_data, little-endian, as ONNX requires).
import { DataType, toNumber, type TensorProto } from './proto.js'

export type TypedArray =
  Float32Array | Float64Array | Int8Array | Uint8Array | Int16Array | Uint16Array | Int32Array | BigInt64Array

export function dimsOf(t: TensorProto): number[] {
  return t.dims.map((d) => toNumber(d))
}

export function elementCount(dims: readonly number[]): number {
  return dims.reduce((a, b) => a * b, 1)
}

/** Float32 values of a FLOAT tensor (a copy), or null for other types or external data. */
export function floatData(tensorProto: TensorProto): Float32Array | null {
  if (tensorProto.data_type !== DataType.FLOAT || tensorProto.data_location === 1) return null
  const n = elementCount(dimsOf(tensorProto))
  if (tensorProto.raw_data && tensorProto.raw_data.byteLength > 0) {
    if (tensorProto.raw_data.byteLength !== n * 4) return null
    const out = new Float32Array(n)
    new Uint8Array(out.buffer).set(tensorProto.raw_data)
    return out
  }
  if (tensorProto.float_data?.length === n) return Float32Array.from(tensorProto.float_data)
  return n === 0 ? new Float32Array(0) : null
}

function bytesOf(a: TypedArray): Uint8Array {
  // Copy so the tensor owns exactly its bytes (a view into a larger pool would encode the pool).
  return new Uint8Array(a.buffer.slice(a.byteOffset, a.byteOffset + a.byteLength))
}

export function makeTensor(name: string, dataType: number, dims: readonly number[], data: TypedArray): TensorProto {
  return { name, data_type: dataType, dims: [...dims], raw_data: bytesOf(data) }
}

export const f32 = (name: string, dims: readonly number[], v: ArrayLike<number>) =>
  makeTensor(name, DataType.FLOAT, dims, Float32Array.from(v))
export const i64 = (name: string, dims: readonly number[], v: readonly number[]) =>
  makeTensor(name, DataType.INT64, dims, BigInt64Array.from(v.map((x) => BigInt(x))))

const f32buf = new Float32Array(1)
const u32buf = new Uint32Array(f32buf.buffer)

/** IEEE binary32 → binary16 bits, round to nearest even, overflow to ±inf. */
function toHalf(x: number): number {
  f32buf[0] = x
  const b = u32buf[0]
  const sign = (b >>> 16) & 0x8000
  const exp = (b >>> 23) & 0xff
  let mant = b & 0x7fffff
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0)
  const halfExponent = exp - 127 + 15
  if (halfExponent >= 0x1f) return sign | 0x7c00
  if (halfExponent <= 0) {
    if (halfExponent < -10) return sign
    mant |= 0x800000
    const shift = 14 - halfExponent
    let half = mant >>> shift
    const rem = mant & ((1 << shift) - 1)
    const mid = 1 << (shift - 1)
    if (rem > mid || (rem === mid && half & 1)) half++
    return sign | half
  }
  let half = (halfExponent << 10) | (mant >>> 13)
  const rem = mant & 0x1fff
  if (rem > 0x1000 || (rem === 0x1000 && half & 1)) half++
  return sign | half
}

export function toFloat16Array(v: Float32Array): Uint16Array {
  const out = new Uint16Array(v.length)
  for (let i = 0; i < v.length; i++) out[i] = toHalf(v[i])
  return out
}
