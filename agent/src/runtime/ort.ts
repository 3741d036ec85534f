// The native backend: the agent's only door to onnxruntime-node (linux x64
// and arm64 builds). Loaded lazily: an agent with no model yet, or one on the
// wasm backend, does not pay for the native runtime (footprint).
import { availableParallelism } from 'node:os'
import type * as OrtModule from 'onnxruntime-node'
import type { TensorType, TypedData } from '@edgefleet/shared'
import type { InputMeta, ModelSession, RuntimeBackend, Tensor } from './session.js'

type Ort = typeof OrtModule
let ortPromise: Promise<Ort> | undefined

function loadOrt(): Promise<Ort> {
  return (ortPromise ??= import('onnxruntime-node'))
}

/** One entry of onnxruntime-node's `listSupportedBackends()`. */
export interface SupportedBackend {
  name: string
  /** Shipped inside the package; false: needs libraries installed beside it (cuda, tensorrt). */
  bundled: boolean
}

/**
 * Providers worth trying: all the build lists, bundled or not. cuda and
 * tensorrt are listed unbundled: they work where the device has CUDA's
 * libraries and fail to load elsewhere, which openWithProviders turns into
 * a fallback event [EF-5.7]. webgpu is listed but is no profile provider.
 */
export function knownProviders(supported: readonly SupportedBackend[]): Set<string> {
  return new Set(['cpu', ...supported.map((b) => b.name)])
}

const meta = (m: OrtModule.InferenceSession.ValueMetadata): InputMeta =>
  m.isTensor ? { name: m.name, type: m.type, shape: [...m.shape] } : { name: m.name, type: 'non-tensor', shape: [] }

/** Wraps an ORT session (node or web: same onnxruntime-common API) in the runtime interface. */
export function wrapSession(
  ort: Pick<Ort, 'Tensor'>,
  session: OrtModule.InferenceSession,
): Omit<ModelSession, 'provider'> {
  return {
    inputs: session.inputMetadata.map(meta),
    outputs: session.outputMetadata.map(meta),
    async run(feeds) {
      const f: Record<string, OrtModule.Tensor> = {}
      for (const [k, t] of Object.entries(feeds))
        f[k] = new ort.Tensor(t.type, t.data as OrtModule.Tensor.DataType, t.dims)
      const out = await session.run(f)
      const r: Record<string, Tensor> = {}
      for (const [k, t] of Object.entries(out))
        r[k] = { type: t.type as TensorType, dims: [...t.dims], data: t.data as TypedData }
      return r
    },
    release: () => session.release(),
  }
}

export const nativeBackend: RuntimeBackend = {
  cpuName: 'cpu',
  providers: async () => knownProviders((await loadOrt()).listSupportedBackends()),
  async open(path, provider, threads) {
    const ort = await loadOrt()
    const opts: OrtModule.InferenceSession.SessionOptions = {
      // CPU after the chosen provider: it runs the operators the provider cannot.
      executionProviders: provider === 'cpu' ? ['cpu'] : [provider, 'cpu'],
      // Never more threads than the machine has (simulated fleets share a host).
      intraOpNumThreads: Math.max(1, Math.min(threads, availableParallelism())),
      interOpNumThreads: 1,
      graphOptimizationLevel: 'all',
      // Idle spinning burns a core per session on a device doing anything else.
      extra: { session: { intra_op: { allow_spinning: '0' } } },
    }
    return wrapSession(ort, await ort.InferenceSession.create(path, opts))
  },
  version: async () => (await loadOrt()).env.versions.common,
}
