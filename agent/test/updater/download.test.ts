// Resumable, windowed, verified chunk download [EF-2.7, EF-4.3] against an
// in-memory transport.
import { randomBytes } from 'node:crypto'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { EdgeFleetError, chunkArtifact, fixedBoundaries, type Manifest } from '@edgefleet/shared'
import { ChunkStore } from '../../src/updater/chunks.js'
import { download } from '../../src/updater/download.js'
import { FakeTransport, tempDir } from '../fixtures/agent.js'

const CHUNK = 1024
const CHUNKS = 12
const bytes = randomBytes(CHUNK * (CHUNKS - 1) + 300) // the last chunk is short
const chunked = chunkArtifact(bytes, fixedBoundaries(bytes.length, CHUNK))
// download() reads only the artifact member of the manifest.
const manifest = {
  artifact: { format: 'onnx', digest: chunked.digest, size: chunked.size, chunks: chunked.chunks },
} as unknown as Manifest

describe('download', () => {
  let t: ReturnType<typeof tempDir>
  let store: ChunkStore
  let tr: FakeTransport
  beforeEach(() => {
    t = tempDir()
    store = new ChunkStore(t.dir)
    tr = new FakeTransport().add({ bytes, chunked })
  })
  afterEach(() => t.cleanup())

  const assembled = () => Buffer.concat(chunked.chunks.map((c) => store.get(c.digest)!))

  it('fetches every chunk of an empty store and reports progress up to the total', async () => {
    expect(chunked.chunks).toHaveLength(CHUNKS)
    const progress: [number, number][] = []
    const stats = await download(manifest, store, tr, {
      window: 4,
      timeoutMs: 10_000,
      onProgress: (b, total) => progress.push([b, total]),
    })
    expect(stats).toMatchObject({
      fetched: CHUNKS,
      fetchedBytes: bytes.length,
      rejected: 0,
      duplicates: 0,
      receivedBytes: bytes.length,
    })
    expect(assembled().equals(bytes)).toBe(true)
    expect([...tr.requested].sort((a, b) => a - b)).toEqual([...Array(CHUNKS).keys()])
    expect(progress.at(-1)).toEqual([bytes.length, bytes.length])
    // Subscribed for the download, unsubscribed after it.
    expect(tr.subscribeCalls).toBe(1)
    expect(tr.subscribed.size).toBe(0)
  })

  it('resumes: chunks already held are not requested again', async () => {
    const held = [0, 1, 2, 7]
    for (const i of held) store.put(chunked.chunks[i].digest, bytes.subarray(i * CHUNK, (i + 1) * CHUNK))
    const stats = await download(manifest, store, tr, { window: 4, timeoutMs: 10_000 })
    const missing = [...Array(CHUNKS).keys()].filter((i) => !held.includes(i))
    expect([...tr.requested].sort((a, b) => a - b)).toEqual(missing)
    expect(stats.fetched).toBe(missing.length)
    expect(stats.fetchedBytes).toBe(bytes.length - held.length * CHUNK)
    expect(assembled().equals(bytes)).toBe(true)
  })

  it('does nothing (not even subscribe) when every chunk is held', async () => {
    chunked.chunks.forEach((c, i) => store.put(c.digest, bytes.subarray(i * CHUNK, i * CHUNK + c.size)))
    expect(await download(manifest, store, tr, { window: 4, timeoutMs: 1000 })).toMatchObject({
      fetched: 0,
      fetchedBytes: 0,
      rejected: 0,
      receivedBytes: 0,
    })
    expect(tr.subscribeCalls).toBe(0)
    expect(tr.requested).toEqual([])
  })

  it('rejects a damaged chunk, reports it and fetches it again [EF-4.3]', async () => {
    tr.corrupt.set(5, 1)
    const rejected: number[] = []
    const stats = await download(manifest, store, tr, {
      window: 4,
      timeoutMs: 10_000,
      onRejected: (i) => rejected.push(i),
    })
    expect(rejected).toEqual([5])
    expect(stats.rejected).toBe(1)
    expect(stats.fetched).toBe(CHUNKS)
    expect(tr.count(5)).toBe(2)
    expect(assembled().equals(bytes)).toBe(true)
  })

  it('gives up with EF_ERR_CHUNK_HASH_MISMATCH when a chunk is always damaged', async () => {
    tr.corrupt.set(3, Number.POSITIVE_INFINITY)
    const rejected: number[] = []
    const err = await download(manifest, store, tr, {
      window: 4,
      timeoutMs: 10_000,
      maxRejectsPerChunk: 3,
      onRejected: (i) => rejected.push(i),
    }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(EdgeFleetError)
    expect((err as EdgeFleetError).code).toBe('EF_ERR_CHUNK_HASH_MISMATCH')
    expect(rejected).toEqual([3, 3, 3])
    expect(store.has(chunked.chunks[3].digest)).toBe(false)
    expect(tr.subscribed.size).toBe(0)
  })

  it('ignores chunks of other artifacts and of wrong size', async () => {
    const p = download(manifest, store, tr, { window: 2, timeoutMs: 10_000 })
    await new Promise((r) => setImmediate(r))
    tr.inject('f'.repeat(64), 0, Buffer.from('other artifact'))
    const stats = await p
    expect(stats.rejected).toBe(0)
    expect(assembled().equals(bytes)).toBe(true)
  })

  it('asks again for requests that were dropped, after stallMs', async () => {
    tr.drop.set(2, 1)
    tr.drop.set(9, 1)
    const started = Date.now()
    const stats = await download(manifest, store, tr, { window: 4, timeoutMs: 10_000, stallMs: 150 })
    expect(stats.fetched).toBe(CHUNKS)
    expect(tr.count(2)).toBe(2)
    expect(tr.count(9)).toBe(2)
    expect(Date.now() - started).toBeGreaterThanOrEqual(150)
    expect(assembled().equals(bytes)).toBe(true)
  })

  it.each([1, 3, 5])('never has more than window=%i requests outstanding', async (window) => {
    await download(manifest, store, tr, { window, timeoutMs: 10_000 })
    expect(tr.maxInFlight).toBeLessThanOrEqual(window)
    // ...and does use the window it has.
    expect(tr.maxInFlight).toBe(window)
  })

  it('times out with EF_ERR_DOWNLOAD_TIMEOUT when nothing arrives, re-asking meanwhile', async () => {
    tr.silent = true
    const err = await download(manifest, store, tr, { window: 4, timeoutMs: 400, stallMs: 100 }).catch(
      (e: unknown) => e,
    )
    expect((err as EdgeFleetError).code).toBe('EF_ERR_DOWNLOAD_TIMEOUT')
    expect((err as Error).message).toContain(`${CHUNKS} of ${CHUNKS} chunks missing`)
    expect(tr.count(0)).toBeGreaterThanOrEqual(2)
    expect(tr.subscribed.size).toBe(0)
  })
})
