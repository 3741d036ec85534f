// Property-based fuzzing of the one .npy codec (shared/src/npy.ts): real
// files mutated, headers with hostile versions, dtypes and shapes, random
// bytes. Properties: decodeNpy returns a tensor whose data length matches its
// dims or throws EF_ERR_NPY_INVALID, within a time bound; what npyOfTensor
// writes from a wire tensor reads back with the same type and dims.
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  EdgeFleetError,
  TENSOR_TYPES,
  bytesPerElement,
  decodeNpy,
  encodeNpy,
  npyOfTensor,
  type TensorValue,
} from '../../src/index.js'
import { fuzzParams, mutatedBytes, withinMs } from '../../../test/support/fuzz.mjs'

/** Runs `fn`; a throw must be an EdgeFleetError with `code`. */
function acceptsOrRefuses<T>(code: string, what: string, fn: () => T): T | undefined {
  try {
    return withinMs(2000, what, fn)
  } catch (err) {
    if (!(err instanceof EdgeFleetError)) throw new Error(`${what}: uncoded ${String(err)}`, { cause: err })
    expect(err.code).toBe(code)
    return undefined
  }
}

const samples = [
  encodeNpy('float32', [2, 3], Float32Array.from([1, 2, 3, 4, 5, 6])),
  encodeNpy('int64', [4], BigInt64Array.from([1n, -2n, 3n, 4n])),
  encodeNpy('uint8', [0], new Uint8Array(0)),
  encodeNpy('float64', [], Float64Array.from([Math.PI])),
  encodeNpy('float16', [2], Uint16Array.from([0x3c00, 0x7c00])),
]

/** A syntactically plausible header with hostile version, descr and shape fields. */
const header = fc
  .tuple(
    fc.oneof({ weight: 4, arbitrary: fc.constantFrom(1, 2, 3) }, fc.constantFrom(0, 4, 255)),
    fc.oneof(
      fc.constantFrom('<f4', '>f8', '|u1', '<i8', '>u8', '<f2', '|b1', '=i4', '<c8', '<U10', '|O', '<f16', '<f4f4'),
      fc.string({ maxLength: 8 }),
    ),
    fc.oneof({ weight: 4, arbitrary: fc.constant('False') }, fc.constantFrom('True', 'false', '')),
    fc.array(
      fc.oneof(
        fc.nat(8).map(String),
        fc.constantFrom('0', '-1', '1e3', '1e308', '0x10', 'inf', 'nan', '99999999999', '1.5', '', ' ', 'L'),
      ),
      { maxLength: 6 },
    ),
    fc.nat(512),
  )
  .map(([major, descr, fortran, shape, randomBytes]) => {
    // Half the cases carry exactly the bytes the header asks for (when that is a small, computable amount).
    const exact = shape.reduce((a, d) => a * Number(d), 1) * Number(/\d+$/.exec(descr)?.[0] ?? NaN)
    const dataBytes =
      randomBytes % 2 === 0 && Number.isSafeInteger(exact) && exact >= 0 && exact < 1e6 ? exact : randomBytes
    const text = Buffer.from(`{'descr': '${descr}', 'fortran_order': ${fortran}, 'shape': (${shape.join(', ')}), }\n`)
    const head = Buffer.alloc(major === 1 ? 10 : 12)
    head.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, major, 0])
    if (major === 1) head.writeUInt16LE(text.length, 8)
    else head.writeUInt32LE(text.length, 8)
    return Buffer.concat([head, text, Buffer.alloc(dataBytes, 0x41)])
  })

const npyBytes = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...samples).chain((s) => mutatedBytes(s)) },
  { weight: 3, arbitrary: header },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 256 }) },
)

/** A wire tensor whose data matches its type and dims, or with dims at the edges of the schema. */
const tensorValue = fc.oneof(
  fc
    .tuple(fc.constantFrom(...TENSOR_TYPES), fc.array(fc.nat(4), { maxLength: 4 }), fc.boolean())
    .chain(([type, dims, asB64]): fc.Arbitrary<TensorValue> => {
      const count = dims.reduce((a, b) => a * b, 1)
      const size = count * bytesPerElement(type)
      return asB64
        ? fc
            .uint8Array({ minLength: size, maxLength: size })
            .map((b) => ({ type, dims, b64: Buffer.from(b).toString('base64') }))
        : fc
            .array(fc.integer({ min: 0, max: 1 }), { minLength: count, maxLength: count })
            .map((data) => ({ type, dims, data }))
    }),
  fc.record({
    type: fc.constantFrom(...TENSOR_TYPES),
    dims: fc.array(fc.oneof(fc.nat(4), fc.constantFrom(2 ** 53, 1e21, 1e308)), { maxLength: 4 }),
    b64: fc.base64String({ maxLength: 64 }),
  }),
)

describe('fuzz: .npy codec', () => {
  it('decodeNpy: a tensor whose data matches its dims, or EF_ERR_NPY_INVALID', () => {
    let read = 0
    fc.assert(
      fc.property(npyBytes, (bytes) => {
        const t = acceptsOrRefuses('EF_ERR_NPY_INVALID', 'decodeNpy', () => decodeNpy(bytes))
        if (!t) return
        read++
        expect(t.dims.every((d) => Number.isSafeInteger(d) && d >= 0)).toBe(true)
        expect(t.data.length).toBe(t.dims.reduce((a, b) => a * b, 1))
      }),
      fuzzParams('npy decode', 1000),
    )
    expect(read).toBeGreaterThan(20)
  })

  it('npyOfTensor writes what decodeNpy reads back, or refuses with EF_ERR_INFER_BAD_TENSOR', () => {
    let written = 0
    fc.assert(
      fc.property(tensorValue, (t) => {
        const bytes = acceptsOrRefuses('EF_ERR_INFER_BAD_TENSOR', 'npyOfTensor', () => npyOfTensor('x', t))
        if (!bytes) return
        written++
        const back = decodeNpy(bytes)
        expect({ type: back.type, dims: back.dims }).toEqual({ type: t.type, dims: t.dims })
      }),
      fuzzParams('npy write-read', 800),
    )
    expect(written).toBeGreaterThan(20)
  })

  // Found by the write-read property: a wire tensor with dims [0, 1e21] (0 elements) was written as an .npy
  // whose shape no reader takes (and the hub had stored such samples) [EF-2.5, EF-2.9.4].
  it('npyOfTensor: dims [0, 1e21] → EF_ERR_INFER_BAD_TENSOR', () => {
    expect(() => npyOfTensor('x', { type: 'float32', dims: [0, 1e21], b64: '' })).toThrow(
      expect.objectContaining({ code: 'EF_ERR_INFER_BAD_TENSOR' }),
    )
  })
})
