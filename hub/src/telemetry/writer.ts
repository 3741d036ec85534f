// Where ingest transactions are written [EF-9.1]. The hub validates every
// message on its main thread (a bad one is refused there, alone, with its
// code), encodes new batches into rows and adds their rollup counts as they
// arrive; a flush hands one transaction's worth to a writer. The thread
// writer owns a second SQLite connection in a worker thread, so the inserts,
// commits and WAL checkpoints run beside the broker instead of between its
// reads; the inline writer uses the hub's own connection (in-memory stores,
// and hubs started with `writer: 'inline'`).
import { Worker } from 'node:worker_threads'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import type { Sample } from '@edgefleet/shared'
import type { FlushResult, PendingSample, PreparedBatch, TelemetryStore } from '../store/telemetry.js'
import type { RollupRow } from '../store/rollups.js'

/** One transaction: prepared batches, their rollup counts, and raw (validated) sample payloads. */
export interface FlushInput {
  batches: PreparedBatch[]
  rollups: RollupRow[]
  samples: Uint8Array[]
}

export interface TelemetryWriter {
  write(flush: FlushInput, now: number): Promise<FlushResult>
  close(): Promise<void>
  /** Set once the writer can write no more (its thread exited); a new one must take over. */
  readonly dead?: Error
}

/** Sample payloads, validated on the main thread: only JSON.parse runs here. */
export function decodeSamples(payloads: readonly Uint8Array[]): PendingSample[] {
  const decoder = new TextDecoder()
  return payloads.map((bytes) => {
    const payload = decoder.decode(bytes)
    return { sample: JSON.parse(payload) as Sample, bytes: bytes.byteLength, payload }
  })
}

/** Writes on the caller's connection, synchronously underneath. */
export class InlineWriter implements TelemetryWriter {
  constructor(private readonly store: TelemetryStore) {}

  write(f: FlushInput, now: number): Promise<FlushResult> {
    // A throw inside the executor becomes the rejection, as from the threaded writer.
    return new Promise((resolve) =>
      resolve(
        this.store.writePrepared({ batches: f.batches, rollups: f.rollups, samples: decodeSamples(f.samples) }, now),
      ),
    )
  }

  close(): Promise<void> {
    return Promise.resolve()
  }
}

/** A flush on its way to the worker (structured clone; sample payloads copied into one transferred buffer). */
export interface WriteRequest {
  id: number
  now: number
  batches: PreparedBatch[]
  rollups: RollupRow[]
  samples: ArrayBuffer
  sampleLens: Uint32Array<ArrayBuffer>
}

function packSamples(payloads: readonly Uint8Array[]): { buf: ArrayBuffer; lens: Uint32Array<ArrayBuffer> } {
  let total = 0
  for (const p of payloads) total += p.byteLength
  const buf = new Uint8Array(new ArrayBuffer(total))
  const lens = new Uint32Array(payloads.length)
  let at = 0
  payloads.forEach((p, i) => {
    buf.set(p, at)
    at += p.byteLength
    lens[i] = p.byteLength
  })
  return { buf: buf.buffer, lens }
}

export function unpackSamples(buf: ArrayBuffer, lens: Iterable<number>): Uint8Array[] {
  const out: Uint8Array[] = []
  let at = 0
  for (const len of lens) {
    out.push(new Uint8Array(buf, at, len))
    at += len
  }
  return out
}

export interface WriterData {
  dbPath: string
  maxDbBytes: number
}

type Reply = { id: number; result: FlushResult } | { id: number; error: { message: string; code?: string } }

/** The worker's script: dist/telemetry/writer-worker.js beside this file (also when this file runs from src/ under vitest). */
function writerWorkerUrl(): URL {
  const here = new URL('./writer-worker.js', import.meta.url)
  if (existsSync(fileURLToPath(here))) return here
  return new URL('../../dist/telemetry/writer-worker.js', import.meta.url)
}

/** A worker thread with its own connection to the hub's database file. */
export class ThreadWriter implements TelemetryWriter {
  private readonly worker: Worker
  private readonly pending = new Map<number, { resolve: (r: FlushResult) => void; reject: (e: Error) => void }>()
  private nextId = 1
  dead: Error | undefined
  private readonly exited: Promise<void>

  constructor(dbPath: string, opts: { maxDbBytes?: number; url?: URL } = {}) {
    this.worker = new Worker(opts.url ?? writerWorkerUrl(), {
      workerData: { dbPath, maxDbBytes: opts.maxDbBytes ?? 0 } satisfies WriterData,
    })
    this.worker.on('message', (m: Reply) => {
      const p = this.pending.get(m.id)
      if (!p) return
      this.pending.delete(m.id)
      if ('result' in m) p.resolve(m.result)
      else p.reject(Object.assign(new Error(m.error.message), { code: m.error.code }))
    })
    this.exited = new Promise((resolve) => {
      this.worker.once('error', (err) => this.fail(err))
      this.worker.once('exit', (code) => {
        this.fail(new Error(`telemetry writer thread exited (code ${code})`))
        resolve()
      })
    })
  }

  private fail(err: Error): void {
    this.dead ??= err
    for (const p of this.pending.values()) p.reject(err)
    this.pending.clear()
  }

  write(f: FlushInput, now: number): Promise<FlushResult> {
    if (this.dead) return Promise.reject(this.dead)
    const id = this.nextId++
    const { buf, lens } = packSamples(f.samples)
    const msg: WriteRequest = { id, now, batches: f.batches, rollups: f.rollups, samples: buf, sampleLens: lens }
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject })
      this.worker.postMessage(msg, [buf, lens.buffer])
    })
  }

  /** Ends the thread at once, as a crash would (tests). */
  kill(): Promise<number> {
    return this.worker.terminate()
  }

  /** Lets the flushes already sent finish, then stops the thread (it closes its connection). */
  async close(): Promise<void> {
    if (!this.dead) this.worker.postMessage({ id: 0, close: true })
    await this.exited
  }
}
