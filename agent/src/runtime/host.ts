// Serves the active version of each model: one ORT session per model, input
// validation against the model's declared inputs, hot swap on activation,
// and who hears which execution provider a model runs on [EF-5.7].
import { EdgeFleetError, type Manifest } from '@edgefleet/shared'
import {
  createSession,
  runtimeVersion,
  type BackendName,
  type ModelSession,
  type ProviderFallback,
  type SessionConfig,
  type Tensor,
} from './session.js'

export interface ServedModel {
  name: string
  version: string
  manifest: Manifest
  slot: 'a' | 'b'
  session: ModelSession
  inFlight: number
  retired: boolean
}

export interface InferResult {
  model: string
  version: string
  outputs: Record<string, Tensor>
  latencyMs: number
  /** What the outputs of the version that ran mean [EF-3.7]. */
  meta?: Manifest['meta']
}

export type InferObserver = (model: string, version: string, latencyMs: number, ok: boolean, provider: string) => void

/** A model version activated on a provider other than the profile's first choice [EF-5.7]. */
export type FallbackObserver = (manifest: Manifest, provider: string, fallbacks: readonly ProviderFallback[]) => void

/** Everything a consumer off the hot path (telemetry, shadow, capture) needs about one request. */
export interface InferRecord {
  model: ServedModel
  inputs: Record<string, Tensor>
  /** Undefined when the run failed. */
  outputs?: Record<string, Tensor>
  latencyMs: number
}
export type ResultObserver = (r: InferRecord) => void

/** Checks request tensors against the session's inputs: names, types, ranks and fixed dims. */
function validateInputs(session: ModelSession, inputs: Record<string, Tensor>): void {
  const wanted = new Map(session.inputs.map((i) => [i.name, i]))
  for (const name of Object.keys(inputs)) {
    if (!wanted.has(name))
      throw new EdgeFleetError(
        'EF_ERR_INFER_BAD_TENSOR',
        `unknown input ${JSON.stringify(name)} (inputs: ${[...wanted.keys()].join(', ')})`,
      )
  }
  for (const [name, spec] of wanted) {
    const tensor = inputs[name]
    if (!tensor) throw new EdgeFleetError('EF_ERR_INFER_BAD_TENSOR', `missing input ${JSON.stringify(name)}`)
    if (spec.type !== tensor.type)
      throw new EdgeFleetError(
        'EF_ERR_INFER_BAD_TENSOR',
        `input ${name}: type ${tensor.type}, model wants ${spec.type}`,
      )
    if (spec.shape.length !== tensor.dims.length)
      throw new EdgeFleetError(
        'EF_ERR_INFER_BAD_TENSOR',
        `input ${name}: rank ${tensor.dims.length}, model wants [${spec.shape.join(',')}]`,
      )
    spec.shape.forEach((d, i) => {
      if (typeof d === 'number' && d >= 0 && d !== tensor.dims[i])
        throw new EdgeFleetError(
          'EF_ERR_INFER_BAD_TENSOR',
          `input ${name}: dims [${tensor.dims.join(',')}], model wants [${spec.shape.join(',')}]`,
        )
    })
  }
}

export class ModelHost {
  private readonly models = new Map<string, ServedModel>()
  private observer: InferObserver = () => {
    // no observer until onInfer() sets one
  }
  private readonly resultObservers: ResultObserver[] = []
  private fallbackObserver: FallbackObserver = () => {
    // no observer until onFallback() sets one
  }

  constructor(private readonly cfg: SessionConfig) {}

  /** The runtime this host opens models on [EF-5.6]. */
  get backend(): BackendName {
    return this.cfg.backend ?? 'native'
  }

  /** The ONNX Runtime version this host opens models with [EF-3.8]. */
  runtimeVersion(): Promise<string> {
    return runtimeVersion(this.cfg)
  }

  onInfer(fn: InferObserver): void {
    this.observer = fn
  }

  onFallback(fn: FallbackObserver): void {
    this.fallbackObserver = fn
  }

  /**
   * Called after every request, before the caller gets its result; observers
   * must only record or schedule work, never run a model inline [EF-7.2].
   */
  onResult(fn: ResultObserver): void {
    this.resultObservers.push(fn)
  }

  private notify(r: InferRecord): void {
    for (const fn of this.resultObservers) {
      try {
        fn(r)
      } catch {
        // An observer's bug must never fail a request that succeeded.
      }
    }
  }

  /** Opens a session for a staged model file (not yet serving). */
  open(path: string): Promise<ModelSession> {
    return createSession(path, this.cfg)
  }

  /** Makes `session` the live version of its model; the old one is released once idle. */
  activate(manifest: Manifest, slot: 'a' | 'b', session: ModelSession): void {
    const old = this.models.get(manifest.model)
    if (session.fallbacks?.length) this.fallbackObserver(manifest, session.provider, session.fallbacks)
    this.models.set(manifest.model, {
      name: manifest.model,
      version: manifest.version,
      manifest,
      slot,
      session,
      inFlight: 0,
      retired: false,
    })
    if (old) {
      old.retired = true
      if (old.inFlight === 0) void old.session.release()
    }
  }

  get(name: string): ServedModel | undefined {
    return this.models.get(name)
  }

  list(): ServedModel[] {
    return [...this.models.values()]
  }

  async infer(name: string, inputs: Record<string, Tensor>): Promise<InferResult> {
    const served = this.models.get(name)
    if (!served) throw new EdgeFleetError('EF_ERR_INFER_MODEL_NOT_LOADED', name)
    validateInputs(served.session, inputs)
    served.inFlight++
    const t0 = performance.now()
    try {
      const outputs = await served.session.run(inputs)
      const latencyMs = performance.now() - t0
      this.observer(served.name, served.version, latencyMs, true, served.session.provider)
      if (this.resultObservers.length) this.notify({ model: served, inputs, outputs, latencyMs })
      return { model: served.name, version: served.version, outputs, latencyMs, meta: served.manifest.meta }
    } catch (err) {
      const latencyMs = performance.now() - t0
      this.observer(served.name, served.version, latencyMs, false, served.session.provider)
      if (this.resultObservers.length) this.notify({ model: served, inputs, latencyMs })
      throw new EdgeFleetError('EF_ERR_INFER_FAILED', (err as Error).message.split('\n')[0], { cause: err })
    } finally {
      served.inFlight--
      if (served.retired && served.inFlight === 0) void served.session.release()
    }
  }

  async close(): Promise<void> {
    for (const m of this.models.values()) await m.session.release()
    this.models.clear()
  }
}
