// The one .npy codec [EF-9.8]: every wire type round-trips, big-endian input
// and format 2/3 headers decode, and every kind of malformed input is
// EF_ERR_NPY_INVALID (never a RangeError from a typed array).
import { describe, expect, it } from 'vitest'
import {
  EdgeFleetError,
  TENSOR_TYPES,
  bytesPerElement,
  decodeNpy,
  encodeNpy,
  npyDescr,
  npyOfTensor,
  typedView,
} from '../src/index.js'

/** A v1 .npy with a hand-written header dict and data. */
function npyWith(header: string, data: Uint8Array = new Uint8Array(0), major = 1): Uint8Array {
  const pre = major === 1 ? 10 : 12
  const h = Buffer.from(header + '\n', 'latin1')
  const out = Buffer.alloc(pre + h.length + data.length)
  Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, major, 0]).copy(out)
  if (major === 1) out.writeUInt16LE(h.length, 8)
  else out.writeUInt32LE(h.length, 8)
  h.copy(out, pre)
  out.set(data, pre + h.length)
  return out
}

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn()
  } catch (err) {
    expect(err).toBeInstanceOf(EdgeFleetError)
    return (err as EdgeFleetError).code
  }
  return undefined
}

describe('npy codec', () => {
  it('round-trips every wire type, header padded to 64 bytes', () => {
    for (const type of TENSOR_TYPES) {
      const raw = new Uint8Array(6 * bytesPerElement(type))
      for (let i = 0; i < raw.length; i++) raw[i] = (i * 37 + 1) & (type === 'bool' ? 1 : 0xff)
      const bytes = encodeNpy(type, [2, 3], raw)
      const dataStart = 10 + bytes.readUInt16LE(8)
      expect(dataStart % 64).toBe(0)
      expect(bytes.subarray(10, dataStart).toString('latin1')).toContain(`'descr': '${npyDescr(type)}'`)
      const back = decodeNpy(bytes)
      expect(back.type).toBe(type)
      expect(back.dims).toEqual([2, 3])
      expect(new Uint8Array(back.data.buffer, back.data.byteOffset, back.data.byteLength)).toEqual(raw)
    }
  })

  it('writes 1-d shapes as numpy does and scalars as ()', () => {
    expect(encodeNpy('float32', [4], new Float32Array(4)).toString('latin1')).toContain("'shape': (4,)")
    const scalar = decodeNpy(encodeNpy('int32', [], new Int32Array([7])))
    expect(scalar.dims).toEqual([])
    expect(Array.from(scalar.data as Int32Array)).toEqual([7])
  })

  it('decodes big-endian data and v2/v3 headers, from an unaligned offset', () => {
    const be = Buffer.alloc(8)
    be.writeFloatBE(1.5, 0)
    be.writeFloatBE(-2, 4)
    const file = npyWith("{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", be, 2)
    const shifted = new Uint8Array(file.length + 1)
    shifted.set(file, 1)
    const t = decodeNpy(shifted.subarray(1))
    expect(t.type).toBe('float32')
    expect(Array.from(t.data as Float32Array)).toEqual([1.5, -2])
    const v3 = npyWith("{'descr': '<i8', 'fortran_order': False, 'shape': (1,), }", new Uint8Array(8).fill(0), 3)
    expect(decodeNpy(v3).data).toBeInstanceOf(BigInt64Array)
  })

  it('encodes a wire tensor (JSON or b64) like its typed array', () => {
    const viaJson = npyOfTensor('x', { type: 'float32', dims: [1, 2], data: [0.5, 2] })
    const viaB64 = npyOfTensor('x', {
      type: 'float32',
      dims: [1, 2],
      b64: Buffer.from(new Float32Array([0.5, 2]).buffer).toString('base64'),
    })
    expect(viaJson.equals(viaB64)).toBe(true)
    expect(Array.from(decodeNpy(viaJson).data as Float32Array)).toEqual([0.5, 2])
  })

  it('refuses to encode data that does not fill the shape (RangeError)', () => {
    expect(() => encodeNpy('float32', [3], new Float32Array(2))).toThrow(RangeError)
  })

  it('malformed input is EF_ERR_NPY_INVALID', () => {
    const ok = (shape: string, descr = '<f4') => `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shape}, }`
    const cases: [string, Uint8Array][] = [
      ['empty', new Uint8Array(0)],
      ['bad magic', Buffer.from('PK\x03\x04 not numpy at all', 'latin1')],
      ['version 9', npyWith(ok('(1,)'), new Uint8Array(4), 9)],
      ['truncated preamble v2', Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 2, 0, 1, 0])],
      ['header longer than file', npyWith(ok('(1,)')).subarray(0, 30)],
      ['no descr', npyWith("{'fortran_order': False, 'shape': (1,), }", new Uint8Array(4))],
      ['fortran order', npyWith("{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }", new Uint8Array(8))],
      ['unknown dtype', npyWith(ok('(1,)', '<c8'), new Uint8Array(8))],
      ['object dtype', npyWith(ok('(1,)', '|O8'), new Uint8Array(8))],
      ['float exponent in shape', npyWith(ok('(1e300,)'), new Uint8Array(4))],
      ['negative dim', npyWith(ok('(-1,)'), new Uint8Array(4))],
      ['hex dim', npyWith(ok('(0x10,)'), new Uint8Array(64))],
      ['huge shape', npyWith(ok('(999999999999999, 999999999999999)'), new Uint8Array(4))],
      ['short data', npyWith(ok('(3,)'), new Uint8Array(11))],
    ]
    for (const [why, bytes] of cases)
      expect(
        codeOf(() => decodeNpy(bytes)),
        why,
      ).toBe('EF_ERR_NPY_INVALID')
  })

  it('decoded data is a fresh array (mutating it leaves the input alone)', () => {
    const file = encodeNpy('uint8', [2], new Uint8Array([1, 2]))
    const t = decodeNpy(file)
    ;(t.data as Uint8Array)[0] = 99
    expect(decodeNpy(file).data).toEqual(typedView('uint8', new Uint8Array([1, 2]).buffer, 0, 2))
  })
})
