import { describe, expect, it } from 'vitest'
import {
  EdgeFleetError,
  bytesPerElement,
  decodeTensor,
  elementCount,
  encodeTensor,
  tensorsClose,
  type TensorType,
  type TensorValue,
  type TypedData,
} from '../src/index.js'

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn()
  } catch (err) {
    expect(err).toBeInstanceOf(EdgeFleetError)
    return (err as EdgeFleetError).code
  }
  return undefined
}

/** One sample per wire type, with values that exercise the type's range. */
const SAMPLES: [TensorType, TypedData][] = [
  ['float32', new Float32Array([0, -1.5, 3.25, 1e-7, 65504])],
  ['float64', new Float64Array([Math.PI, -1e300, 5e-324, 0.1])],
  ['float16', new Uint16Array([0x3c00, 0xc000, 0x7bff, 0x0001])], // raw IEEE half bits: 1, -2, 65504, min subnormal
  ['int8', new Int8Array([-128, -1, 0, 127])],
  ['uint8', new Uint8Array([0, 1, 254, 255])],
  ['int16', new Int16Array([-32768, 0, 32767])],
  ['uint16', new Uint16Array([0, 65535])],
  ['int32', new Int32Array([-2147483648, 0, 2147483647])],
  ['uint32', new Uint32Array([0, 4294967295])],
  ['int64', new BigInt64Array([-9223372036854775808n, -1n, 0n, 9007199254740993n, 9223372036854775807n])],
  ['uint64', new BigUint64Array([0n, 18446744073709551615n, 9007199254740993n])],
  ['bool', new Uint8Array([1, 0, 1])],
]

describe('elementCount / bytesPerElement', () => {
  it('multiply dims, with [] a scalar and any 0 an empty tensor', () => {
    expect(elementCount([])).toBe(1)
    expect(elementCount([2, 3, 4])).toBe(24)
    expect(elementCount([5, 0, 7])).toBe(0)
  })

  it('know the width of every wire type', () => {
    expect(bytesPerElement('float32')).toBe(4)
    expect(bytesPerElement('float16')).toBe(2)
    expect(bytesPerElement('float64')).toBe(8)
    expect(bytesPerElement('int64')).toBe(8)
    expect(bytesPerElement('bool')).toBe(1)
  })
})

describe('encodeTensor / decodeTensor [EF-2.5]', () => {
  it.each(SAMPLES)('%s round-trips through JSON data', (type, data) => {
    const wire = encodeTensor(type, [data.length], data)
    expect(wire.b64).toBeUndefined()
    const back = decodeTensor('x', JSON.parse(JSON.stringify(wire)) as TensorValue)
    expect(back.type).toBe(type)
    expect(back.dims).toEqual([data.length])
    expect(back.data.constructor).toBe(data.constructor)
    expect(Array.from(back.data as ArrayLike<number | bigint>)).toEqual(Array.from(data as ArrayLike<number | bigint>))
  })

  it.each(SAMPLES)('%s round-trips through b64 bytes', (type, data) => {
    const wire = encodeTensor(type, [1, data.length], data, true)
    expect(wire.data).toBeUndefined()
    expect(Buffer.from(wire.b64!, 'base64')).toHaveLength(data.byteLength)
    const back = decodeTensor('x', JSON.parse(JSON.stringify(wire)) as TensorValue)
    expect(back.dims).toEqual([1, data.length])
    expect(
      Buffer.from(back.data.buffer, back.data.byteOffset, back.data.byteLength).equals(
        Buffer.from(data.buffer, data.byteOffset, data.byteLength),
      ),
    ).toBe(true)
  })

  it('writes 64-bit integers as decimal strings, exact beyond 2^53', () => {
    const wire = encodeTensor('int64', [2], new BigInt64Array([9007199254740993n, -5n]))
    expect(wire.data).toEqual(['9007199254740993', '-5'])
    expect(decodeTensor('ids', { type: 'int64', dims: [3], data: ['9007199254740993', 7, true] }).data).toEqual(
      new BigInt64Array([9007199254740993n, 7n, 1n]),
    )
  })

  it('encodes b64 from a view without leaking neighbouring bytes', () => {
    const backing = new Float32Array([1, 2, 3, 4])
    const view = backing.subarray(1, 3)
    const wire = encodeTensor('float32', [2], view, true)
    expect(Array.from(decodeTensor('v', wire).data as Float32Array)).toEqual([2, 3])
  })

  it('decodes b64 at any byte alignment (result is an aligned copy)', () => {
    const wire: TensorValue = {
      type: 'float64',
      dims: [1],
      b64: Buffer.from(new Float64Array([2.5]).buffer).toString('base64'),
    }
    const t = decodeTensor('a', wire)
    expect(t.data).toBeInstanceOf(Float64Array)
    expect(t.data[0]).toBe(2.5)
  })

  it('keeps negative zero in b64 only: JSON has no -0', () => {
    const data = new Float32Array([-0])
    expect(Object.is(decodeTensor('z', encodeTensor('float32', [1], data, true)).data[0], -0)).toBe(true)
    expect(
      Object.is(
        decodeTensor('z', JSON.parse(JSON.stringify(encodeTensor('float32', [1], data))) as TensorValue).data[0],
        0,
      ),
    ).toBe(true)
  })

  it('reads booleans in data as 1 and 0', () => {
    expect(
      Array.from(decodeTensor('m', { type: 'bool', dims: [3], data: [true, false, 1] }).data as Uint8Array),
    ).toEqual([1, 0, 1])
  })

  it('handles scalars and empty tensors', () => {
    expect(Array.from(decodeTensor('s', { type: 'float32', dims: [], data: [4] }).data as Float32Array)).toEqual([4])
    expect(decodeTensor('e', { type: 'float32', dims: [0, 3], data: [] }).data).toHaveLength(0)
    expect(decodeTensor('e', { type: 'float32', dims: [0, 3], b64: '' }).data).toHaveLength(0)
  })

  it('does not alias the caller dims', () => {
    const dims = [2]
    const t = decodeTensor('a', { type: 'int32', dims, data: [1, 2] })
    dims[0] = 99
    expect(t.dims).toEqual([2])
  })

  it.each([
    ['too few values', { type: 'float32', dims: [2, 2], data: [1, 2, 3] }],
    ['too many values', { type: 'float32', dims: [1], data: [1, 2] }],
    ['string in a float tensor', { type: 'float32', dims: [1], data: ['1.0'] }],
    ['non-integer in int64', { type: 'int64', dims: [1], data: [1.5] }],
    ['non-numeric string in int64', { type: 'int64', dims: [1], data: ['twelve'] }],
    ['b64 byte count off by one element', { type: 'float32', dims: [2], b64: Buffer.alloc(4).toString('base64') }],
    [
      'b64 byte count not a multiple of the width',
      { type: 'int32', dims: [1], b64: Buffer.alloc(3).toString('base64') },
    ],
    ['neither data nor b64', { type: 'float32', dims: [1] }],
    ['unknown type', { type: 'complex64', dims: [1], data: [1] }],
  ])('rejects %s with EF_ERR_INFER_BAD_TENSOR', (_label, wire) => {
    expect(codeOf(() => decodeTensor('x', wire as TensorValue))).toBe('EF_ERR_INFER_BAD_TENSOR')
  })

  it('names the tensor in the error', () => {
    expect(() => decodeTensor('pixel_values', { type: 'float32', dims: [2], data: [1] })).toThrow(/pixel_values/)
  })
})

