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
  const { digest } = manifest.artifact
  const chunkFetch = new ChunkFetch(manifest.artifact, store, transport, opts)
  if (chunkFetch.missing.length === 0) return chunkFetch.stats
  // A subscription refused because the link dropped is not final: the caller defers and retries [EF-2.4.1].
  await transport.subscribeArtifact(digest).catch((err: unknown) => {
    throw connectionLost(err)
  })
  let completed = false
  try {
    await chunkFetch.receive()
    completed = true
  } finally {
    if (completed) transport.done?.(digest)
    await transport.unsubscribeArtifact(digest).catch(() => undefined)
  }
  return chunkFetch.stats
}

/** One artifact's download in progress: what is still missing, what was asked for, the counters. */
class ChunkFetch {
  readonly stats: DownloadStats = { fetched: 0, fetchedBytes: 0, rejected: 0, receivedBytes: 0, duplicates: 0 }
  /** Indexes of the chunks the store lacked when the download started. */
  readonly missing: number[] = []
  private readonly todo: Set<number>
  /** Bytes held so far, for onProgress. */
  private have = 0
  private readonly broadcast: boolean
  private readonly stallMs: number
  private readonly ackEvery: number
  /** Hash failures per chunk index. */
  private readonly rejects = new Map<number, number>()
  /** Repairs asked for and not yet arrived. */
  private readonly outstanding = new Set<number>()
  private sinceAck = 0
  private lastProgress = Date.now()
  /** Stops listening and settles receive(): with an error, or done. */
  private finish: (failure?: Error) => void = () => undefined

  constructor(
    private readonly artifact: ChunkedArtifact,
    private readonly store: ChunkSink,
    private readonly transport: ChunkTransport,
    private readonly opts: DownloadOptions,
  ) {
    artifact.chunks.forEach((chunk, index) => {
      if (store.has(chunk.digest)) this.have += chunk.size
      else this.missing.push(index)
    })
    this.todo = new Set(this.missing)
    this.broadcast = typeof transport.join === 'function'
    // While listening to a broadcast, gaps are normal when a broker serves hundreds of receivers.
    this.stallMs = opts.stallMs ?? (this.broadcast ? 15_000 : 2000)
    this.ackEvery = opts.ackEvery ?? 4
  }

  /** Listens until every missing chunk is stored; rejects on a timeout, a chunk that keeps failing its hash or a storage error. */
  receive(): Promise<void> {
    const { digest } = this.artifact
    return new Promise<void>((resolve, reject) => {
      this.lastProgress = Date.now()
      const started = Date.now()
      const offChunk = this.transport.onChunk((chunkDigest, index, payload, isBroadcast) => {
        if (chunkDigest === digest) this.onChunk(index, payload, isBroadcast)
      })
      const offReconnect = this.transport.onReconnect?.(() => this.rejoin())
      const timer = setInterval(() => this.checkProgress(started), Math.min(250, this.stallMs))
      this.finish = (failure) => {
        clearInterval(timer)
        offChunk()
        offReconnect?.()
        if (failure) reject(failure)
        else resolve()
      }
      // The first join of this download says so: a restarted agent has nothing on its way [EF-2.7].
      if (this.broadcast) this.transport.join?.(digest, this.missing, true)
      else this.askRepairs()
    })
  }

  /** Asks for missing chunks not already asked for, up to `window` outstanding. */
  private askRepairs(): void {
    const batch: number[] = []
    for (const index of this.todo) {
      if (this.outstanding.size >= this.opts.window) break
      if (this.outstanding.has(index)) continue
      this.outstanding.add(index)
      batch.push(index)
    }
    if (batch.length) this.transport.requestChunks(this.artifact.digest, batch)
  }

