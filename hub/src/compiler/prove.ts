// Measurement of candidate builds: one build's outputs against the float
// model's on the validation samples and its size against the storage budget;
// then every passing build timed beside the float model (runs interleaved so
// load hits all alike, one thread on the hub), its latency estimated for the
// profile (estimate.ts) and held to the latency budget [EF-5.8].
import type { Built } from './build.js'
import { estimateMs, type LatencyModel } from './estimate.js'
import { compareOutputs, timeSideBySide, type Accuracy, type TimingOptions } from './measure.js'
import type { NamedTensor, Session } from './ort.js'
import type { Budgets, CandidateReport } from './report.js'

export interface Proof {
  accuracy: Accuracy
  /** Accuracy budgets missed (a build keeping more layers in float may meet them). */
  accuracyMisses: string[]
  /** Storage budget missed. */
  fitMisses: string[]
}

/** Holds one build's outputs (`gots`, on the validation samples) and bytes to the budgets. */
export function prove(
  built: Built,
  refs: Record<string, NamedTensor>[],
  gots: Record<string, NamedTensor>[],
  budgets: Budgets,
): Proof {
  const acc = compareOutputs(refs, gots)
  const accuracyMisses: string[] = []
  const fitMisses: string[] = []
  if (!(acc.cosine >= budgets.minCosine)) accuracyMisses.push(`cosine ${acc.cosine.toFixed(6)} < ${budgets.minCosine}`)
  if (acc.top1Agreement !== undefined && 1 - acc.top1Agreement > budgets.maxTop1Disagreement)
    accuracyMisses.push(`top-1 disagreement ${(1 - acc.top1Agreement).toFixed(3)} > ${budgets.maxTop1Disagreement}`)
  // A/B slots: the device holds the active and the staged build at once.
  if (2 * built.bytes.byteLength > budgets.storageBudgetMb * 2 ** 20)
    fitMisses.push(
      `2 × ${(built.bytes.byteLength / 2 ** 20).toFixed(1)} MiB exceeds the storage budget of ${budgets.storageBudgetMb} MiB`,
    )
  return { accuracy: acc, accuracyMisses, fitMisses }
}

/** The float model's timing, for the report. */
export interface FloatTiming {
  /** Median on the hub, one thread, ms. */
  hubMs: number
  /** The same, estimated for the profile's device. */
  estimatedMs: number
}

/**
 * Times the passing builds beside the float model, writes each one's hub time, per-round
 * times and device estimate into its report; returns the float model's. `false` skips timing:
 * every latency is then null.
 */
export async function timeCandidates(
  floatSession: Session,
  passing: readonly { session: Session; report: CandidateReport }[],
  input: Record<string, NamedTensor>,
  timing: TimingOptions | false | undefined,
  model: LatencyModel,
): Promise<FloatTiming | null> {
  if (timing === false || passing.length === 0) {
    for (const c of passing) c.report.latencyMs = null
    return null
  }
  const t = await timeSideBySide([floatSession, ...passing.map((c) => c.session)], input, timing)
  passing.forEach((c, i) => {
    c.report.hubLatencyMs = t.medianMs[i + 1]
    c.report.roundsMs = t.roundsMs[i + 1]
    c.report.latencyMs = estimateMs(t.medianMs[i + 1], model)
  })
  return { hubMs: t.medianMs[0], estimatedMs: estimateMs(t.medianMs[0], model) }
}

/** The latency budget: a build whose device estimate is over it fails with the numbers. */
export function latencyMiss(report: CandidateReport, budgetMs: number, model: LatencyModel): string | undefined {
  const est = report.latencyMs
  if (est === null || est === undefined || est <= budgetMs) return undefined
  return `estimated latency ${est.toFixed(2)} ms exceeds the budget of ${budgetMs} ms (hub ${report.hubLatencyMs?.toFixed(2)} ms at 1 thread × ${model.factor.toFixed(3)}: speed factor ${model.speedFactor}, ${model.threads} thread(s), parallel share ${model.parallelFraction.toFixed(2)}${model.scaling === 'accelerator' ? ', accelerator EP' : ''})`
}
