// Tensor-aligned chunking: a head-only change moves about only the head's bytes.
import { describe, it, expect } from 'vitest'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { chunkArtifact, fixedBoundaries } from '@edgefleet/shared'
import { tensorAlignedBoundaries, MIN_TENSOR_CHUNK } from '../../src/distribution/tensor-chunks.js'
import { decodeModel, encodeModel } from '../../src/compiler/onnx/proto.js'

const ROOT = join(import.meta.dirname, '..', '..', '..')
const WAKE = join(ROOT, 'node_modules', 'openwakeword-js', 'models', 'hello_deepa.onnx')
const CLS = join(ROOT, 'node_modules', '@gutenye', 'ocr-models', 'assets', 'ch_ppocr_mobile_v2.0_cls_infer.onnx')

/** Bytes of `next`'s chunks that `prev` does not hold: what an update moves. */
function moved(prev: Uint8Array, next: Uint8Array, cutter: (b: Uint8Array) => number[]): number {
  const have = new Set(chunkArtifact(prev, cutter(prev)).chunks.map((c) => c.digest))
  return chunkArtifact(next, cutter(next))
    .chunks.filter((c) => !have.has(c.digest))
    .reduce((a, c) => a + c.size, 0)
}

function reinitialise(
  file: string,
  find: (name: string) => boolean,
): { before: Uint8Array; after: Uint8Array; changed: number } {
  const before = readFileSync(file)
  const model = decodeModel(before) as unknown as {
    graph: {
      initializer: { name: string; raw_data: Uint8Array }[]
      node: { op_type: string; attribute: { t?: { name: string; raw_data: Uint8Array } }[]; output: string[] }[]
    }
  }
  let changed = 0
  for (const t of model.graph.initializer ?? []) {
    if (find(t.name) && t.raw_data?.length) {
      t.raw_data = new Uint8Array(randomBytes(t.raw_data.length))
      changed += t.raw_data.length
    }
  }
  for (const n of model.graph.node ?? []) {
    for (const a of n.attribute ?? []) {
      if (a.t && find(n.output[0] ?? '') && a.t.raw_data?.length) {
        a.t.raw_data = new Uint8Array(randomBytes(a.t.raw_data.length))
        changed += a.t.raw_data.length
      }
    }
  }
  return { before, after: encodeModel(model as never), changed }
}

describe('tensor-aligned chunking', () => {
  it('cuts at tensor boundaries and covers the file exactly', () => {
    const b = readFileSync(WAKE)
    const cuts = tensorAlignedBoundaries(b)
    const c = chunkArtifact(b, cuts)
    expect(c.chunks.reduce((a, x) => a + x.size, 0)).toBe(b.length)
    expect(cuts).toEqual([...cuts].sort((x, y) => x - y))
    expect(c.chunks.every((x) => x.size <= 256 * 1024)).toBe(true)
  })

  it('moves ≤ 1.1× the bytes of a re-initialised last Gemm of a wake-word head; fixed chunks move far more', () => {
    const { before, after, changed } = reinitialise(WAKE, (n) => n === 'last_layer.weight')
    expect(changed).toBeGreaterThanOrEqual(MIN_TENSOR_CHUNK)
    const aligned = moved(before, after, tensorAlignedBoundaries)
    const fixed = moved(before, after, (b) => fixedBoundaries(b.length))
    expect(aligned / changed).toBeLessThanOrEqual(1.1)
    expect(fixed).toBeGreaterThan(10 * aligned)
  })

  it('does the same for the classifier of the OCR cls model (weights in Constant nodes)', () => {
    const { before, after, changed } = reinitialise(CLS, (n) => n.startsWith('fc_0'))
    expect(changed).toBeGreaterThan(0)
    expect(moved(before, after, tensorAlignedBoundaries) / changed).toBeLessThanOrEqual(1.1)
  })

  it('falls back to fixed-size cuts for bytes that are not ONNX', () => {
    const junk = new Uint8Array(randomBytes(600_000))
    expect(tensorAlignedBoundaries(junk)).toEqual(fixedBoundaries(junk.length))
  })
})
