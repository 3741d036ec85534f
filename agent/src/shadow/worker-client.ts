// Main-thread side of one shadow worker: load a candidate, run it, release it.
import { Worker } from 'node:worker_threads'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import type { BackendName, Tensor } from '../runtime/session.js'
import type { ShadowReply, ShadowRequest } from '../runtime/shadow-worker.js'

/**
 * dist/runtime/shadow-worker.js, seen from dist/shadow/ (tsc output), from
 * dist/ (the bundled dist/edgefleet-agent.mjs) or from src/shadow/ under vitest.
 */
function defaultWorkerUrl(): URL {
  for (const rel of ['../runtime/shadow-worker.js', './runtime/shadow-worker.js']) {
    const u = new URL(rel, import.meta.url)
    if (existsSync(fileURLToPath(u))) return u
  }
  return new URL('../../dist/runtime/shadow-worker.js', import.meta.url)
}

export class ShadowWorker {
  private readonly worker: Worker
  private next = 1
  private readonly pending = new Map<
    number,
    { resolve: (r: { outputs: Record<string, Tensor>; latencyMs: number }) => void; reject: (e: Error) => void }
  >()
  private loaded: Promise<void>

  constructor(path: string, threads: number, url: URL = defaultWorkerUrl(), backend: BackendName = 'native') {
    this.worker = new Worker(url)
    // A shadow worker must never keep a closing agent alive.
    this.worker.unref()
    this.loaded = new Promise((resolve, reject) => {
      const onMsg = (m: ShadowReply) => {
        if (m.op === 'loaded') resolve()
        else if (m.op === 'error' && m.id === -1) reject(new Error(m.message))
        else return
        this.worker.off('message', onMsg)
      }
      this.worker.on('message', onMsg)
      this.worker.once('error', reject)
    })
    this.worker.on('message', (m: ShadowReply) => {
      if (m.op === 'loaded' || m.id === -1) return
      const p = this.pending.get(m.id)
      if (!p) return
      this.pending.delete(m.id)
      if (m.op === 'result') p.resolve({ outputs: m.outputs, latencyMs: m.latencyMs })
      else p.reject(new Error(m.message))
    })
    this.worker.on('error', (err) => {
      for (const p of this.pending.values()) p.reject(err)
      this.pending.clear()
    })
    this.post({ op: 'load', path, threads, backend })
  }

  private post(m: ShadowRequest): void {
    this.worker.postMessage(m)
  }

  ready(): Promise<void> {
    return this.loaded
  }

  run(inputs: Record<string, Tensor>): Promise<{ outputs: Record<string, Tensor>; latencyMs: number }> {
    const id = this.next++
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject })
      this.post({ op: 'run', id, inputs })
    })
  }

  async close(): Promise<void> {
    this.post({ op: 'release' })
    await this.worker.terminate()
  }
}