  private onChunk(index: number, payload: Buffer, isBroadcast: boolean): void {
    this.stats.receivedBytes += payload.length
    if (!this.todo.has(index)) {
      this.stats.duplicates++
      return
    }
    const ref = this.artifact.chunks[index]
    if (payload.length !== ref.size || sha256Hex(payload) !== ref.digest) {
      this.rejectChunk(index, isBroadcast)
      return
    }
    try {
      this.store.put(ref.digest, payload)
    } catch (err) {
      // A full or failing disk ends this download, never the process [EF-7.3.1].
      this.finish(asStorageError(err, `writing chunk ${index}`) as Error) // a coded storage error, or err
      return
    }
    this.recordStored(index, payload.length, isBroadcast)
  }

  /** A damaged chunk is dropped and asked for again on its own [EF-4.3]; too many failures end the download. */
  private rejectChunk(index: number, isBroadcast: boolean): void {
    const { digest } = this.artifact
    this.stats.rejected++
    this.opts.onRejected?.(index)
    const failures = (this.rejects.get(index) ?? 0) + 1
    this.rejects.set(index, failures)
    this.outstanding.delete(index)
    if (failures >= (this.opts.maxRejectsPerChunk ?? 5)) {
      const message = `chunk ${index} failed its sha256 check ${failures} times`
      this.finish(new EdgeFleetError('EF_ERR_CHUNK_HASH_MISMATCH', message))
      return
    }
    this.outstanding.add(index)
    // Confirm the damaged broadcast chunk did arrive, so the hub does not
    // take the repair request for one still on its way.
    if (isBroadcast) this.transport.ack?.(digest, index)
    this.transport.requestChunks(digest, [index])
  }

  /** Counts a stored chunk, acknowledges broadcast progress, and finishes or asks for more. */
  private recordStored(index: number, bytes: number, isBroadcast: boolean): void {
    this.todo.delete(index)
    this.outstanding.delete(index)
    this.stats.fetched++
    this.stats.fetchedBytes += bytes
    this.have += bytes
    this.lastProgress = Date.now()
    this.opts.onProgress?.(this.have, this.artifact.size)
    if (this.broadcast && isBroadcast && ++this.sinceAck >= this.ackEvery) {
      this.sinceAck = 0
      this.transport.ack?.(this.artifact.digest, index)
    }
    if (this.todo.size === 0) this.finish()
    else if (!this.broadcast || this.outstanding.size > 0) this.askRepairs()
  }

  /**
   * The broker may have lost our subscription and the hub's in-flight chunks: join again.
   * A broker without our session kept no subscription either: subscribe again first, then join,
   * so the broadcast this join starts has us in its audience [EF-2.7].
   */
  private rejoin(): void {
    const { digest } = this.artifact
    this.outstanding.clear()
    this.lastProgress = Date.now()
    this.transport.subscribeArtifact(digest).then(
      () => {
        if (this.broadcast) this.transport.join?.(digest, [...this.todo])
        else this.askRepairs()
      },
      () => undefined, // dropped again: the next reconnect runs this again
    )
  }

  /** The periodic check: give up after timeoutMs, ask for repairs after stallMs without progress. */
  private checkProgress(started: number): void {
    const now = Date.now()
    if (now - started > this.opts.timeoutMs) {
      const message = `${this.todo.size} of ${this.artifact.chunks.length} chunks missing after ${this.opts.timeoutMs} ms`
      this.finish(new EdgeFleetError('EF_ERR_DOWNLOAD_TIMEOUT', message))
    } else if (now - this.lastProgress > this.stallMs) {
      // Nothing arrived for a while: ask for what is missing, a window at a time.
      this.outstanding.clear()
      this.lastProgress = now
      this.askRepairs()
    }
  }
}

/** The error a transport operation failed with, as EF_ERR_CONNECTION_LOST unless it already has a catalogue code. */
function connectionLost(err: unknown): EdgeFleetError {
  if (err instanceof EdgeFleetError) return err
  return new EdgeFleetError('EF_ERR_CONNECTION_LOST', (err as Error).message, { cause: err })
}
