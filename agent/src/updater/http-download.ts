// Artifacts over HTTP range requests, from the hub [EF-4.10] or from an
// artifact origin / CDN [EF-4.13]: missing chunks are fetched with range
// requests, contiguous chunks in one request, each chunk checked against the
// signed manifest's sha256 before it is stored (the same chunk store as the
// MQTT path, so any source resumes what another began). A source that answers
// anything but the exact range asked for, stalls, trickles, or sends bytes
// that fail their hash is abandoned with a code; the caller falls back.
import { get as httpGet, type IncomingMessage } from 'node:http'
import { get as httpsGet } from 'node:https'
import { EdgeFleetError, chunkOffsets, isUntrustedPeerError, sha256Hex } from '@edgefleet/shared'
import type { ChunkSink, ChunkedSource, DownloadStats } from './download.js'
import { storageCode } from '../store/faults.js'

export interface HttpDownloadOptions {
  url: string
  /** HTTP Basic device-id:secret, for the hub only: an origin is never sent the device's secret. */
  credentials?: { deviceId: string; secret: string }
  /** Largest single range request. */
  maxRangeBytes?: number
  /** Range requests in flight at once. */
  concurrency?: number
  /** The whole download's budget. */
  timeoutMs: number
  /** Window over which progress is judged (ms): a source that sends less than minBytesPerSec over one is abandoned. */
  stallMs?: number
  /** Slowest acceptable rate, bytes/s, over each stallMs window (0 = only a complete stall counts). */
  minBytesPerSec?: number
  onProgress?: (bytes: number, total: number) => void
  /** CA (and client certificate) for https:// URLs; without a CA the system's are trusted. */
  tls?: { ca?: Buffer | (string | Buffer)[]; cert?: Buffer; key?: Buffer }
}

const defaultHttpDownloadOptions = {
  maxRangeBytes: 8 * 1024 * 1024,
  concurrency: 2,
  /** 10 seconds: long enough for a CDN's cache miss to reach its origin. */
  stallMs: 10_000,
  /** 4 KiB/s (32 kbit/s): slower than that, the hub's broadcast is the better source. */
  minBytesPerSec: 4096,
}

export const newDownloadStats = (): DownloadStats => ({
  fetched: 0,
  fetchedBytes: 0,
  rejected: 0,
  receivedBytes: 0,
  duplicates: 0,
})

const unavailable = (message: string) => new EdgeFleetError('EF_ERR_ARTIFACT_SOURCE_UNAVAILABLE', message)

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
              `${parsed.origin}: ${err.message}; its certificate does not chain to the configured CA (--ca)`,
            )
          : err instanceof EdgeFleetError
            ? err
            : unavailable(`${parsed.origin}: ${err.message}`),
      ),
    )
  })
}

