// Precision stability across versions [EF-5.3] (issue 15): ten versions of a
// real model that differ only in the head (test/support/head-versions.mjs
// retrains the last weighted layers) keep one precision per profile, and
// each version's delta — the chunks, cut as the builder cuts them, that the
// previous build lacks — stays within 1.1 × the tensor bytes that changed.
// No timing (the choice then follows the profile's preference and the
// previous precision alone); figures with timing and the real Builder are in
// docs/benchmarks/compiler.md (test/bench/compiler-stability.mjs).
import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { chunkArtifact, type Precision } from '@edgefleet/shared'
import { compile } from '../../src/compiler/index.js'
import { tensorAlignedBoundaries } from '../../src/distribution/tensor-chunks.js'
import { changedTensorBytes, retrainHead } from '../../../test/support/head-versions.mjs'
import { shipped, testProfile } from '../fixtures/compiler/models.js'

const VERSIONS = 10
/** Preference orders of the shipped profiles' kinds: int8 first (static, dynamic), fp16 first, fp32 first. */
const profiles: { id: string; precisions: Precision[] }[] = [
  { id: 'static-first', precisions: ['int8-static', 'int8-dynamic', 'fp32'] },
  { id: 'dynamic-first', precisions: ['int8-dynamic', 'int8-static', 'fp32'] },
  { id: 'fp16-first', precisions: ['fp16', 'fp32'] },
  { id: 'fp32-first', precisions: ['fp32', 'int8-static'] },
]

describe('ten head-only versions of the wake-word head (Gemm)', () => {
  const source = new Uint8Array(readFileSync(shipped['wake-hello'].file))

  it.each(profiles)(
    '$id: one precision, delta ≤ 1.1 × changed tensor bytes',
    async ({ id, precisions }) => {
      const profile = testProfile({ id, precisions })
      let previous: { precision: Precision; bytes: Uint8Array; chunks: Set<string> } | undefined
      const seen: Precision[] = []
      for (let version = 0; version < VERSIONS; version++) {
        const model = version === 0 ? source : (await retrainHead(source, { seed: version, nodes: 2 })).bytes
        const built = await compile(model, profile, {
          timing: false,
          measureRam: false,
          previousPrecision: previous?.precision,
        })
        seen.push(built.precision)
        // The builder's chunking (hub/src/build/builder.ts): what a device holding the previous build fetches.
        const { chunks } = chunkArtifact(built.bytes, tensorAlignedBoundaries(built.bytes))
        if (previous) {
          const delta = chunks.filter((c) => !previous!.chunks.has(c.digest)).reduce((s, c) => s + c.size, 0)
          const changed = await changedTensorBytes(previous.bytes, built.bytes)
          expect(changed, `version ${version}: the head changed`).toBeGreaterThan(0)
          expect(delta, `version ${version}: delta ${delta} B vs ${changed} B changed`).toBeLessThanOrEqual(
            1.1 * changed,
          )
        }
        previous = { precision: built.precision, bytes: built.bytes, chunks: new Set(chunks.map((c) => c.digest)) }
      }
      expect(new Set(seen)).toEqual(new Set([precisions[0]]))
    },
    60_000,
  )
})
