// Fetches the chunks of one artifact that the chunk store lacks [EF-2.7].
//
// With a broadcast-capable transport the agent subscribes to the artifact's
// chunk topics, `join`s with the list it misses and then mostly listens: the
// hub broadcasts each chunk once to every joined agent, and sends chunks the
// agent missed (it joined late, a broker restarted) to it alone. The agent
// acknowledges broadcast progress every few chunks (the hub paces on that),
// re-joins after a reconnect, and asks for repairs itself only when nothing
// has arrived for `stallMs`, at most `window` at a time. Every chunk is
// checked against its sha256 and written to the chunk store at once, so a
// restart resumes from what is already on disk.
import { EdgeFleetError, sha256Hex, type ChunkedArtifact } from '@edgefleet/shared'
import type { ChunkStore } from './chunks.js'
import { asStorageError } from '../store/faults.js'

export interface ChunkTransport {
  subscribeArtifact(digest: string): Promise<void>
  unsubscribeArtifact(digest: string): Promise<void>
  /** Ask for these chunks to be sent to this device (repair). */
  requestChunks(digest: string, indexes: number[]): void
  /**
   * Broadcast protocol; without it the agent pulls every chunk with requestChunks.
   * `fresh`: the download's first join, not a re-join after a reconnect [EF-2.7].
   */
  join?(digest: string, missing: number[], fresh?: boolean): void
  ack?(digest: string, lastIndex: number): void
  done?(digest: string): void
  /** Registers a chunk listener; returns its remover. `broadcast` is false for repairs. */
  onChunk(fn: (digest: string, index: number, payload: Buffer, broadcast: boolean) => void): () => void
  /** Registers a reconnect listener; returns its remover. */
  onReconnect?(fn: () => void): () => void
}

export interface DownloadOptions {
  window: number
  timeoutMs: number
  /** Ask for repairs after this long without any chunk arriving. */
  stallMs?: number
  onProgress?: (bytes: number, total: number) => void
  onRejected?: (index: number) => void
  /** Give up when one chunk fails its hash this many times (the source itself is damaged). */
  maxRejectsPerChunk?: number
  /** Acknowledge broadcast progress every this many chunks. */
  ackEvery?: number
}

export interface DownloadStats {
  /** Chunks that had to come over the network (the rest were already held). */
  fetched: number
  fetchedBytes: number
  rejected: number
  /** Chunk messages received, including duplicates (bytes moved over MQTT). */
  receivedBytes: number
  duplicates: number
}

/** Where downloaded chunks go: the chunk store, or an artifact file being written in place. */
export type ChunkSink = Pick<ChunkStore, 'has' | 'put'>

/** What a download needs of what it fetches: a model manifest, or an agent release's package [EF-11.4]. */
export interface ChunkedSource {
  artifact: ChunkedArtifact
}

