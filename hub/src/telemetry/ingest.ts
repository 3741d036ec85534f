// Batched ingest of telemetry and samples [EF-9.1]. Handlers validate a
// message and push it with a callback; the callback runs once the
// transaction holding it has committed (or failed), which is when the
// embedded broker acknowledges the device's PUBLISH: a PUBACK means stored.
// The writer runs one transaction after the other, with the next already
// handed over; what arrives meanwhile goes into the one after (group
// commit), so transactions grow with the load and stay small when the fleet
// is quiet. The queue is
// bounded: readers that can wait (the hub's MQTT client) stop reading while
// it is full, so the backlog stays in the broker and on the devices.
import { EdgeFleetError, type TelemetryBatch } from '@edgefleet/shared'
import type { Logger } from 'pino'
import type { HubStore } from '../store/index.js'
import { DEFAULT_BUCKET_MS, RollupAcc, type FlushResult, type PreparedBatch } from '../store/telemetry.js'
import { InlineWriter, ThreadWriter, type TelemetryWriter } from './writer.js'

export interface IngestOptions {
  /** Longest a record waits for its transaction when no transaction is running (ms; 0: the next turn of the event loop). */
  flushMs: number
  /** Records (batches + samples) per transaction, and the queue size past which readers are told to wait. */
  maxRecords: number
  /** Payload bytes per transaction, and the queue bytes past which readers are told to wait. */
  maxBytes: number
  /** Rollup bucket width (ms) [EF-9.2]. */
  bucketMs: number
  /** 'thread': a writer thread with its own connection (file databases); 'inline': the hub's connection. */
  writer: 'thread' | 'inline'
  /**
   * Largest the database file may grow through ingest (bytes; 0: no cap).
   * A transaction that would pass it fails like one on a full disk: nothing
   * of it is stored or acknowledged. Applies to the thread writer.
   */
  maxDbBytes: number
}

const defaultIngestOptions: IngestOptions = {
  flushMs: 0,
  // 100 batches of 20 model versions: ~2,000 rows, a few milliseconds of write lock. Larger
  // transactions pipeline worse (test/bench/retraining.mjs: 250 → 104k events/s, 100 → 131k, 50 → 110k).
  maxRecords: 100,
  maxBytes: 8 * 1024 * 1024,
  bucketMs: DEFAULT_BUCKET_MS,
  writer: 'thread',
  maxDbBytes: 0,
}

export interface IngestStats {
  flushes: number
  batches: number
  duplicateBatches: number
  samples: number
  duplicateSamples: number
  /** Transactions that failed (their records were not acknowledged). */
  failedFlushes: number
  /** Times a reader was told to wait for a full queue. */
  fullFlushes: number
  /** Largest queue seen, in records. */
  maxQueued: number
  /** Writer threads started again after one exited. */
  writerRestarts: number
}

/** Told once the record is committed (no argument) or will not be (the error). */
export type IngestDone = (err?: Error) => void

/**
 * Where the MQTT handlers hand accepted telemetry and samples: the database
 * writer (Ingestor), or with `--stream` the JetStream publisher [EF-9.13].
 * `done` runs once the record is durable there.
 */
export interface IngestSink {
  pushTelemetry(batch: TelemetryBatch, bytes: number, done?: IngestDone): void
  pushSample(payload: Uint8Array, done?: IngestDone): void
  /** Runs `cb` now if there is room, else once there is (readers that can wait stop reading meanwhile). */
  whenReady(cb: () => void): void
}

/** One transaction's worth of queued records, accumulated as they arrive. */
interface Chunk {
  records: number
  bytes: number
  batches: PreparedBatch[]
  acc: RollupAcc
  samples: Uint8Array[]
  dones: IngestDone[]
  /** Keys of its batches, to recognise redeliveries while it is queued or being written. */
  keys: string[]
}

/** Transactions handed to the writer at once (it runs them one after the other). */
const MAX_IN_FLIGHT = 2

const batchKey = (deviceId: string, batchId: string) => `${deviceId}\u0000${batchId}`

