// The device-side privacy filter [EF-2.9.5]: dropped, hashed, audio and
// blanked inputs, on copies (the live tensors stay as inference saw them),
// failing closed when a region cannot be applied.
import { createHmac } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { filterInputs, filterOutputs, keptInputNames } from '../../src/capture/privacy.js'
import type { Tensor } from '../../src/runtime/session.js'

const KEY = '0123456789abcdef0123456789abcdef'

/** A float32 tensor whose every element is `fill`. */
function filled(dims: number[], fill = 1): Tensor {
  return { type: 'float32', dims, data: new Float32Array(dims.reduce((a, b) => a * b, 1)).fill(fill) }
}

/** Coordinates (n, c, row, col) of every zero element of an NCHW tensor. */
function zerosNchw(t: Tensor): string[] {
  const [n, c, h, w] = t.dims
  const out: string[] = []
  for (let a = 0; a < n; a++)
    for (let b = 0; b < c; b++)
      for (let row = 0; row < h; row++)
        for (let col = 0; col < w; col++)
          if (t.data[((a * c + b) * h + row) * w + col] === 0) out.push(`${a}${b}${row}${col}`)
  return out
}

describe('capture privacy filter', () => {
  it('drops named inputs and hashes others with the policy key over type, dims and bytes', () => {
    const ids = { type: 'int32' as const, dims: [1, 3], data: new Int32Array([7, 8, 9]) }
    const filtered = filterInputs(
      { image: filled([1, 2]), user: filled([1, 1]), ids },
      { dropInputs: ['user'], hashInputs: ['ids'], hashKey: KEY },
    )
    expect(Object.keys(filtered.inputs)).toEqual(['image'])
    const expected = createHmac('sha256', Buffer.from(KEY, 'hex'))
      .update('int32[1,3]\u0000')
      .update(Buffer.from(ids.data.buffer))
      .digest('hex')
    expect(filtered.report).toEqual({ dropped: ['user'], hashed: { ids: expected } })
  })

  it('keeps audio on the device unless the policy allows it, by name or by the policy naming it', () => {
    const inputs = {
      audio_pcm: filled([1, 16000]),
      features: filled([1, 8]),
      'mic-0': filled([1, 4]),
      dynamic: filled([1, 2]),
    }
    const closed = filterInputs(inputs, { audioInputs: ['features'] })
    expect(Object.keys(closed.inputs)).toEqual(['dynamic'])
    expect(closed.report?.dropped?.sort()).toEqual(['audio_pcm', 'features', 'mic-0'])
    expect(filterInputs(inputs, undefined).report?.dropped?.sort()).toEqual(['audio_pcm', 'mic-0'])
    const open = filterInputs(inputs, { audioInputs: ['features'], allowAudio: true })
    expect(Object.keys(open.inputs).sort()).toEqual(['audio_pcm', 'dynamic', 'features', 'mic-0'])
    expect(open.report).toBeUndefined()
    expect(keptInputNames(Object.keys(inputs), { audioInputs: ['features'] })).toEqual(['dynamic'])
  })

  it('blanks an NCHW rectangle on every batch and channel, clipped to the image, on a copy', () => {
    const live = filled([2, 3, 4, 5])
    const filtered = filterInputs(
      { img: live },
      { blankRegions: [{ input: 'img', layout: 'NCHW', x: 3, y: 2, width: 10, height: 1 }] },
    )
    const zeros = zerosNchw(filtered.inputs.img)
    // Row 2, columns 3-4 (clipped at width 5), for 2 batches x 3 channels.
    expect(zeros).toHaveLength(2 * 3 * 2)
    expect(zeros).toContain('0123')
    expect(zeros).toContain('1224')
    expect(filtered.report).toEqual({ blanked: ['img'] })
    expect(live.data.every((v) => v === 1)).toBe(true)
  })

  it('blanks an NHWC rectangle across its channels', () => {
    const t: Tensor = { type: 'uint8', dims: [1, 3, 3, 2], data: new Uint8Array(18).fill(255) }
    const filtered = filterInputs(
      { img: t },
      { blankRegions: [{ input: 'img', layout: 'NHWC', x: 1, y: 1, width: 1, height: 1 }] },
    )
    const data = Array.from(filtered.inputs.img.data as Uint8Array)
    // Pixel (row 1, col 1) is elements 8 and 9 (two channels); nothing else changes.
    expect(data.map((v, i) => (v === 0 ? i : -1)).filter((i) => i >= 0)).toEqual([8, 9])
  })

  it('drops an input a region cannot be applied to (not 4-d) instead of sending it raw', () => {
    const filtered = filterInputs(
      { img: filled([1, 16]) },
      { blankRegions: [{ input: 'img', layout: 'NCHW', x: 0, y: 0, width: 1, height: 1 }] },
    )
    expect(filtered.inputs).toEqual({})
    expect(filtered.report).toEqual({ dropped: ['img'] })
  })
})

describe('capture privacy filter on outputs', () => {
  it('drops outputs the policy names and audio outputs unless audio is allowed', () => {
    const outputs = { scores: filled([1, 2]), embedding: filled([1, 8]), audio_echo: filled([1, 16]) }
    expect(Object.keys(filterOutputs(outputs, { dropOutputs: ['embedding'] }).outputs)).toEqual(['scores'])
    expect(filterOutputs(outputs, { dropOutputs: ['embedding'] }).dropped).toEqual(['embedding', 'audio_echo'])
    expect(Object.keys(filterOutputs(outputs, { allowAudio: true }).outputs)).toEqual([
      'scores',
      'embedding',
      'audio_echo',
    ])
  })
})
