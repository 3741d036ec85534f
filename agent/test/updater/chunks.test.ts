// The content-addressed chunk store [EF-4.2, EF-4.3].
import { randomBytes } from 'node:crypto'
import { existsSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { chunkArtifact, fixedBoundaries, sha256Hex, type Manifest } from '@edgefleet/shared'
import { ChunkStore } from '../../src/updater/chunks.js'
import { tempDir } from '../fixtures/agent.js'

describe('ChunkStore', () => {
  let tmp: ReturnType<typeof tempDir>
  let store: ChunkStore
  beforeEach(() => {
    tmp = tempDir()
    store = new ChunkStore(join(tmp.dir, 'chunks'))
  })
  afterEach(() => tmp.cleanup())

  it('keeps loose chunks by digest and verifies them on read', () => {
    const data = randomBytes(100)
    const d = sha256Hex(data)
    expect(store.has(d)).toBe(false)
    expect(store.get(d)).toBeUndefined()
    store.put(d, data)
    expect(store.has(d)).toBe(true)
    expect(store.get(d)!.equals(data)).toBe(true)
  })

  it('drops a damaged loose chunk instead of returning it', () => {
    const data = randomBytes(100)
    const d = sha256Hex(data)
    store.put(d, data)
    const damaged = Buffer.from(data)
    damaged[10] ^= 1
    writeFileSync(join(tmp.dir, 'chunks', d), damaged)
    expect(store.get(d)).toBeUndefined()
    expect(store.has(d)).toBe(false)
  })

  it('reads chunks of an indexed slot file, evacuates the needed ones before it is overwritten, and prunes the rest', () => {
    const bytes = randomBytes(4000)
    const chunked = chunkArtifact(bytes, fixedBoundaries(bytes.length, 1000))
    const modelPath = join(tmp.dir, 'model.onnx')
    writeFileSync(modelPath, bytes)
    const m = {
      artifact: { digest: chunked.digest, size: chunked.size, chunks: chunked.chunks },
    } as unknown as Manifest
    store.indexSlot(m, modelPath)
    expect(chunked.chunks.every((x) => store.has(x.digest))).toBe(true)
    expect(store.get(chunked.chunks[2].digest)!.equals(bytes.subarray(2000, 3000))).toBe(true)
    expect(readdirSync(join(tmp.dir, 'chunks'))).toEqual([])

    store.evacuate(modelPath, new Set([chunked.chunks[1].digest]))
    writeFileSync(modelPath, 'overwritten')
    expect(store.get(chunked.chunks[1].digest)!.equals(bytes.subarray(1000, 2000))).toBe(true)
    expect(store.has(chunked.chunks[0].digest)).toBe(false)
    expect(existsSync(join(tmp.dir, 'chunks', chunked.chunks[1].digest))).toBe(true)

    store.prune(new Set())
    expect(store.has(chunked.chunks[1].digest)).toBe(false)
  })
})