export class Ingestor implements IngestSink {
  private chunks: Chunk[] = []
  private queuedRecords = 0
  private queuedBytes = 0
  /** Batches queued or being written, by key: a redelivery waits for its first copy's commit. */
  private readonly pending = new Map<string, Chunk>()
  private timer: NodeJS.Timeout | NodeJS.Immediate | undefined
  private inFlight = 0
  private readonly writes = new Set<Promise<void>>()
  private closed = false
  private writer: TelemetryWriter
  private waiters: (() => void)[] = []
  readonly options: IngestOptions
  readonly stats: IngestStats = {
    flushes: 0,
    batches: 0,
    duplicateBatches: 0,
    samples: 0,
    duplicateSamples: 0,
    failedFlushes: 0,
    fullFlushes: 0,
    maxQueued: 0,
    writerRestarts: 0,
  }

  constructor(
    private readonly deps: {
      store: HubStore
      now: () => number
      log: Logger
      onFlush?: (r: FlushResult) => void
      /** Each transaction's wall time and size, for the /metrics histograms [EF-8.12]. */
      onTransaction?: (t: { seconds: number; records: number; ok: boolean }) => void
    },
    options: Partial<IngestOptions> = {},
  ) {
    this.options = Object.freeze({ ...defaultIngestOptions, ...options })
    this.writer = this.newWriter()
  }

  private newWriter(): TelemetryWriter {
    const location = this.deps.store.location
    return this.options.writer === 'thread' && location
      ? new ThreadWriter(location, { maxDbBytes: this.options.maxDbBytes })
      : new InlineWriter(this.deps.store.telemetry)
  }

  /** The writer in use (tests reach its thread through it). */
  get currentWriter(): TelemetryWriter {
    return this.writer
  }

  /** Records (batches + samples) waiting for a transaction. */
  get queued(): number {
    return this.queuedRecords
  }

  /**
   * A validated telemetry batch [EF-2.6]: a redelivery of a stored batch is
   * acknowledged at once and counted; a new one is encoded here, on the
   * caller's thread, and its rollup counts added to its transaction's.
   */
  pushTelemetry(batch: TelemetryBatch, bytes: number, done?: IngestDone): void {
    if (this.refuse(done)) return
    const key = batchKey(batch.deviceId, batch.batchId)
    const first = this.pending.get(key)
    if (first) {
      // Sent again before its first copy committed: acknowledged with it.
      this.duplicate()
      if (done) first.dones.push(done)
      return
    }
    const t = this.deps.store.telemetry
    if (t.hasBatch(batch.deviceId, batch.batchId)) {
      this.duplicate()
      done?.()
      return
    }
    const c = this.chunkFor(bytes)
    c.batches.push(t.prepareBatch(batch, c.acc))
    c.keys.push(key)
    this.pending.set(key, c)
    this.added(c, bytes, done)
  }

  /** A validated sample's payload [EF-2.9] (stored once by sample id, checked in the transaction). */
  pushSample(payload: Uint8Array, done?: IngestDone): void {
    if (this.refuse(done)) return
    const c = this.chunkFor(payload.byteLength)
    c.samples.push(payload)
    this.added(c, payload.byteLength, done)
  }

  private duplicate(): void {
    this.stats.duplicateBatches++
    this.deps.onFlush?.({ batches: 0, duplicateBatches: 1, samples: 0, duplicateSamples: 0, feed: [] })
  }

  private refuse(done: IngestDone | undefined): boolean {
    if (!this.closed) return false
    done?.(new EdgeFleetError('EF_ERR_INGEST_UNAVAILABLE', 'the hub is shutting down'))
    return true
  }

  /** The last queued chunk if it has room, else a new one. */
  private chunkFor(bytes: number): Chunk {
    const last = this.chunks[this.chunks.length - 1]
    if (last && last.records < this.options.maxRecords && last.bytes + bytes <= this.options.maxBytes) return last
    const chunk: Chunk = {
      records: 0,
      bytes: 0,
      batches: [],
      acc: new RollupAcc(this.options.bucketMs),
      samples: [],
      dones: [],
      keys: [],
    }
    this.chunks.push(chunk)
    return chunk
  }

  private added(c: Chunk, bytes: number, done: IngestDone | undefined): void {
    c.records++
    c.bytes += bytes
    if (done) c.dones.push(done)
    this.queuedRecords++
    this.queuedBytes += bytes
    if (this.queuedRecords > this.stats.maxQueued) this.stats.maxQueued = this.queuedRecords
    if (this.inFlight < MAX_IN_FLIGHT && !this.timer)
      this.timer =
        this.options.flushMs > 0 ? setTimeout(() => this.run(), this.options.flushMs) : setImmediate(() => this.run())
  }

