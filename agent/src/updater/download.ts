// Fetches the chunks of one artifact that the chunk store lacks [EF-2.7]:
// subscribe to the artifact's chunk topics first, then ask for at most
// `window` chunks at a time, verify each chunk's sha256, keep it on disk (so
// a restart resumes), and re-ask for what does not arrive.
import { EdgeFleetError, sha256Hex, type Manifest } from '@edgefleet/shared'
import type { ChunkStore } from './chunks.js'

export interface ChunkTransport {
  subscribeArtifact(digest: string): Promise<void>
  unsubscribeArtifact(digest: string): Promise<void>
  requestChunks(digest: string, indexes: number[]): void
  /** Registers a chunk listener; returns its remover. */
  onChunk(fn: (digest: string, index: number, payload: Buffer) => void): () => void
}

export interface DownloadOptions {
  window: number
  timeoutMs: number
  /** Re-ask for outstanding chunks after this long without any arriving. */
  stallMs?: number
  onProgress?: (bytes: number, total: number) => void
  onRejected?: (index: number) => void
  /** Give up when one chunk fails its hash this many times (the source itself is damaged). */
  maxRejectsPerChunk?: number
}

export interface DownloadStats {
  /** Chunks that had to come over the network (the rest were already held). */
  fetched: number
  fetchedBytes: number
  rejected: number
}

export async function download(manifest: Manifest, store: ChunkStore, transport: ChunkTransport, opts: DownloadOptions): Promise<DownloadStats> {
  const { chunks, digest } = manifest.artifact
  const total = manifest.artifact.size
  const missing: number[] = []
  let have = 0
  chunks.forEach((c, i) => {
    if (store.has(c.digest)) have += c.size
    else missing.push(i)
  })
  const stats: DownloadStats = { fetched: 0, fetchedBytes: 0, rejected: 0 }
  if (missing.length === 0) return stats
  await transport.subscribeArtifact(digest)
  const todo = new Set(missing)
  const queue = [...missing]
  const outstanding = new Set<number>()
  const stallMs = opts.stallMs ?? 3000
  const rejects = new Map<number, number>()
  try {
    await new Promise<void>((resolve, reject) => {
      let lastProgress = Date.now()
      const started = Date.now()
      const pump = () => {
        const batch: number[] = []
        while (outstanding.size < opts.window && queue.length > 0) {
          const i = queue.shift()!
          if (!todo.has(i) || outstanding.has(i)) continue
          outstanding.add(i)
          batch.push(i)
        }
        if (batch.length) transport.requestChunks(digest, batch)
      }
      const off = transport.onChunk((d, index, payload) => {
        if (d !== digest || !todo.has(index)) return
        const ref = chunks[index]
        if (payload.length !== ref.size || sha256Hex(payload) !== ref.digest) {
          // A damaged chunk is dropped and asked for again [EF-4.3].
          stats.rejected++
          opts.onRejected?.(index)
          const n = (rejects.get(index) ?? 0) + 1
          rejects.set(index, n)
          if (n >= (opts.maxRejectsPerChunk ?? 5)) {
            finish()
            reject(new EdgeFleetError('EF_ERR_CHUNK_HASH_MISMATCH', `chunk ${index} failed its sha256 check ${n} times`))
            return
          }
          outstanding.delete(index)
          queue.push(index)
          pump()
          return
        }
        store.put(ref.digest, payload)
        todo.delete(index)
        outstanding.delete(index)
        stats.fetched++
        stats.fetchedBytes += payload.length
        have += payload.length
        lastProgress = Date.now()
        opts.onProgress?.(have, total)
        if (todo.size === 0) {
          finish()
          resolve()
        } else pump()
      })
      const timer = setInterval(() => {
        const now = Date.now()
        if (now - started > opts.timeoutMs) {
          finish()
          reject(new EdgeFleetError('EF_ERR_DOWNLOAD_TIMEOUT', `${todo.size} of ${chunks.length} chunks missing after ${opts.timeoutMs} ms`))
        } else if (now - lastProgress > stallMs) {
          // Nothing arrived for a while (lost fetch, broker restart): ask again for everything outstanding.
          for (const i of outstanding) queue.unshift(i)
          outstanding.clear()
          lastProgress = now
          pump()
        }
      }, Math.min(500, stallMs))
      const finish = () => {
        clearInterval(timer)
        off()
      }
      pump()
    })
  } finally {
    await transport.unsubscribeArtifact(digest).catch(() => undefined)
  }
  return stats
}
