// Body limits of the local API follow the model's inputs [EF-7.1.1].
import { describe, expect, it } from 'vitest'
import type { Manifest } from '@edgefleet/shared'
import { BODY_SLACK_BYTES, JSON_CHARS_PER_ELEMENT, bodyLimit, inputSize } from '../../src/api/limits.js'

const manifestWith = (inputs: Manifest['inputs']) => ({ inputs }) as Manifest
const ceilings = { maxJsonBodyBytes: 8 << 20, maxBodyBytes: 64 << 20 }

describe('body limits', () => {
  it('size a static model: JSON text per element, binary bytes, plus slack', () => {
    const m = manifestWith([
      { name: 'x', type: 'float32', dims: [1, 25, 96] },
      { name: 'ids', type: 'int64', dims: [1, 8] },
    ])
    expect(inputSize(m)).toEqual({ elements: 2408, bytes: 2400 * 4 + 64 })
    expect(bodyLimit(m, false, ceilings)).toBe(2408 * JSON_CHARS_PER_ELEMENT + BODY_SLACK_BYTES)
    expect(bodyLimit(m, true, ceilings)).toBe(2400 * 4 + 64 + BODY_SLACK_BYTES)
  })

  it('cap at the ceilings; symbolic dims, unknown types and unloaded models are bounded too', () => {
    const big = manifestWith([{ name: 'img', type: 'float32', dims: [1, 3, 2048, 2048] }])
    expect(bodyLimit(big, false, ceilings)).toBe(8 << 20)
    expect(bodyLimit(big, true, ceilings)).toBe(3 * 2048 * 2048 * 4 + BODY_SLACK_BYTES)
    const dynamic = manifestWith([{ name: 'x', type: 'float32', dims: ['batch', 96] }])
    expect(inputSize(dynamic)).toBeUndefined()
    expect(bodyLimit(dynamic, false, ceilings)).toBe(8 << 20)
    expect(inputSize(manifestWith([{ name: 'x', type: 'string', dims: [1] }]))).toBeUndefined()
    expect(bodyLimit(undefined, true, ceilings)).toBe(BODY_SLACK_BYTES)
  })
})