/** Runs of contiguous chunks the store lacks, each at most maxRange bytes; also the bytes already held. */
function missingRuns(manifest: ChunkedSource, store: ChunkSink, maxRange: number): { runs: number[][]; have: number } {
  const runs: number[][] = []
  let run: number[] = []
  let runBytes = 0
  let have = 0
  manifest.artifact.chunks.forEach((chunk, index) => {
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
  return { runs, have }
}

/** Refuses any answer but `206 bytes start-end/size` for the range asked (a 200 would be the whole file). */
function checkRangeAnswer(res: IncomingMessage, start: number, end: number, size: number): void {
  if (res.statusCode !== 206) {
    res.resume()
    throw unavailable(`HTTP ${res.statusCode} for bytes ${start}-${end}`)
  }
  const range = res.headers['content-range']
  const length = res.headers['content-length']
  if (range !== `bytes ${start}-${end}/${size}` || (length !== undefined && Number(length) !== end - start + 1)) {
    res.resume()
    throw new EdgeFleetError(
      'EF_ERR_ARTIFACT_SIZE_MISMATCH',
      `asked bytes ${start}-${end}/${size}, got Content-Range ${range ?? '-'}, Content-Length ${length ?? '-'}`,
    )
  }
}

/**
 * Aborts when a window of stallMs passes with fewer than minBytesPerSec ×
 * stallMs bytes: a hung or trickling source must not hold the update hostage.
 */
function progressWatchdog(o: HttpDownloadOptions, abort: (err: Error) => void) {
  const windowMs = o.stallMs ?? defaultHttpDownloadOptions.stallMs
  const least = Math.max(1, ((o.minBytesPerSec ?? defaultHttpDownloadOptions.minBytesPerSec) * windowMs) / 1000)
  let inWindow = 0
  const timer = setInterval(() => {
    if (inWindow < least) abort(unavailable(`${inWindow} bytes in ${windowMs} ms (slower than ${least} per window)`))
    inWindow = 0
  }, windowMs)
  return { add: (bytes: number) => (inWindow += bytes), stop: () => clearInterval(timer) }
}

/** What every range request of one download shares. */
interface RangeContext {
  manifest: ChunkedSource
  offsets: number[]
  store: ChunkSink
  options: HttpDownloadOptions
  headers: Record<string, string>
  signal: AbortSignal
  stats: DownloadStats
  watchdog: ReturnType<typeof progressWatchdog>
  /** Bytes held so far (for onProgress). */
  progress: { have: number }
}

/**
 * Verifies and stores the whole chunks at the head of `buf`, from `indexes[next]` on;
 * returns how many it took and the rest of `buf`.
 */
function storeChunks(ctx: RangeContext, indexes: number[], next: number, buf: Buffer): [number, Buffer] {
  const { chunks, size: total } = ctx.manifest.artifact
  const { stats, options } = ctx
  while (next < indexes.length && buf.length >= chunks[indexes[next]].size) {
    const ref = chunks[indexes[next]]
    const data = buf.subarray(0, ref.size)
    if (sha256Hex(data) !== ref.digest) {
      stats.rejected++
      throw new EdgeFleetError('EF_ERR_CHUNK_HASH_MISMATCH', `chunk ${indexes[next]} from ${options.url}`)
    }
    ctx.store.put(ref.digest, data)
    stats.fetched++
    stats.fetchedBytes += ref.size
    ctx.progress.have += ref.size
    options.onProgress?.(ctx.progress.have, total)
    buf = buf.subarray(ref.size)
    next++
  }
  return [next, buf]
}

/** One range request for the contiguous chunks `indexes`, each verified and stored as it completes. */
async function fetchRun(ctx: RangeContext, indexes: number[]): Promise<void> {
  const { chunks, size: total } = ctx.manifest.artifact
  const start = ctx.offsets[indexes[0]]
  const last = indexes[indexes.length - 1]
  const end = ctx.offsets[last] + chunks[last].size - 1
  const res = await get(ctx.options.url, { ...ctx.headers, range: `bytes=${start}-${end}` }, ctx.options, ctx.signal)
  checkRangeAnswer(res, start, end, total)
  let next = 0
  // Parts are gathered and joined once per chunk: joining at every part copied a chunk many times over.
  let parts: Buffer[] = []
  let pending = 0
  try {
    for await (const part of res as AsyncIterable<Buffer>) {
      ctx.stats.receivedBytes += part.length
      ctx.watchdog.add(part.length)
      parts.push(part)
      pending += part.length
      if (next >= indexes.length || pending < chunks[indexes[next]].size) continue
      const [taken, rest] = storeChunks(
        ctx,
        indexes,
        next,
        parts.length === 1 ? parts[0] : Buffer.concat(parts, pending),
      )
      next = taken
      parts = rest.length ? [rest] : []
      pending = rest.length
    }
  } catch (err) {
    // The connection closed inside the body (Content-Length not reached) without our abort: a truncated answer.
    if (err instanceof EdgeFleetError || ctx.signal.aborted || storageCode(err)) throw err
    throw new EdgeFleetError(
      'EF_ERR_ARTIFACT_SIZE_MISMATCH',
      `range ${start}-${end} cut short: ${(err as Error).message}`,
    )
  }
  if (next !== indexes.length)
    throw new EdgeFleetError('EF_ERR_ARTIFACT_SIZE_MISMATCH', `range ${start}-${end} ended early`)
}

/** HTTP Basic for the hub; nothing for an origin. */
const authHeaders = (credentials: HttpDownloadOptions['credentials']): Record<string, string> =>
  credentials
    ? { authorization: `Basic ${Buffer.from(`${credentials.deviceId}:${credentials.secret}`).toString('base64')}` }
    : {}

export async function httpDownload(
  manifest: ChunkedSource,
  store: ChunkSink,
  options: HttpDownloadOptions,
  /** Passed in so the bytes received before a failure are still counted. */
  stats: DownloadStats = newDownloadStats(),
): Promise<DownloadStats> {
  const missing = missingRuns(manifest, store, options.maxRangeBytes ?? defaultHttpDownloadOptions.maxRangeBytes)
  if (!missing.runs.length) return stats
  // The first failure stops every request in flight, so no source writes after the caller moved on.
  const stop = new AbortController()
  let failure: Error | undefined
  const fail = (err: Error) => {
    failure ??= err
    stop.abort(err)
  }
  const signal = AbortSignal.any([stop.signal, AbortSignal.timeout(options.timeoutMs)])
  const ctx: RangeContext = {
    manifest,
    offsets: chunkOffsets(manifest.artifact.chunks),
    store,
    options,
    headers: authHeaders(options.credentials),
    signal,
    stats,
    watchdog: progressWatchdog(options, fail),
    progress: { have: missing.have },
  }
  const queue = [...missing.runs]
  const workers = Array.from(
    { length: Math.min(options.concurrency ?? defaultHttpDownloadOptions.concurrency, queue.length) },
    async () => {
      for (let run = queue.shift(); run && !stop.signal.aborted; run = queue.shift())
        await fetchRun(ctx, run).catch((err: unknown) =>
          // A full or failing disk keeps its own code: the caller stops rather than trying another source.
          fail(
            err instanceof EdgeFleetError || storageCode(err)
              ? (err as Error)
              : unavailable(`${options.url}: ${(err as Error).message}`),
          ),
        )
    },
  )
  await Promise.all(workers)
  ctx.watchdog.stop()
  if (failure) throw failure
  // The overall budget ran out (an abort seen by a request only as its own error).
  if (signal.aborted) throw unavailable(`not complete within ${options.timeoutMs} ms`)
  return stats
}
