// The WebAssembly backend: the agent's only door to onnxruntime-web, for
// devices onnxruntime-node has no binary for (armv7) [EF-5.6]. Same
// onnxruntime-common API as the native one; the .wasm file is read from
// onnxruntime-web's dist/ beside its loader, so a package ships those files
// and nothing native. Loaded lazily, like the native runtime.
import { availableParallelism } from 'node:os'
import type * as OrtWebModule from 'onnxruntime-web'
import type { RuntimeBackend } from './session.js'
import { wrapSession } from './ort.js'

type OrtWeb = typeof OrtWebModule
let webPromise: Promise<OrtWeb> | undefined

function loadOrtWeb(threads: number): Promise<OrtWeb> {
  return (webPromise ??= import('onnxruntime-web').then((ort) => {
    // Process-wide in onnxruntime-web and fixed once the runtime starts: the first model's profile sets it.
    ort.env.wasm.numThreads = Math.max(1, Math.min(threads, availableParallelism()))
    return ort
  }))
}

export const wasmBackend: RuntimeBackend = {
  cpuName: 'wasm',
  // Only the WebAssembly CPU kernels exist in Node (webgpu/webnn are browser providers).
  providers: () => Promise.resolve(new Set(['cpu'])),
  async open(path, _provider, threads) {
    const ort = await loadOrtWeb(threads)
    const s = await ort.InferenceSession.create(path, { executionProviders: ['wasm'], graphOptimizationLevel: 'all' })
    // The web and node typings describe the same onnxruntime-common session.
    return wrapSession(ort, s)
  },
  // Loading the module does not start the WebAssembly runtime, so numThreads is still free to set later.
  version: async () => (await import('onnxruntime-web')).env.versions.common,
}
