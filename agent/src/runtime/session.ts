// The agent's one runtime interface: a model session behind two backends,
// onnxruntime-node (`native`, ort.ts) and onnxruntime-web's WebAssembly build
// (`wasm`, ort-wasm.ts), chosen by the profile [EF-5.6]; and the order in
// which a session tries the profile's execution providers, falling back to
// the CPU with the reason recorded [EF-5.7]. Everything outside runtime/
// sees only these types: the same health check, host and shadow worker run
// on either backend.
import type { FirmwareProfile, TensorType, TypedData } from '@edgefleet/shared'
import { nativeBackend } from './ort.js'
import { wasmBackend } from './ort-wasm.js'

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
  /** The execution provider the session runs on (`cpu`, `cuda`, `tensorrt`, `wasm`, …) [EF-5.7]. */
  readonly provider: string
  /** The profile's providers passed over for this session, with why [EF-5.7]. */
  readonly fallbacks?: readonly ProviderFallback[]
  run(feeds: Record<string, Tensor>): Promise<Record<string, Tensor>>
  release(): Promise<void>
}

export type BackendName = 'native' | 'wasm'

export interface SessionConfig {
  threads: number
  /** Profile's providers, most preferred first [EF-5.3]. */
  executionProviders: readonly string[]
  /** Which runtime opens the model; default native. */
  backend?: BackendName
}

/** A provider the session did not run on, and why (the `provider_fallback` event's message) [EF-5.7]. */
export interface ProviderFallback {
  provider: string
  reason: string
}

/** One runtime: the providers it may try, and a session on one provider (CPU operators fill in for the rest). */
export interface RuntimeBackend {
  /** Providers this runtime knows on this platform (by the profile's names), `cpu` included. */
  providers(): Promise<ReadonlySet<string>>
  /** The name the CPU fallback runs under (`cpu`, or `wasm`). */
  readonly cpuName: string
  open(path: string, provider: string, threads: number): Promise<Omit<ModelSession, 'provider'>>
  /** The ONNX Runtime version this backend runs (loads the runtime), for manifests' `requires.ort` [EF-3.8]. */
  version(): Promise<string>
}

/**
 * The runtime a device uses [EF-5.6]: onnxruntime-node where it ships a
 * binary (linux x64 and arm64), onnxruntime-web's WebAssembly build on
 * armv7, where it has none. `forced` (config `runtime`) overrides it.
 */
export function chooseBackend(arch: FirmwareProfile['arch'] | undefined, forced?: BackendName | 'auto'): BackendName {
  if (forced && forced !== 'auto') return forced
  return arch === 'armv7' ? 'wasm' : 'native'
}

/** The profile's non-CPU providers this runtime knows, in order, and those it does not with the reason. */
export function providerPlan(
  wanted: readonly string[],
  known: ReadonlySet<string>,
  runtime: string,
): { tries: string[]; skipped: ProviderFallback[] } {
  const tries: string[] = []
  const skipped: ProviderFallback[] = []
  for (const p of wanted) {
    if (p === 'cpu' || tries.includes(p)) continue
    if (known.has(p)) tries.push(p)
    else skipped.push({ provider: p, reason: `${p} is not available in ${runtime} on this platform` })
  }
  return { tries, skipped }
}

/**
 * Providers that failed to load their libraries in this process: not tried
 * again for the next model (a missing libcudart does not come back), while a
 * provider refusing one model (say, an operator TensorRT cannot build) is.
 */
const unloadable = new Map<string, string>()

/**
 * Opens `path` on the first of the profile's providers that initialises, CPU
 * last [EF-5.7]; the session's `fallbacks` list each provider passed over
 * with the reason (empty when the first choice ran).
 */
async function openWithProviders(
  backend: RuntimeBackend,
  runtime: string,
  path: string,
  cfg: SessionConfig,
): Promise<ModelSession> {
  const { tries, skipped } = providerPlan(cfg.executionProviders, await backend.providers(), runtime)
  const fallbacks = [...skipped]
  for (const provider of tries) {
    const known = unloadable.get(`${runtime}:${provider}`)
    if (known) {
      fallbacks.push({ provider, reason: known })
      continue
    }
    try {
      const s = await backend.open(path, provider, cfg.threads)
      return { ...s, provider, fallbacks }
    } catch (err) {
      const reason = `${provider} failed to initialise: ${(err as Error).message.split('\n')[0]}`
      if (/failed to load/i.test(reason)) unloadable.set(`${runtime}:${provider}`, reason)
      fallbacks.push({ provider, reason })
    }
  }
  const s = await backend.open(path, backend.cpuName, cfg.threads)
  return { ...s, provider: backend.cpuName, fallbacks }
}

/** A session for `path` on the configured backend and the first of the profile's providers that works. */
/** The ONNX Runtime version models are opened with under `cfg` [EF-3.8]. */
export function runtimeVersion(cfg: SessionConfig): Promise<string> {
  return (cfg.backend === 'wasm' ? wasmBackend : nativeBackend).version()
}

export function createSession(path: string, cfg: SessionConfig): Promise<ModelSession> {
  return cfg.backend === 'wasm'
    ? openWithProviders(wasmBackend, 'onnxruntime-web (WebAssembly)', path, cfg)
    : openWithProviders(nativeBackend, 'onnxruntime-node', path, cfg)
}