  /** Whether the queue has room; when it has not, `whenReady` callbacks wait for a transaction to end. */
  get ready(): boolean {
    return this.queuedRecords < this.options.maxRecords * 2 && this.queuedBytes < this.options.maxBytes * 2
  }

  /** Runs `cb` now if the queue has room, else once it has. */
  whenReady(cb: () => void): void {
    if (this.ready || this.closed) return cb()
    this.stats.fullFlushes++
    this.waiters.push(cb)
  }

  /**
   * Hands chunks to the writer, up to two transactions at a time: the writer
   * starts the next as soon as one commits, without waiting for this thread
   * to hear about it.
   */
  private run(): void {
    this.timer = undefined
    while (this.inFlight < MAX_IN_FLIGHT && this.chunks.length > 0) {
      this.inFlight++
      const w = this.writeNext().finally(() => {
        this.inFlight--
        this.writes.delete(w)
        if (this.ready) for (const cb of this.waiters.splice(0)) cb()
        if (this.chunks.length > 0) this.run()
      })
      this.writes.add(w)
    }
  }

  private async writeNext(): Promise<void> {
    const chunk = this.chunks.shift()
    if (!chunk) return // run() starts a write only with a chunk queued
    this.queuedRecords -= chunk.records
    this.queuedBytes -= chunk.bytes
    let result: FlushResult
    const started = performance.now()
    const observe = (ok: boolean) =>
      this.deps.onTransaction?.({ seconds: (performance.now() - started) / 1000, records: chunk.records, ok })
    try {
      result = await this.writer.write(
        { batches: chunk.batches, rollups: [...chunk.acc.rows.values()], samples: chunk.samples },
        this.deps.now(),
      )
      observe(true)
    } catch (err) {
      observe(false)
      // The database refused the whole transaction (disk full, closed): nothing was half-written, and
      // nothing is acknowledged: the devices keep these records and send them again [EF-9.1.1].
      for (const k of chunk.keys) this.pending.delete(k)
      this.stats.failedFlushes++
      const cause = err as Error & { code?: string }
      const e = new EdgeFleetError('EF_ERR_INGEST_UNAVAILABLE', `${cause.code ?? 'error'}: ${cause.message}`, { cause })
      this.deps.log.error(
        { code: e.code, err: e.message, records: chunk.records },
        'telemetry flush failed; not acknowledged',
      )
      this.settle(chunk.dones, e)
      if (this.writer.dead && !this.closed) {
        // The writer thread is gone (crashed, out of memory): what it had not committed was refused above; start another.
        this.stats.writerRestarts++
        this.deps.log.error({ err: this.writer.dead.message }, 'telemetry writer thread exited; starting a new one')
        this.writer = this.newWriter()
      }
      return
    }
    for (const k of chunk.keys) this.pending.delete(k)
    this.stats.flushes++
    this.stats.batches += result.batches
    this.stats.duplicateBatches += result.duplicateBatches
    this.stats.samples += result.samples
    this.stats.duplicateSamples += result.duplicateSamples
    this.settle(chunk.dones)
    try {
      this.deps.onFlush?.(result)
    } catch (err) {
      this.deps.log.warn({ err: (err as Error).message }, 'after-flush hook failed')
    }
  }

  /** Tells every waiting sender; one whose callback throws does not keep the others waiting. */
  private settle(dones: readonly IngestDone[], err?: Error): void {
    for (const d of dones) {
      try {
        d(err)
      } catch (e) {
        this.deps.log.warn({ err: (e as Error).message }, 'ingest callback failed')
      }
    }
  }

  /** Writes everything queued so far; resolves when it is committed (or failed). */
  async flush(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer as NodeJS.Timeout)
      clearImmediate(this.timer as NodeJS.Immediate)
      this.timer = undefined
    }
    while (this.writes.size > 0 || this.chunks.length > 0) {
      this.run()
      await Promise.all(this.writes)
    }
  }

  /** Writes what is queued, refuses later pushes, stops the writer. */
  async close(): Promise<void> {
    this.closed = true
    await this.flush()
    for (const w of this.waiters.splice(0)) w()
    await this.writer.close()
  }
}
