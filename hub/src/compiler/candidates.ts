// Candidate generation: one build per precision the plan tries, each opened
// in ORT, run on the validation samples and proven (prove.ts). A static int8
// build that misses only its accuracy budget is retried with its first, most
// sensitive layers kept in float (STATIC_KEEP_FLOAT_STEPS).
import type { Precision } from '@edgefleet/shared'
import { buildCandidate, type Built, type Prepared } from './build.js'
import { runAll } from './measure.js'
import { openSession, type NamedTensor, type Session } from './ort.js'
import { prove } from './prove.js'
import { measureRss } from './rss.js'
import type { Budgets, CandidateReport, Progress } from './report.js'

/** How many leading Conv/MatMul the planner leaves in float, in turn, when a full static build misses the accuracy budget. */
const STATIC_KEEP_FLOAT_STEPS = [2, 4, 8]

/** A build that passed every budget, with its open session for timing. */
export interface Candidate {
  built: Built
  report: CandidateReport
  session: Session
}

export interface GenerationInputs {
  prep: Prepared
  threads: number
  /** The float model's outputs on `validation`. */
  refs: Record<string, NamedTensor>[]
  validation: Record<string, NamedTensor>[]
  budgets: Budgets
  /** Measure each build's peak RSS in a child process (false: tests that do not look at RAM). */
  measureRam: boolean
  /** The caller forced a keep-float count: no retries then. */
  staticKeepFloat?: number
  progress: (p: Progress) => void
  /** Every session opened is added here; the caller releases them. */
  sessions: Session[]
}

/** Every precision's report (a retried one: its last attempt), and the builds that passed. */
export async function generateCandidates(
  precisions: readonly Precision[],
  genInputs: GenerationInputs,
): Promise<{ reports: CandidateReport[]; passing: Candidate[] }> {
  const reports: CandidateReport[] = []
  const passing: Candidate[] = []
  for (let rank = 0; rank < precisions.length; rank++) {
    const precision = precisions[rank]
    genInputs.progress({ phase: 'build', precision, done: rank, total: precisions.length })
    let tried = await attempt(genInputs, precision)
    // A static build that misses only the accuracy budget: keep the first few (most sensitive)
    // layers in float compute and try again, as long as that is what the caller left open.
    if (precision === 'int8-static' && genInputs.staticKeepFloat === undefined) {
      for (const keep of STATIC_KEEP_FLOAT_STEPS) {
        if (!tried.accuracyOnly) break
        const first = tried.report.reason
        tried = await attempt(genInputs, precision, keep)
        tried.report.notes = [...(tried.report.notes ?? []), `all layers quantized missed the budget (${first})`]
      }
    }
    if (tried.passed) passing.push(tried.passed)
    reports.push(tried.report)
    genInputs.progress({ phase: 'validate', precision, done: rank + 1, total: precisions.length })
  }
  return { reports, passing }
}

interface Attempt {
  report: CandidateReport
  /** The only budgets missed were accuracy ones. */
  accuracyOnly: boolean
  passed?: Candidate
}

/** Builds, opens, runs and proves one candidate. */
async function attempt(genInputs: GenerationInputs, precision: Precision, keepFloat?: number): Promise<Attempt> {
  const t0 = performance.now()
  const report: CandidateReport = { precision, verdict: 'fail' }
  let built: Built
  let session: Session
  try {
    built = await buildCandidate(
      genInputs.prep,
      precision,
      keepFloat === undefined ? {} : { staticKeepFloat: keepFloat },
    )
    session = await openSession(built.bytes, { threads: genInputs.threads })
  } catch (err) {
    report.reason = `build failed: ${(err as Error).message}`
    return { report, accuracyOnly: false }
  }
  genInputs.sessions.push(session)
  Object.assign(report, {
    sizeBytes: built.bytes.byteLength,
    plan: built.plan.byOp,
    weights: built.plan.weights,
    opset: built.opset,
    notes: built.notes,
    buildMs: Math.round(performance.now() - t0),
  })
  let gots: Record<string, NamedTensor>[]
  try {
    gots = await runAll(session, genInputs.validation)
  } catch (err) {
    report.reason = `build does not run: ${(err as Error).message.split('\n')[0]}`
    return { report, accuracyOnly: false }
  }
  const proof = prove(built, genInputs.refs, gots, genInputs.budgets)
  report.accuracy = proof.accuracy
  const fitMisses = [...proof.fitMisses]
  if (!proof.accuracyMisses.length && !fitMisses.length && genInputs.measureRam) {
    const ram = await measureRss(built.bytes, genInputs.validation[0], { threads: genInputs.threads }).catch(
      (err: unknown) => {
        report.reason = `RAM not measurable: ${(err as Error).message}`
        return undefined
      },
    )
    if (!ram) return { report, accuracyOnly: false }
    report.ramPeakMb = Math.round(ram.peakMb)
    if (ram.peakMb > genInputs.budgets.ramMb)
      fitMisses.push(
        `peak RSS ${ram.peakMb.toFixed(0)} MiB (Node + ONNX Runtime ${ram.baselineMb.toFixed(0)} MiB before the session) exceeds the RAM budget of ${genInputs.budgets.ramMb} MiB`,
      )
  }
  if (proof.accuracyMisses.length || fitMisses.length) {
    report.overBudget = [...proof.accuracyMisses, ...fitMisses]
    report.reason = report.overBudget.join('; ')
    return { report, accuracyOnly: !fitMisses.length }
  }
  report.verdict = 'pass'
  return { report, accuracyOnly: false, passed: { built, report, session } }
}
