// What a build costs on the profile's device rather than on the hub: latency
// from the hub's one-thread time (steady on a shared machine) scaled by the
// profile's speed factor and thread count, and RAM as the peak RSS of a real
// session run in a child process (rss.ts). Both are checked against the
// profile's budgets [EF-5.8].
import type { FirmwareProfile } from '@edgefleet/shared'

/** Execution providers that take the model off the CPU cores: no thread scaling for them. */
const ACCELERATOR_EPS = new Set(['cuda', 'tensorrt', 'nnapi', 'qnn', 'coreml'])

export interface LatencyModel {
  /** The profile's speedFactor (1 when it sets none). */
  speedFactor: number
  /** Intra-op threads on the device. */
  threads: number
  /** Share of the model's one-thread time that parallelizes (Amdahl), measured on the hub's float model. */
  parallelFraction: number
  /** 'threads': CPU-class EP, time scales with threads; 'accelerator': the factor is the accelerator's own ratio. */
  scaling: 'threads' | 'accelerator'
  /** The device-time factor applied to the hub's one-thread time. */
  factor: number
}

/**
 * Amdahl's parallel share from one- and two-thread times: t2 = t1 ((1 − p) + p/2).
 * Clamped to [0, 1]; on a loaded hub t2 comes out high, so p low and the estimate conservative.
 */
export function parallelFraction(oneThreadMs: number, twoThreadMs: number | null): number {
  if (twoThreadMs === null || !(oneThreadMs > 0)) return 0
  return Math.min(1, Math.max(0, 2 * (1 - twoThreadMs / oneThreadMs)))
}

export function latencyModel(profile: FirmwareProfile, p: number): LatencyModel {
  const speedFactor = profile.speedFactor ?? 1
  const threads = profile.threads ?? profile.cores
  const scaling = ACCELERATOR_EPS.has(profile.executionProviders[0]) ? 'accelerator' : 'threads'
  const factor = scaling === 'accelerator' ? speedFactor : speedFactor * (1 - p + p / threads)
  return { speedFactor, threads, parallelFraction: p, scaling, factor }
}

/** The device latency estimate for a build timed at `hubOneThreadMs` on the hub. */
export function estimateMs(hubOneThreadMs: number, m: LatencyModel): number {
  return hubOneThreadMs * m.factor
}
