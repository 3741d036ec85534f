// The optional HTTP path [EF-4.10]: missing chunks are fetched with range
// requests against the hub, contiguous chunks in one request, each chunk
// checked against its sha256 before it is stored (the same chunk store as the
// MQTT path, so either path resumes what the other began). Over https the
// hub's certificate must chain to the agent's CA [EF-10.4].
import { get as httpGet, type IncomingMessage } from 'node:http'
import { get as httpsGet } from 'node:https'
import { EdgeFleetError, chunkOffsets, isUntrustedPeerError, sha256Hex, type Manifest } from '@edgefleet/shared'
import type { ChunkSink, DownloadStats } from './download.js'

export interface HttpDownloadOptions {
  url: string
  deviceId: string
  secret: string
  /** Largest single range request. */
  maxRangeBytes?: number
  /** Range requests in flight at once. */
  concurrency?: number
  timeoutMs: number
  onProgress?: (bytes: number, total: number) => void
  /** CA (and client certificate) for https:// URLs; without a CA the system's are trusted. */
  tls?: { ca?: Buffer; cert?: Buffer; key?: Buffer }
}

/** One GET (node's http/https rather than fetch: fetch takes no CA of our own without another dependency). */
function get(url: string, headers: Record<string, string>, o: HttpDownloadOptions, signal: AbortSignal) {
  const parsed = new URL(url)
  const https = parsed.protocol === 'https:'
  return new Promise<IncomingMessage>((resolve, reject) => {
    const req = (https ? httpsGet : httpGet)(parsed, { headers, signal, ...(https ? o.tls : {}) }, resolve)
    req.on('error', (err) =>
      reject(
        isUntrustedPeerError(err)
          ? new EdgeFleetError(
              'EF_ERR_TLS_UNTRUSTED_PEER',
              `${parsed.origin}: ${err.message}; the hub's certificate does not chain to the configured CA (--ca)`,
            )
          : err,
      ),
    )
  })
}

export async function httpDownload(
  manifest: Manifest,
  store: ChunkSink,
  options: HttpDownloadOptions,
): Promise<DownloadStats> {
  const { chunks } = manifest.artifact
  const offsets = chunkOffsets(chunks)
  const total = manifest.artifact.size
  const maxRange = options.maxRangeBytes ?? 8 * 1024 * 1024
  const stats: DownloadStats = { fetched: 0, fetchedBytes: 0, rejected: 0, receivedBytes: 0, duplicates: 0 }
  let have = 0
  // Runs of contiguous missing chunks, each at most maxRange bytes.
  const runs: number[][] = []
  let run: number[] = []
  let runBytes = 0
  chunks.forEach((chunk, index) => {
    if (store.has(chunk.digest)) {
      have += chunk.size
      if (run.length) runs.push(run)
      run = []
      runBytes = 0
      return
    }
    if (run.length && (run[run.length - 1] !== index - 1 || runBytes + chunk.size > maxRange)) {
      runs.push(run)
      run = []
      runBytes = 0
    }
    run.push(index)
    runBytes += chunk.size
  })
  if (run.length) runs.push(run)
  const auth = `Basic ${Buffer.from(`${options.deviceId}:${options.secret}`).toString('base64')}`
  const signal = AbortSignal.timeout(options.timeoutMs)

  const fetchRun = async (indexes: number[]) => {
    const start = offsets[indexes[0]]
    const last = indexes[indexes.length - 1]
    const end = offsets[last] + chunks[last].size - 1
    const res = await get(options.url, { authorization: auth, range: `bytes=${start}-${end}` }, options, signal)
    if (res.statusCode !== 206) {
      res.resume()
      throw new EdgeFleetError('EF_ERR_DOWNLOAD_TIMEOUT', `HTTP ${res.statusCode} for bytes ${start}-${end}`)
    }
    let next = 0
    let buf = Buffer.alloc(0)
    for await (const part of res as AsyncIterable<Buffer>) {
      stats.receivedBytes += part.length
      buf = buf.length ? Buffer.concat([buf, part]) : Buffer.from(part)
      while (next < indexes.length && buf.length >= chunks[indexes[next]].size) {
        const ref = chunks[indexes[next]]
        const data = buf.subarray(0, ref.size)
        if (sha256Hex(data) !== ref.digest) {
          stats.rejected++
          throw new EdgeFleetError('EF_ERR_CHUNK_HASH_MISMATCH', `chunk ${indexes[next]} over HTTP`)
        }
        store.put(ref.digest, data)
        stats.fetched++
        stats.fetchedBytes += ref.size
        have += ref.size
        options.onProgress?.(have, total)
        buf = buf.subarray(ref.size)
        next++
      }
    }
    if (next !== indexes.length)
      throw new EdgeFleetError('EF_ERR_ARTIFACT_SIZE_MISMATCH', `range ${start}-${end} ended early`)
  }

  const queue = [...runs]
  const workers = Array.from({ length: Math.min(options.concurrency ?? 2, queue.length) }, async () => {
    for (let r = queue.shift(); r; r = queue.shift()) await fetchRun(r)
  })
  await Promise.all(workers)
  return stats
}
