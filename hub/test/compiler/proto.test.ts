// ONNX read/write: lossless on real models (byte-identical), byte-stable
// write → read → write after our passes, and clear errors on bad bytes.
import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { decodeModel, encodeModel, toNumber } from '../../src/compiler/onnx/proto.js'
import { shipped } from '../fixtures/compiler/models.js'
import { mlpModel, ifModel } from '../fixtures/compiler/tiny.js'
import { QuantContext } from '../../src/compiler/passes/weights.js'
import { dynamicPass } from '../../src/compiler/passes/dynamic.js'
import { qdqPass, staticTargets } from '../../src/compiler/passes/qdq.js'
import { fp16Pass } from '../../src/compiler/passes/fp16.js'

describe('ONNX protobuf', () => {
  it.each(Object.keys(shipped))('%s: read → write reproduces the file byte for byte', (name) => {
    const bytes = new Uint8Array(readFileSync(shipped[name].file))
    const again = encodeModel(decodeModel(bytes))
    expect(again.byteLength).toBe(bytes.byteLength)
    expect(Buffer.compare(Buffer.from(again), Buffer.from(bytes))).toBe(0)
  })

  it('write → read → write is byte-stable after every pass', () => {
    for (const make of [
      (m: ReturnType<typeof decodeModel>) => dynamicPass(m, new QuantContext(m, 13)),
      (m: ReturnType<typeof decodeModel>) => fp16Pass(m),
      (m: ReturnType<typeof decodeModel>) =>
        qdqPass(m, new QuantContext(m, 13), new Map(staticTargets(m).tensors.map((t) => [t, { min: -1, max: 1 }]))),
    ]) {
      for (const src of [mlpModel(), ifModel()]) {
        const m = decodeModel(src)
        make(m)
        const once = encodeModel(m)
        const twice = encodeModel(decodeModel(once))
        expect(Buffer.compare(Buffer.from(once), Buffer.from(twice))).toBe(0)
      }
    }
  })

  it('keeps what passes do not touch: metadata, producer, opset imports', () => {
    const m = decodeModel(mlpModel())
    dynamicPass(m, new QuantContext(m, 13))
    const back = decodeModel(encodeModel(m))
    expect(back.metadata_props).toEqual([{ key: 'author', value: 'tiny' }])
    expect(back.producer_name).toBe('edgefleet-tests')
    expect(back.opset_import.map((o) => [o.domain ?? '', toNumber(o.version)])).toContainEqual(['', 13])
  })

  it('int64 values stay exact (INT64_MAX, as Slice ends use it, survives a round trip)', () => {
    const m = decodeModel(mlpModel())
    // protobufjs accepts a decimal string for int64 on write; it decodes as an exact Long.
    m.graph!.node[1].attribute.push({ name: 'big', type: 2, i: '9223372036854775807' as unknown as number })
    const back = decodeModel(encodeModel(m))
    expect(String(back.graph!.node[1].attribute.find((a) => a.name === 'big')!.i)).toBe('9223372036854775807')
    expect(() => toNumber(back.graph!.node[1].attribute.find((a) => a.name === 'big')!.i)).toThrow(RangeError)
  })

  it('rejects bytes that are not ONNX, and truncated models, with EF_ERR_MODEL_INVALID', () => {
    expect(() => decodeModel(new TextEncoder().encode('hello, this is not a model'))).toThrow(
      expect.objectContaining({ code: 'EF_ERR_MODEL_INVALID' }),
    )
    const real = new Uint8Array(readFileSync(shipped['wake-hello'].file))
    expect(() => decodeModel(real.subarray(0, real.byteLength - 1000))).toThrow(
      expect.objectContaining({ code: 'EF_ERR_MODEL_INVALID' }),
    )
    expect(() => decodeModel(new Uint8Array(0))).toThrow(expect.objectContaining({ code: 'EF_ERR_MODEL_INVALID' }))
  })
})
