// What a compile reports while it runs (progress) and about each candidate
// build, and the budgets a candidate is held to: the profile's own, or the
// defaults where it sets none.
import type { FirmwareProfile, Precision } from '@edgefleet/shared'
import type { Accuracy } from './measure.js'

export interface Progress {
  phase: 'load' | 'calibrate' | 'build' | 'validate' | 'time' | 'done'
  precision?: Precision
  /** Steps done and total within the phase (a progress bar's fill). */
  done: number
  total: number
}

export interface CandidateReport {
  precision: Precision
  verdict: 'pass' | 'fail'
  reason?: string
  sizeBytes?: number
  /** The device latency estimate, ms (estimate.ts); null when the compile did not time builds. */
  latencyMs?: number | null
  /** Median on the hub at one thread, ms. */
  hubLatencyMs?: number
  /** Every timed round on the hub, ms (paired with the other builds' rounds; not in the JSON report). */
  roundsMs?: number[]
  accuracy?: Accuracy
  /** Peak RSS of a fresh process running this build, MiB (rss.ts). */
  ramPeakMb?: number
  /** Budgets this build missed, with numbers (accuracy, storage, RAM, latency). */
  overBudget?: string[]
  plan?: Record<string, Record<string, number>>
  weights?: { initializer: number; constantNode: number; subgraph: number }
  opset?: number
  notes?: string[]
  buildMs?: number
}

/** Budgets when the profile does not set them. */
export const defaultAccuracyBudget = { minCosine: 0.98, maxTop1Disagreement: 0.05 }

export interface Budgets {
  minCosine: number
  maxTop1Disagreement: number
  storageBudgetMb: number
  ramMb: number
  latencyBudgetMs: number
}

export function budgetsOf(profile: FirmwareProfile): Budgets {
  return {
    minCosine: profile.accuracyBudget?.minCosine ?? defaultAccuracyBudget.minCosine,
    maxTop1Disagreement: profile.accuracyBudget?.maxTop1Disagreement ?? defaultAccuracyBudget.maxTop1Disagreement,
    storageBudgetMb: profile.storageBudgetMb,
    ramMb: profile.ramMb,
    latencyBudgetMs: profile.latencyBudgetMs,
  }
}
