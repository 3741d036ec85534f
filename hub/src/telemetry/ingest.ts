// Batched ingest of telemetry and samples [EF-9.1]. Handlers push decoded
// messages; one transaction per flush writes them with their rollups and
// feed records. The queue is bounded: when it fills, push() flushes at once,
// synchronously, so the MQTT client reads nothing more until the write is
// done and the backlog stays in the broker, not in the hub's heap.
import type { Sample, TelemetryBatch } from '@edgefleet/shared'
import type { Logger } from 'pino'
import type { HubStore } from '../store/index.js'
import { DEFAULT_BUCKET_MS, type FlushResult, type PendingSample } from '../store/telemetry.js'

export interface IngestOptions {
  /** Longest a record waits in the queue before its flush (ms). */
  flushMs: number
  /** Records (batches + samples) that trigger an immediate flush. */
  maxRecords: number
  /** Payload bytes that trigger an immediate flush. */
  maxBytes: number
  /** Rollup bucket width (ms) [EF-9.2]. */
  bucketMs: number
}

export const defaultIngestOptions: IngestOptions = {
  flushMs: 50,
  maxRecords: 2000,
  maxBytes: 32 * 1024 * 1024, // 32 MiB
  bucketMs: DEFAULT_BUCKET_MS,
}

export interface IngestStats {
  flushes: number
  batches: number
  duplicateBatches: number
  samples: number
  duplicateSamples: number
  /** Flushes forced by a full queue (the broker held the rest meanwhile). */
  fullFlushes: number
  /** Largest queue seen, in records. */
  maxQueued: number
}

export class Ingestor {
  private batches: TelemetryBatch[] = []
  private samples: PendingSample[] = []
  private bytes = 0
  private timer: NodeJS.Timeout | undefined
  private closed = false
  readonly options: IngestOptions
  readonly stats: IngestStats = { flushes: 0, batches: 0, duplicateBatches: 0, samples: 0, duplicateSamples: 0, fullFlushes: 0, maxQueued: 0 }

  constructor(
    private readonly deps: { store: HubStore; now: () => number; log: Logger; onFlush?: (r: FlushResult) => void },
    options: Partial<IngestOptions> = {},
  ) {
    this.options = Object.freeze({ ...defaultIngestOptions, ...options })
  }

  get queued(): number {
    return this.batches.length + this.samples.length
  }

  pushTelemetry(b: TelemetryBatch, bytes: number): void {
    this.batches.push(b)
    this.added(bytes)
  }

  pushSample(sample: Sample, bytes: number, payload: string): void {
    this.samples.push({ sample, bytes, payload })
    this.added(bytes)
  }

  private added(bytes: number): void {
    this.bytes += bytes
    const n = this.queued
    if (n > this.stats.maxQueued) this.stats.maxQueued = n
    if (this.closed || n >= this.options.maxRecords || this.bytes >= this.options.maxBytes) {
      this.stats.fullFlushes++
      this.flush()
    } else if (!this.timer) {
      this.timer = setTimeout(() => this.flush(), this.options.flushMs)
    }
  }

  /** Writes everything queued in one transaction. Never throws: a failed flush is logged and its records dropped. */
  flush(): FlushResult | undefined {
    if (this.timer) {
      clearTimeout(this.timer)
      this.timer = undefined
    }
    if (this.queued === 0) return undefined
    const batches = this.batches
    const samples = this.samples
    this.batches = []
    this.samples = []
    this.bytes = 0
    let r: FlushResult
    try {
      r = this.deps.store.telemetry.ingestMany(batches, samples, this.deps.now(), this.options.bucketMs)
    } catch (err) {
      // The database refused the whole transaction (disk full, closed): nothing was half-written.
      this.deps.log.error({ err: (err as Error).message, batches: batches.length, samples: samples.length }, 'telemetry flush failed; records dropped')
      return undefined
    }
    this.stats.flushes++
    this.stats.batches += r.batches
    this.stats.duplicateBatches += r.duplicateBatches
    this.stats.samples += r.samples
    this.stats.duplicateSamples += r.duplicateSamples
    try {
      this.deps.onFlush?.(r)
    } catch (err) {
      this.deps.log.warn({ err: (err as Error).message }, 'after-flush hook failed')
    }
    return r
  }

  /** Flushes what is queued; later pushes flush at once. */
  close(): void {
    this.flush()
    this.closed = true
  }
}