export async function download(
  manifest: ChunkedSource,
  store: ChunkSink,
  transport: ChunkTransport,
  opts: DownloadOptions,
): Promise<DownloadStats> {
  const { chunks, digest } = manifest.artifact
  const total = manifest.artifact.size
  const missing: number[] = []
  let have = 0
  chunks.forEach((c, i) => {
    if (store.has(c.digest)) have += c.size
    else missing.push(i)
  })
  const stats: DownloadStats = { fetched: 0, fetchedBytes: 0, rejected: 0, receivedBytes: 0, duplicates: 0 }
  if (missing.length === 0) return stats
  // A subscription refused because the link dropped is not final: the caller defers and retries [EF-2.4.1].
  await transport.subscribeArtifact(digest).catch((err: unknown) => {
    throw connectionLost(err)
  })
  const todo = new Set(missing)
  const broadcast = typeof transport.join === 'function'
  // While listening to a broadcast, gaps are normal when a broker serves hundreds of receivers.
  const stallMs = opts.stallMs ?? (typeof transport.join === 'function' ? 15_000 : 2000)
  const ackEvery = opts.ackEvery ?? 4
  const rejects = new Map<number, number>()
  /** Repairs asked for and not yet arrived. */
  const outstanding = new Set<number>()
  let sinceAck = 0
  let completed = false
  try {
    await new Promise<void>((resolve, reject) => {
      let lastProgress = Date.now()
      const started = Date.now()
      const askRepairs = () => {
        const batch: number[] = []
        for (const i of todo) {
          if (outstanding.size >= opts.window) break
          if (outstanding.has(i)) continue
          outstanding.add(i)
          batch.push(i)
        }
        if (batch.length) transport.requestChunks(digest, batch)
      }
      const offChunk = transport.onChunk((d, index, payload, isBroadcast) => {
        if (d !== digest) return
        stats.receivedBytes += payload.length
        if (!todo.has(index)) {
          stats.duplicates++
          return
        }
        const ref = chunks[index]
        if (payload.length !== ref.size || sha256Hex(payload) !== ref.digest) {
          // A damaged chunk is dropped and asked for again on its own [EF-4.3].
          stats.rejected++
          opts.onRejected?.(index)
          const n = (rejects.get(index) ?? 0) + 1
          rejects.set(index, n)
          outstanding.delete(index)
          if (n >= (opts.maxRejectsPerChunk ?? 5)) {
            finish()
            reject(
              new EdgeFleetError('EF_ERR_CHUNK_HASH_MISMATCH', `chunk ${index} failed its sha256 check ${n} times`),
            )
            return
          }
          outstanding.add(index)
          // Confirm the damaged broadcast chunk did arrive, so the hub does not
          // take the repair request for one still on its way.
          if (isBroadcast) transport.ack?.(digest, index)
          transport.requestChunks(digest, [index])
          return
        }
        try {
          store.put(ref.digest, payload)
        } catch (err) {
          // A full or failing disk ends this download, never the process [EF-7.3.1].
          finish()
          const failure = asStorageError(err, `writing chunk ${index}`) as Error // a coded storage error, or err
          reject(failure)
          return
        }
        todo.delete(index)
        outstanding.delete(index)
        stats.fetched++
        stats.fetchedBytes += payload.length
        have += payload.length
        lastProgress = Date.now()
        opts.onProgress?.(have, total)
        if (broadcast && isBroadcast && ++sinceAck >= ackEvery) {
          sinceAck = 0
          transport.ack?.(digest, index)
        }
        if (todo.size === 0) {
          completed = true
          finish()
          resolve()
        } else if (!broadcast || outstanding.size > 0) askRepairs()
      })
      const offReconnect = transport.onReconnect?.(() => {
        // The broker may have lost our subscription and the hub's in-flight chunks: join again.
        // A broker without our session kept no subscription either: subscribe again first, then join,
        // so the broadcast this join starts has us in its audience [EF-2.7].
        outstanding.clear()
        lastProgress = Date.now()
        transport.subscribeArtifact(digest).then(
          () => {
            if (broadcast) transport.join?.(digest, [...todo])
            else askRepairs()
          },
          () => undefined, // dropped again: the next reconnect runs this again
        )
      })
      const timer = setInterval(
        () => {
          const now = Date.now()
          if (now - started > opts.timeoutMs) {
            finish()
            reject(
              new EdgeFleetError(
                'EF_ERR_DOWNLOAD_TIMEOUT',
                `${todo.size} of ${chunks.length} chunks missing after ${opts.timeoutMs} ms`,
              ),
            )
          } else if (now - lastProgress > stallMs) {
            // Nothing arrived for a while: ask for what is missing, a window at a time.
            outstanding.clear()
            lastProgress = now
            askRepairs()
          }
        },
        Math.min(250, stallMs),
      )
      const finish = () => {
        clearInterval(timer)
        offChunk()
        offReconnect?.()
      }
      // The first join of this download says so: a restarted agent has nothing on its way [EF-2.7].
      if (broadcast) transport.join?.(digest, missing, true)
      else askRepairs()
    })
  } finally {
    if (completed) transport.done?.(digest)
    await transport.unsubscribeArtifact(digest).catch(() => undefined)
  }
  return stats
}

/** The error a transport operation failed with, as EF_ERR_CONNECTION_LOST unless it already has a catalogue code. */
function connectionLost(err: unknown): EdgeFleetError {
  if (err instanceof EdgeFleetError) return err
  return new EdgeFleetError('EF_ERR_CONNECTION_LOST', (err as Error).message, { cause: err })
}
