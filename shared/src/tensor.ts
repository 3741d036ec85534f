// Tensor values on the wire (JSON `data` or base64 `b64`) to and from typed
// arrays, and the tolerance check used by health checks and tests [EF-2.5].
import { EdgeFleetError } from './errors.js'
import type { TensorType, TensorValue } from './messages/common.js'

export type TypedData =
  | Float32Array
  | Float64Array
  | Int8Array
  | Uint8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | BigInt64Array
  | BigUint64Array

const CTORS = {
  float32: Float32Array,
  float16: Uint16Array, // raw IEEE half bits: ORT's node binding takes fp16 as Uint16Array
  float64: Float64Array,
  int8: Int8Array,
  uint8: Uint8Array,
  int16: Int16Array,
  uint16: Uint16Array,
  int32: Int32Array,
  uint32: Uint32Array,
  int64: BigInt64Array,
  uint64: BigUint64Array,
  bool: Uint8Array,
} as const

/** Every element type the wire knows, in the order of the table above [EF-2.5]. */
export const TENSOR_TYPES = Object.keys(CTORS) as readonly TensorType[]

export interface DecodedTensor {
  type: TensorType
  dims: number[]
  data: TypedData
}

export function elementCount(dims: readonly number[]): number {
  let n = 1
  for (const d of dims) n *= d
  return n
}

/** True for the element types the wire knows (EF-2.5). */
export function isTensorType(type: unknown): type is TensorType {
  return typeof type === 'string' && Object.prototype.hasOwnProperty.call(CTORS, type)
}

/** A short, safe description of a would-be type name for error messages. */
export function describeType(type: unknown): string {
  return typeof type === 'string' ? JSON.stringify(type.slice(0, 64)) : `(a ${type === null ? 'null' : typeof type})`
}

/** A typed-array view of `count` elements of `type` over `buffer` from byte `offset`. */
export function typedView(type: TensorType, buffer: ArrayBuffer, offset: number, count: number): TypedData {
  return new CTORS[type](buffer, offset, count)
}

export function bytesPerElement(type: TensorType): number {
  return CTORS[type].BYTES_PER_ELEMENT
}

/** Decodes a wire tensor; throws EF_ERR_INFER_BAD_TENSOR on any inconsistency. */
export function decodeTensor(name: string, value: TensorValue): DecodedTensor {
  // Own keys only ('constructor' is not a type), and never String() a hostile value: a deeply nested array overflows the stack.
  if (!isTensorType(value.type))
    throw new EdgeFleetError('EF_ERR_INFER_BAD_TENSOR', `${name}: unknown type ${describeType(value.type)}`)
  const Ctor = CTORS[value.type]
  // dims of 1e21 next to a 0 hold no elements, but no .npy reader or ORT takes them [EF-2.5].
  if (!Array.isArray(value.dims) || !value.dims.every((d) => Number.isSafeInteger(d) && d >= 0))
    throw new EdgeFleetError('EF_ERR_INFER_BAD_TENSOR', `${name}: dims must be non-negative safe integers`)
  const count = elementCount(value.dims)
  let data: TypedData
  if (value.b64 !== undefined) {
    const buf = Buffer.from(value.b64, 'base64')
    if (buf.length !== count * Ctor.BYTES_PER_ELEMENT) {
      throw new EdgeFleetError(
        'EF_ERR_INFER_BAD_TENSOR',
        `${name}: ${buf.length} bytes for dims [${value.dims.join(',')}] of ${value.type}`,
      )
    }
    const copy = new Uint8Array(buf) // aligned copy
    data = new Ctor(copy.buffer, 0, count)
  } else if (value.data !== undefined) {
    if (value.data.length !== count) {
      throw new EdgeFleetError(
        'EF_ERR_INFER_BAD_TENSOR',
        `${name}: ${value.data.length} values for dims [${value.dims.join(',')}] (expected ${count})`,
      )
    }
    if (Ctor === BigInt64Array || Ctor === BigUint64Array) {
      const arr = new Ctor(count)
      for (let i = 0; i < count; i++) {
        const v = value.data[i]
        try {
          arr[i] = BigInt(typeof v === 'boolean' ? Number(v) : v)
        } catch {
          throw new EdgeFleetError('EF_ERR_INFER_BAD_TENSOR', `${name}[${i}]: not an integer`)
        }
      }
      data = arr
    } else {
      const arr = new Ctor(count)
      for (let i = 0; i < count; i++) {
        const v = value.data[i]
        const n = typeof v === 'number' ? v : typeof v === 'boolean' ? Number(v) : Number.NaN
        if (typeof v !== 'number' && typeof v !== 'boolean') {
          throw new EdgeFleetError('EF_ERR_INFER_BAD_TENSOR', `${name}[${i}]: not a number`)
        }
        arr[i] = n
      }
      data = arr
    }
  } else {
    throw new EdgeFleetError('EF_ERR_INFER_BAD_TENSOR', `${name}: neither data nor b64 given`)
  }
  return { type: value.type, dims: [...value.dims], data }
}

/** Encodes a typed array for the wire; `binary` selects base64 over JSON numbers. */
export function encodeTensor(type: TensorType, dims: readonly number[], data: TypedData, binary = false): TensorValue {
  if (binary) {
    return { type, dims: [...dims], b64: Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('base64') }
  }
  const out = new Array<number | string>(data.length)
  if (data instanceof BigInt64Array || data instanceof BigUint64Array) {
    for (let i = 0; i < data.length; i++) out[i] = data[i].toString()
  } else {
    for (let i = 0; i < data.length; i++) out[i] = data[i]
  }
  return { type, dims: [...dims], data: out }
}

export interface CloseReport {
  ok: boolean
  maxAbsDiff: number
  /** index of the first element outside tolerance, -1 if none */
  firstBad: number
}

/** |a - b| <= atol + rtol * |b| for every element (numpy.allclose semantics); NaN equals NaN, +-Infinity equals itself. */
export function tensorsClose(
  actual: ArrayLike<number | bigint>,
  expected: ArrayLike<number | bigint>,
  atol: number,
  rtol: number,
): CloseReport {
  if (actual.length !== expected.length) return { ok: false, maxAbsDiff: Number.POSITIVE_INFINITY, firstBad: 0 }
  let maxAbsDiff = 0
  let firstBad = -1
  for (let index = 0; index < actual.length; index++) {
    const a = Number(actual[index])
    const b = Number(expected[index])
    // Equal values (incl. equal infinities, whose difference is NaN) and NaN/NaN pairs are close.
    if (a === b || (Number.isNaN(a) && Number.isNaN(b))) continue
    const d = Math.abs(a - b)
    if (!(d <= maxAbsDiff)) maxAbsDiff = Number.isNaN(d) ? Number.POSITIVE_INFINITY : d
    // An infinite expected value would make rtol * |b| infinite and accept anything:
    // like numpy.allclose, infinities only match themselves (handled above).
    const close = Number.isFinite(a) && Number.isFinite(b) && d <= atol + rtol * Math.abs(b)
    if (!close && firstBad < 0) firstBad = index
  }
  return { ok: firstBad < 0, maxAbsDiff, firstBad }
}
