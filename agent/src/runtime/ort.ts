// The agent's only door to onnxruntime-node. Loaded lazily: an agent with no
// model yet does not pay for the native runtime (footprint).
import { availableParallelism } from 'node:os'
import type * as OrtModule from 'onnxruntime-node'
import type { TensorType, TypedData } from '@edgefleet/shared'

type Ort = typeof OrtModule
let ortPromise: Promise<Ort> | undefined

export function loadOrt(): Promise<Ort> {
  return (ortPromise ??= import('onnxruntime-node'))
}

export interface Tensor {
  type: TensorType
  dims: number[]
  data: TypedData
}

export interface InputMeta {
  name: string
  type: string
  /** numbers for fixed dims, strings or -1 for symbolic ones */
  shape: (number | string)[]
}

export interface ModelSession {
  readonly inputs: InputMeta[]
  readonly outputs: InputMeta[]
  run(feeds: Record<string, Tensor>): Promise<Record<string, Tensor>>
  release(): Promise<void>
}

export interface SessionConfig {
  threads: number
  /** Profile's providers, most preferred first; only those this runtime ships are used (sessionProviders). */
  executionProviders: string[]
}

/** One entry of onnxruntime-node's `listSupportedBackends()`. */
export interface SupportedBackend {
  name: string
  /** Shipped inside the package; false: needs libraries installed beside it (cuda, tensorrt). */
  bundled: boolean
}

/**
 * The profile's providers this onnxruntime-node build ships, in the profile's
 * order, cpu always last. A provider it does not ship is left out rather than
 * tried: cuda or tensorrt without their libraries fail session creation
 * outright ("Failed to load shared library"), and one the build lacks
 * (xnnpack, openvino, nnapi) is only dropped by ORT with a console warning.
 */
export function sessionProviders(wanted: readonly string[], supported: readonly SupportedBackend[]): string[] {
  const shipped = new Set(supported.filter((b) => b.bundled).map((b) => b.name))
  return [...wanted.filter((p) => p !== 'cpu' && shipped.has(p)), 'cpu']
}

const meta = (m: OrtModule.InferenceSession.ValueMetadata): InputMeta =>
  m.isTensor ? { name: m.name, type: m.type, shape: [...m.shape] } : { name: m.name, type: 'non-tensor', shape: [] }

export async function createSession(path: string, cfg: SessionConfig): Promise<ModelSession> {
  const ort = await loadOrt()
  const opts: OrtModule.InferenceSession.SessionOptions = {
    executionProviders: sessionProviders(cfg.executionProviders, ort.listSupportedBackends()),
    // Never more threads than the machine has (simulated fleets share a host).
    intraOpNumThreads: Math.max(1, Math.min(cfg.threads, availableParallelism())),
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    // Idle spinning burns a core per session on a device doing anything else.
    extra: { session: { intra_op: { allow_spinning: '0' } } },
  }
  const s = await ort.InferenceSession.create(path, opts)
  return {
    inputs: s.inputMetadata.map(meta),
    outputs: s.outputMetadata.map(meta),
    async run(feeds) {
      const f: Record<string, OrtModule.Tensor> = {}
      for (const [k, t] of Object.entries(feeds))
        f[k] = new ort.Tensor(t.type as OrtModule.Tensor.Type, t.data as OrtModule.Tensor.DataType, t.dims)
      const out = await s.run(f)
      const r: Record<string, Tensor> = {}
      for (const [k, t] of Object.entries(out))
        r[k] = { type: t.type as TensorType, dims: [...t.dims], data: t.data as TypedData }
      return r
    },
    release: () => s.release(),
  }
}
