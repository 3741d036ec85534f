// Serves artifact chunks on their content-addressed topics [EF-1.4, EF-2.7].
// Requests that arrive within one tick are coalesced: a chunk several agents
// ask for is published once and the broker fans it out. Every publish is
// issued after the request that asked for it arrived, so a requester (which
// subscribes before it asks) always receives it. A bounded window of
// unacknowledged publishes keeps hub memory flat whatever the fleet size.
import { chunkOffsets, topics } from '@edgefleet/shared'
import type { Logger } from 'pino'
import type { HubStore } from '../store/index.js'
import type { BlobStore } from '../store/blobs.js'

export interface ChunkServerOptions {
  store: HubStore
  blobs: BlobStore
  log: Logger
  publish: (topic: string, payload: Buffer) => Promise<void>
  /** Publishes awaiting their PUBACK at once. */
  window?: number
}

export class ChunkServer {
  private pending = new Map<string, Set<number>>()
  private scheduled = false
  private readonly queue: { artifact: string; index: number }[] = []
  private inFlight = 0
  private readonly window: number
  private readonly offsets = new Map<string, { offsets: number[]; sizes: number[] }>()
  /** Chunks published since start (for tests and metrics). */
  published = 0
  publishedBytes = 0

  constructor(private readonly opts: ChunkServerOptions) {
    this.window = opts.window ?? 16
  }

  request(artifact: string, chunks: number[]): void {
    const set = this.pending.get(artifact) ?? new Set()
    for (const c of chunks) set.add(c)
    this.pending.set(artifact, set)
    if (!this.scheduled) {
      this.scheduled = true
      setImmediate(() => this.flush())
    }
  }

  private layout(artifact: string): { offsets: number[]; sizes: number[] } | undefined {
    let l = this.offsets.get(artifact)
    if (!l) {
      const a = this.opts.store.registry.getArtifact(artifact)
      if (!a || !this.opts.blobs.has(artifact)) return undefined
      l = { offsets: chunkOffsets(a.chunks), sizes: a.chunks.map((c) => c.size) }
      this.offsets.set(artifact, l)
    }
    return l
  }

  private flush(): void {
    this.scheduled = false
    const batch = this.pending
    this.pending = new Map()
    for (const [artifact, set] of batch) {
      const l = this.layout(artifact)
      if (!l) {
        this.opts.log.warn({ code: 'EF_ERR_BUILD_NOT_FOUND', artifact }, 'fetch for an unknown artifact')
        continue
      }
      for (const index of [...set].sort((a, b) => a - b)) {
        if (index >= l.sizes.length) continue
        // A chunk still queued is not queued twice: its publish lies in the future of this request.
        if (this.queue.some((q) => q.artifact === artifact && q.index === index)) continue
        this.queue.push({ artifact, index })
      }
    }
    this.pump()
  }

  private pump(): void {
    while (this.inFlight < this.window && this.queue.length > 0) {
      const { artifact, index } = this.queue.shift()!
      const l = this.layout(artifact)
      if (!l) continue
      const payload = this.opts.blobs.read(artifact, l.offsets[index], l.sizes[index])
      this.inFlight++
      this.published++
      this.publishedBytes += payload.length
      this.opts
        .publish(topics.chunk(artifact, index), payload)
        .catch((err: Error) => this.opts.log.warn({ artifact, index, err: err.message }, 'chunk publish failed'))
        .finally(() => {
          this.inFlight--
          this.pump()
        })
    }
  }
}