describe('tensorsClose', () => {
  it('applies |a - b| <= atol + rtol * |b| per element', () => {
    expect(tensorsClose([1, 2], [1, 2], 0, 0)).toEqual({ ok: true, maxAbsDiff: 0, firstBad: -1 })
    expect(tensorsClose([1.04], [1], 0.05, 0).ok).toBe(true)
    expect(tensorsClose([0.96], [1], 0.05, 0).ok).toBe(true)
    expect(tensorsClose([1.06], [1], 0.05, 0).ok).toBe(false)
    expect(tensorsClose([110], [100], 0, 0.1).ok).toBe(true)
    expect(tensorsClose([111], [100], 0, 0.1).ok).toBe(false)
    // rtol scales with the expected value, not the actual one
    expect(tensorsClose([100], [110], 0, 0.1).ok).toBe(true)
    expect(tensorsClose([110], [99], 0, 0.1).ok).toBe(false)
  })

  it('reports the largest difference and the first bad index', () => {
    const r = tensorsClose([0, 1.5, 2, 3.9], [0, 1, 2, 3], 0.1, 0)
    expect(r.ok).toBe(false)
    expect(r.firstBad).toBe(1)
    expect(r.maxAbsDiff).toBeCloseTo(0.9, 10)
  })

  it('fails on length mismatch', () => {
    expect(tensorsClose([1, 2], [1], 1, 1)).toEqual({ ok: false, maxAbsDiff: Number.POSITIVE_INFINITY, firstBad: 0 })
  })

  it('treats NaN as equal to NaN only, and an infinity as equal to itself only', () => {
    expect(tensorsClose([Number.NaN], [Number.NaN], 0, 0).ok).toBe(true)
    expect(tensorsClose([Number.NaN], [1], 10, 10)).toMatchObject({
      ok: false,
      firstBad: 0,
      maxAbsDiff: Number.POSITIVE_INFINITY,
    })
    expect(tensorsClose([1], [Number.NaN], 10, 10).ok).toBe(false)
    expect(tensorsClose([Number.NEGATIVE_INFINITY, 1], [Number.NEGATIVE_INFINITY, 1], 0, 0)).toEqual({
      ok: true,
      maxAbsDiff: 0,
      firstBad: -1,
    })
    expect(tensorsClose([Number.POSITIVE_INFINITY], [Number.NEGATIVE_INFINITY], 1e9, 1e9).ok).toBe(false)
    expect(tensorsClose([Number.POSITIVE_INFINITY], [1e308], 1e9, 0.5).ok).toBe(false)
  })

  it('compares typed arrays and bigints', () => {
    expect(tensorsClose(new Float32Array([0.1]), new Float64Array([0.1]), 1e-7, 0).ok).toBe(true)
    expect(tensorsClose(new BigInt64Array([5n, 6n]), [5, 6], 0, 0).ok).toBe(true)
    expect(tensorsClose(new BigInt64Array([5n, 7n]), [5, 6], 0, 0).firstBad).toBe(1)
  })
})
