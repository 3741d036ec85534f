// Champion/challenger on the device [EF-2.3.4, EF-7.2]: runs a model's shadow
// candidate on a sampled fraction of its live requests, in a worker thread,
// after the live result has been handed back, and records the comparison.
// At most one shadow run per model is in flight; a sampled request that finds
// it busy is counted as skipped, never queued, so a slow candidate can neither
// delay live responses nor pile up memory.
import type { Manifest } from '@edgefleet/shared'
import type { InferRecord } from '../runtime/host.js'
import type { BackendName, Tensor } from '../runtime/session.js'
import { compareOutputs, type Comparison } from '../runtime/outputs.js'
import type { Aggregator } from '../telemetry/aggregator.js'
import { ShadowWorker } from './worker-client.js'

export interface Candidate {
  manifest: Manifest
  manifestSig: string
  /** The candidate's model file (outside the A/B slots). */
  path: string
  fraction: number
}

interface Running extends Candidate {
  worker: ShadowWorker
  busy: boolean
}

/** What callers see of a running candidate (not its worker). */
const candidateOf = (r: Running): Candidate => ({
  manifest: r.manifest,
  manifestSig: r.manifestSig,
  path: r.path,
  fraction: r.fraction,
})

export interface ShadowRunnerOptions {
  agg: Aggregator
  /** Threads for a candidate session (default 1: the live model keeps the other cores). */
  threads?: number
  /** The runtime candidates run on: the live model's [EF-5.6] (default native). */
  backend?: BackendName
  random?: () => number
  workerUrl?: URL
  /** Called after each comparison (capture on disagreement). */
  onCompared?: (rec: InferRecord, cand: Candidate, outputs: Record<string, Tensor>, cmp: Comparison) => void
}

export class ShadowRunner {
  private readonly running = new Map<string, Running>()
  private readonly idleWaiters = new Set<() => void>()

  constructor(private readonly o: ShadowRunnerOptions) {}

  /** Starts shadowing; resolves once the candidate is loaded in its worker. Replaces a previous candidate of the model. */
  async start(candidate: Candidate): Promise<void> {
    await this.stop(candidate.manifest.model)
    const worker = new ShadowWorker(candidate.path, this.o.threads ?? 1, this.o.workerUrl, this.o.backend)
    try {
      await worker.ready()
    } catch (err) {
      await worker.close()
      throw err
    }
    this.running.set(candidate.manifest.model, { ...candidate, worker, busy: false })
  }

  /** Runs the candidate once on given inputs (health check) without recording anything. */
  async runOnce(model: string, inputs: Record<string, Tensor>): Promise<Record<string, Tensor>> {
    const r = this.running.get(model)
    if (!r) throw new Error(`no shadow candidate for ${model}`)
    return (await r.worker.run(inputs)).outputs
  }

  get(model: string): Candidate | undefined {
    const r = this.running.get(model)
    return r && candidateOf(r)
  }

  list(): Candidate[] {
    return [...this.running.values()].map(candidateOf)
  }

  async stop(model: string): Promise<void> {
    const r = this.running.get(model)
    if (!r) return
    this.running.delete(model)
    await r.worker.close()
  }

  async close(): Promise<void> {
    for (const m of [...this.running.keys()]) await this.stop(m)
  }

  /** True while no shadow run is in flight (tests and benchmarks wait on it). */
  idle(): Promise<void> {
    if ([...this.running.values()].every((r) => !r.busy)) return Promise.resolve()
    return new Promise((resolve) => this.idleWaiters.add(resolve))
  }

  /** Result observer for the model host: decides and schedules, never runs inline. */
  observe(rec: InferRecord): void {
    const active = this.running.get(rec.model.name)
    if (!active || !rec.outputs) return
    if ((this.o.random ?? Math.random)() >= active.fraction) return
    const { agg } = this.o
    const live = rec.model
    if (active.busy) {
      agg.recordShadow(live.name, live.version, active.manifest.version, { skipped: true })
      return
    }
    active.busy = true
    const liveOutputs = rec.outputs
    // setImmediate: the live caller's continuation (and the HTTP write) runs first.
    setImmediate(() => {
      active.worker
        .run(rec.inputs)
        .then(
          ({ outputs, latencyMs }) => {
            const cmp = compareOutputs(live.manifest, liveOutputs, outputs)
            agg.recordShadow(live.name, live.version, active.manifest.version, { ok: true, latencyMs, cmp })
            this.o.onCompared?.(rec, active, outputs, cmp)
          },
          () => agg.recordShadow(live.name, live.version, active.manifest.version, { ok: false, latencyMs: 0 }),
        )
        .finally(() => {
          active.busy = false
          if ([...this.running.values()].every((x) => !x.busy)) {
            for (const w of this.idleWaiters) w()
            this.idleWaiters.clear()
          }
        })
    })
  }
}
