// Measurement of candidate builds: one build's outputs against the float
// model's on the validation samples, its size and estimated RAM against the
// profile's budgets; then the median latency of every passing build timed
// beside the float model, runs interleaved so load hits all alike.
import type { Precision } from '@edgefleet/shared'
import type { Built } from './build.js'
import { compareOutputs, timeSideBySide, type Accuracy, type TimingOptions } from './measure.js'
import type { NamedTensor, Session } from './ort.js'
import type { Budgets, CandidateReport } from './report.js'

/** RSS of Node + onnxruntime-node + one session before any weight (BASELINES: 82 MiB with a tiny head). */
const RUNTIME_FLOOR_MB = 80

export function ramEstimateMb(precision: Precision, buildBytes: number, floatBytes: number): number {
  // Weight-only and fp16 builds expand weights to fp32 at load or per run; int8 kernels keep them packed.
  const resident = precision === 'int8-dynamic' || precision === 'int8-static' ? buildBytes * 2 : floatBytes * 2
  return Math.round(RUNTIME_FLOOR_MB + resident / 2 ** 20)
}

export interface Proof {
  accuracy: Accuracy
  ramEstimateMb: number
  /** Accuracy budgets missed (a build keeping more layers in float may meet them). */
  accuracyMisses: string[]
  /** Storage and RAM budgets missed. */
  fitMisses: string[]
}

/** Holds one build's outputs (`gots`, on the validation samples) and bytes to the budgets. */
export function prove(
  built: Built,
  refs: Record<string, NamedTensor>[],
  gots: Record<string, NamedTensor>[],
  budgets: Budgets,
  floatBytes: number,
): Proof {
  const acc = compareOutputs(refs, gots)
  const ram = ramEstimateMb(built.precision, built.bytes.byteLength, floatBytes)
  const accuracyMisses: string[] = []
  const fitMisses: string[] = []
  if (!(acc.cosine >= budgets.minCosine)) accuracyMisses.push(`cosine ${acc.cosine.toFixed(4)} < ${budgets.minCosine}`)
  if (acc.top1Agreement !== undefined && 1 - acc.top1Agreement > budgets.maxTop1Disagreement)
    accuracyMisses.push(`top-1 disagreement ${(1 - acc.top1Agreement).toFixed(3)} > ${budgets.maxTop1Disagreement}`)
  // A/B slots: the device holds the active and the staged build at once.
  if (2 * built.bytes.byteLength > budgets.storageBudgetMb * 2 ** 20)
    fitMisses.push(
      `2 × ${(built.bytes.byteLength / 2 ** 20).toFixed(1)} MiB exceeds the storage budget of ${budgets.storageBudgetMb} MiB`,
    )
  if (ram > budgets.ramMb) fitMisses.push(`estimated RAM ${ram} MiB exceeds ${budgets.ramMb} MiB`)
  return { accuracy: acc, ramEstimateMb: ram, accuracyMisses, fitMisses }
}

/**
 * Times the passing builds beside the float model and writes each one's
 * latency into its report; returns the float model's. `false` skips timing:
 * every latency is then null.
 */
export async function timeCandidates(
  floatSession: Session,
  passing: readonly { session: Session; report: CandidateReport }[],
  input: Record<string, NamedTensor>,
  timing: TimingOptions | false | undefined,
): Promise<number | null> {
  if (timing === false || passing.length === 0) {
    for (const c of passing) c.report.latencyMs = null
    return null
  }
  const times = await timeSideBySide([floatSession, ...passing.map((c) => c.session)], input, timing)
  passing.forEach((c, i) => (c.report.latencyMs = times[i + 1]))
  return times[0]
}
