// The manifest's meta applied by the local API [EF-7.1.3]: normalisation along
// the channel axis of any layout, and labelled results after softmax/sigmoid,
// threshold and top-k, checked against values worked out by hand.
import { describe, expect, it } from 'vitest'
import type { TensorsMeta } from '@edgefleet/shared'
import { postprocessOutputs, preprocessInputs } from '../../src/api/meaning.js'

describe('preprocessInputs', () => {
  const normalize = { scale: 1 / 255, mean: [0.5, 0.25], std: [0.5, 0.25] }
  const meta: TensorsMeta = { inputs: { img: { layout: 'NCHW', normalize } } }
  it('normalises each channel of an NCHW uint8 tensor into float32', () => {
    // 1×2×1×2: channel 0 holds 0 and 255, channel 1 holds 255 and 0.
    const out = preprocessInputs(meta, {
      img: { type: 'uint8', dims: [1, 2, 1, 2], data: new Uint8Array([0, 255, 255, 0]) },
    })
    expect(out.img.type).toBe('float32')
    expect(Array.from(out.img.data, Number)).toEqual([-1, 1, 3, -1])
  })
  it('finds the channel axis of NHWC (last)', () => {
    const nhwc: TensorsMeta = { inputs: { img: { layout: 'NHWC', normalize } } }
    const out = preprocessInputs(nhwc, {
      img: { type: 'uint8', dims: [1, 1, 2, 2], data: new Uint8Array([0, 255, 255, 0]) },
    })
    expect(Array.from(out.img.data, Number)).toEqual([-1, 3, 1, -1])
  })
  it('refuses a tensor whose channel axis has another size (EF_ERR_INFER_BAD_TENSOR)', () => {
    expect(() =>
      preprocessInputs(meta, { img: { type: 'float32', dims: [1, 3, 1, 1], data: new Float32Array(3) } }),
    ).toThrow(expect.objectContaining({ code: 'EF_ERR_INFER_BAD_TENSOR' }))
  })
  it('leaves inputs without meta untouched (same object)', () => {
    const x = { type: 'float32' as const, dims: [1], data: new Float32Array([7]) }
    expect(preprocessInputs(meta, { x }).x).toBe(x)
    expect(preprocessInputs(undefined, { x }).x).toBe(x)
  })
})

describe('postprocessOutputs', () => {
  const logits = { type: 'float32' as const, dims: [2, 3], data: new Float32Array([1, 2, 3, 0, 0, Math.log(2)]) }
  it('softmax over the last axis, best first, top-k per row', () => {
    const r = postprocessOutputs(
      { outputs: { y: { labels: ['a', 'b', 'c'], postprocess: { activation: 'softmax', topK: 2 } } } },
      { y: logits },
    )
    const rows = (r.y as { rows: { label: string; index: number; score: number }[][] }).rows
    const z = Math.exp(1) + Math.exp(2) + Math.exp(3)
    expect(rows[0].map((s) => s.label)).toEqual(['c', 'b'])
    expect(rows[0][0].score).toBeCloseTo(Math.exp(3) / z, 6)
    expect(rows[0][1].score).toBeCloseTo(Math.exp(2) / z, 6)
    expect(rows[1][0]).toMatchObject({ label: 'c', index: 2 })
    expect(rows[1][0].score).toBeCloseTo(0.5, 6)
  })
  it('sigmoid with a threshold keeps only the classes above it; indices stand in for missing labels', () => {
    const r = postprocessOutputs(
      { outputs: { y: { postprocess: { activation: 'sigmoid', threshold: 0.6 }, units: 'probability' } } },
      { y: logits },
    )
    const rows = (r.y as { rows: { label: string; score: number }[][]; units: string }).rows
    expect(rows[0].map((s) => s.label)).toEqual(['2', '1', '0'])
    expect(rows[1].map((s) => s.label)).toEqual(['2'])
    expect(rows[1][0].score).toBeCloseTo(2 / 3, 6)
    expect((r.y as { units: string }).units).toBe('probability')
  })
  it('an output with units only is returned as values; outputs without meta are left out', () => {
    const r = postprocessOutputs({ outputs: { t: { units: '°C' } } }, { t: logits, other: logits })
    expect(r).toEqual({ t: { units: '°C', dims: [2, 3], values: Array.from(logits.data) } })
  })
})
