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
  /** Profile's providers, most preferred first; unavailable ones fall back to cpu. */
  executionProviders: string[]
}

const meta = (m: OrtModule.InferenceSession.ValueMetadata): InputMeta =>
  m.isTensor ? { name: m.name, type: m.type, shape: [...m.shape] } : { name: m.name, type: 'non-tensor', shape: [] }

export async function createSession(path: string, cfg: SessionConfig): Promise<ModelSession> {
  const ort = await loadOrt()
  // Only the CPU provider ships in onnxruntime-node's default build; others are
  // tried when listed and the runtime falls back to cpu when they are missing.
  const providers = cfg.executionProviders.filter((p) => p === 'cpu' || p === 'cuda' || p === 'tensorrt')
  const opts: OrtModule.InferenceSession.SessionOptions = {
    executionProviders: providers.includes('cpu') ? ['cpu'] : ['cpu'],
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
