import { describe, expect, it } from 'vitest'
import { DEFAULT_CHUNK_SIZE, chunkArtifact, chunkOffsets, fixedBoundaries, sha256Hex } from '../src/index.js'

function bytes(n: number, seed = 1): Uint8Array {
  const out = new Uint8Array(n)
  let x = seed
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0
    out[i] = x >>> 24
  }
  return out
}

describe('fixedBoundaries [EF-4]', () => {
  it('cuts every chunkSize bytes, never at 0 or at the end', () => {
    expect(fixedBoundaries(0, 4)).toEqual([])
    expect(fixedBoundaries(3, 4)).toEqual([])
    expect(fixedBoundaries(4, 4)).toEqual([])
    expect(fixedBoundaries(5, 4)).toEqual([4])
    expect(fixedBoundaries(8, 4)).toEqual([4])
    expect(fixedBoundaries(9, 4)).toEqual([4, 8])
  })

  it('defaults to 256 KiB', () => {
    expect(DEFAULT_CHUNK_SIZE).toBe(262_144)
    expect(fixedBoundaries(DEFAULT_CHUNK_SIZE * 2 + 1)).toEqual([DEFAULT_CHUNK_SIZE, DEFAULT_CHUNK_SIZE * 2])
  })

  it.each([0, -1, 1.5, Number.NaN])('refuses chunkSize %s', (size) => {
    expect(() => fixedBoundaries(10, size)).toThrow(RangeError)
  })
})

describe('chunkArtifact', () => {
  it('addresses the whole and every chunk by sha256', () => {
    const data = bytes(10)
    const a = chunkArtifact(data, fixedBoundaries(data.length, 4))
    expect(a.digest).toBe(sha256Hex(data))
    expect(a.size).toBe(10)
    expect(a.chunks).toEqual([
      { digest: sha256Hex(data.subarray(0, 4)), size: 4 },
      { digest: sha256Hex(data.subarray(4, 8)), size: 4 },
      { digest: sha256Hex(data.subarray(8, 10)), size: 2 },
    ])
  })

  it('makes exactly-full chunks when the size is a multiple of the chunk size', () => {
    const a = chunkArtifact(bytes(8), fixedBoundaries(8, 4))
    expect(a.chunks.map((c) => c.size)).toEqual([4, 4])
  })

  it('uses one chunk when no cut is given, and default 256 KiB chunks otherwise', () => {
    expect(chunkArtifact(bytes(1000), []).chunks).toHaveLength(1)
    const big = bytes(DEFAULT_CHUNK_SIZE + 7)
    expect(chunkArtifact(big).chunks.map((c) => c.size)).toEqual([DEFAULT_CHUNK_SIZE, 7])
  })

  it('turns an empty artifact into one empty chunk', () => {
    const empty = sha256Hex(new Uint8Array(0))
    expect(chunkArtifact(new Uint8Array(0))).toEqual({ digest: empty, size: 0, chunks: [{ digest: empty, size: 0 }] })
    expect(() => chunkArtifact(new Uint8Array(0), [0])).toThrow(RangeError)
  })

  it('shares chunk digests between versions that differ in one region only', () => {
    const v1 = bytes(16)
    const v2 = Uint8Array.from(v1)
    v2[9] ^= 0xff
    const c1 = chunkArtifact(v1, fixedBoundaries(16, 4)).chunks.map((c) => c.digest)
    const c2 = chunkArtifact(v2, fixedBoundaries(16, 4)).chunks.map((c) => c.digest)
    expect(c2.filter((d, i) => d !== c1[i])).toHaveLength(1)
    expect(c2[2]).not.toBe(c1[2])
  })

  it.each([
    ['zero-length piece at the start', [0]],
    ['descending cuts', [6, 3]],
    ['repeated cut', [3, 3]],
    ['cut at the end', [10]],
    ['cut past the end', [11]],
  ])('refuses bad boundaries: %s', (_label, cuts) => {
    expect(() => chunkArtifact(bytes(10), cuts)).toThrow(RangeError)
  })

  it('works on a subarray view without reading outside it', () => {
    const backing = bytes(32)
    const view = backing.subarray(8, 20)
    expect(chunkArtifact(view, [6]).digest).toBe(sha256Hex(Uint8Array.from(view)))
    expect(chunkArtifact(view, [6]).chunks[1]).toEqual({ digest: sha256Hex(backing.subarray(14, 20)), size: 6 })
  })
})

describe('chunkOffsets', () => {
  it('derives offsets from sizes', () => {
    expect(chunkOffsets([])).toEqual([])
    expect(
      chunkOffsets([
        { digest: 'x', size: 4 },
        { digest: 'y', size: 4 },
        { digest: 'z', size: 2 },
      ]),
    ).toEqual([0, 4, 8])
  })

  it('lets the artifact be reassembled from its chunks', () => {
    const data = bytes(1001)
    const a = chunkArtifact(data, fixedBoundaries(data.length, 100))
    const offsets = chunkOffsets(a.chunks)
    const out = new Uint8Array(a.size)
    a.chunks.forEach((c, i) => out.set(data.subarray(offsets[i], offsets[i] + c.size), offsets[i]))
    expect(sha256Hex(out)).toBe(a.digest)
    expect(offsets.at(-1)! + a.chunks.at(-1)!.size).toBe(a.size)
  })
})
