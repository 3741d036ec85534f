// The per-profile planner: makes each candidate build the profile allows,
// proves it (loads in ORT, runs, matches the float model within the accuracy
// budget, fits storage and RAM), times it beside the float model with the
// profile's thread count, and ships the fastest that passes. When none passes
// the compile fails with every candidate's reason, so it can never be deployed.
import { EdgeFleetError, type FirmwareProfile, type Precision, type TensorSpec } from '@edgefleet/shared'
import { openSession, sessionSignature, type Session, type NamedTensor } from './ort.js'
import { decodeModel, opsetOf } from './onnx/proto.js'
import { buildCandidate, Prepared, type Built } from './build.js'
import { loadSamples, type CalibrationMethod } from './calibration.js'
import { compareOutputs, runAll, timeSideBySide, type Accuracy, type TimingOptions } from './measure.js'
import type { OfflineLevel } from './optimize.js'
import type { DynamicForm } from './passes/dynamic.js'

export interface Progress {
  phase: 'load' | 'calibrate' | 'build' | 'validate' | 'time' | 'done'
  precision?: Precision
  /** Steps done and total within the phase (a progress bar's fill). */
  done: number
  total: number
}

export interface PlanOptions {
  precision?: 'auto' | Precision
  inputShapes?: Record<string, number[]>
  inputValues?: Record<string, number>
  calibrationDir?: string
  calibrationMethod?: CalibrationMethod
  /** For percentile calibration, the share of values inside the range (99.99). */
  calibrationPercentile?: number
  /** Synthetic calibration samples when there is no folder. */
  calibrationSamples?: number
  validationSamples?: number
  /** false skips timing (tests); latency is then reported as null and the planner prefers the smallest build. */
  timing?: TimingOptions | false
  optimizationLevel?: OfflineLevel
  dynamicForm?: DynamicForm
  staticOps?: string[]
  /** Force how many leading static candidates stay float; by default the planner tries 0, then STATIC_KEEP_FLOAT_STEPS. */
  staticKeepFloat?: number
  /** Our own float fusions (affine folding into Conv, HardSwish) where the profile allows opset 14 (default true). */
  fuse?: boolean
  onProgress?: (p: Progress) => void
}

/** Budgets when the profile does not set them. */
export const defaultAccuracyBudget = { minCosine: 0.98, maxTop1Disagreement: 0.05 }
/** How many leading Conv/MatMul the planner leaves in float, in turn, when a full static build misses the accuracy budget. */
export const STATIC_KEEP_FLOAT_STEPS = [2, 4, 8]
/** RSS of Node + onnxruntime-node + one session before any weight (BASELINES: 82 MiB with a tiny head). */
const RUNTIME_FLOOR_MB = 80

export interface CandidateReport {
  precision: Precision
  verdict: 'pass' | 'fail'
  reason?: string
  sizeBytes?: number
  latencyMs?: number | null
  accuracy?: Accuracy
  ramEstimateMb?: number
  plan?: Record<string, Record<string, number>>
  weights?: { initializer: number; constantNode: number; subgraph: number }
  opset?: number
  notes?: string[]
  buildMs?: number
}

export interface Planned {
  built: Built
  report: CandidateReport
  candidates: CandidateReport[]
  floatLatencyMs: number | null
  floatSizeBytes: number
  inputs: TensorSpec[]
  outputs: TensorSpec[]
  warnings: string[]
  calibration: { origin: string; samples: number; validationSamples: number; method: CalibrationMethod }
  budgets: {
    minCosine: number
    maxTop1Disagreement: number
    storageBudgetMb: number
    ramMb: number
    latencyBudgetMs: number
  }
}

function ramEstimateMb(precision: Precision, buildBytes: number, floatBytes: number): number {
  // Weight-only and fp16 builds expand weights to fp32 at load or per run; int8 kernels keep them packed.
  const resident = precision === 'int8-dynamic' || precision === 'int8-static' ? buildBytes * 2 : floatBytes * 2
  return Math.round(RUNTIME_FLOOR_MB + resident / 2 ** 20)
}

/**
 * The float model's outputs on the validation inputs. When ORT cannot run it and some input's
 * symbolic dims were guessed (EF-3.4: batch 1, others a fixed size), the guess is the likely cause,
 * so the error says which inputs need a shape: EF_ERR_MODEL_SHAPE_REQUIRED rather than ORT's bare message.
 */
async function floatReferences(
  session: Session,
  samples: Record<string, NamedTensor>[],
  inputs: TensorSpec[],
  shapes: Record<string, number[]> | undefined,
): Promise<Record<string, NamedTensor>[]> {
  try {
    return await runAll(session, samples)
  } catch (err) {
    const guessed = inputs.filter((i) => !shapes?.[i.name] && i.dims.some((d) => typeof d !== 'number' || d < 0))
    if (!guessed.length) throw err
    const first = samples[0] ?? {}
    const which = guessed
      .map((i) => `${i.name} [${i.dims.join(', ')}] (tried ${first[i.name]?.dims.join(',') ?? '?'})`)
      .join('; ')
    throw new EdgeFleetError(
      'EF_ERR_MODEL_SHAPE_REQUIRED',
      `${which}. Pass --shape NAME=d,d,… for each (model add, compile) or options.inputShapes over the API. ` +
        `ONNX Runtime said: ${(err as Error).message.split('\n')[0]}`,
      { cause: err },
    )
  }
}

export async function planBuild(model: Uint8Array, profile: FirmwareProfile, opts: PlanOptions = {}): Promise<Planned> {
  const progress = opts.onProgress ?? (() => {})
  const threads = profile.threads ?? profile.cores
  const parsed = decodeModel(model)
  const opset = opsetOf(parsed)
  if (opset === undefined || opset < profile.opset.min || opset > profile.opset.max) {
    throw new EdgeFleetError(
      'EF_ERR_OPSET_OUT_OF_RANGE',
      `model opset ${opset ?? 'none'} is outside profile ${profile.id}'s range ${profile.opset.min}..${profile.opset.max}`,
    )
  }
  const wanted = opts.precision ?? 'auto'
  if (wanted !== 'auto' && !profile.precisions.includes(wanted)) {
    throw new EdgeFleetError(
      'EF_ERR_BUILD_FAILED',
      `profile ${profile.id} does not allow precision ${wanted} (allowed: ${profile.precisions.join(', ')})`,
    )
  }
  const precisions: Precision[] = wanted === 'auto' ? [...profile.precisions] : [wanted]
  const budgets = {
    minCosine: profile.accuracyBudget?.minCosine ?? defaultAccuracyBudget.minCosine,
    maxTop1Disagreement: profile.accuracyBudget?.maxTop1Disagreement ?? defaultAccuracyBudget.maxTop1Disagreement,
    storageBudgetMb: profile.storageBudgetMb,
    ramMb: profile.ramMb,
    latencyBudgetMs: profile.latencyBudgetMs,
  }

  progress({ phase: 'load', done: 0, total: 1 })
  const floatSession = await openSession(model, { threads })
  const sessions: Session[] = [floatSession]
  try {
    const sig = sessionSignature(floatSession)
    const warnings: string[] = []
    const needsCalibration = precisions.includes('int8-static')
    const cal =
      needsCalibration || opts.calibrationDir
        ? loadSamples(sig.inputs, {
            calibrationDir: opts.calibrationDir,
            shapes: opts.inputShapes,
            values: opts.inputValues,
            count: opts.calibrationSamples ?? 8,
            seed: 1,
          })
        : { samples: [], origin: 'synthetic' as const, warnings: [] }
    if (needsCalibration) warnings.push(...cal.warnings)
    const nVal = opts.validationSamples ?? 4
    // Validate on real samples held out from calibration: a build proven on the very inputs it
    // was calibrated on looks better than it is (ranges fit them exactly). With too few files
    // to split, the overlap is reported.
    let validation: typeof cal.samples
    let calSamples = cal.samples
    if (cal.origin !== 'synthetic' && cal.samples.length) {
      validation = cal.samples.slice(-nVal)
      if (cal.samples.length >= nVal + 2) calSamples = cal.samples.slice(0, cal.samples.length - validation.length)
      else
        warnings.push(
          `only ${cal.samples.length} calibration samples: validation reuses ${validation.length} of them, so accuracy is optimistic`,
        )
    } else
      validation = loadSamples(sig.inputs, {
        shapes: opts.inputShapes,
        values: opts.inputValues,
        count: nVal,
        seed: 100_003,
      }).samples
    const refs = await floatReferences(floatSession, validation, sig.inputs, opts.inputShapes)
    progress({ phase: 'load', done: 1, total: 1 })

    const prep = new Prepared({
      original: model,
      profile,
      optimizationLevel: opts.optimizationLevel,
      dynamicForm: opts.dynamicForm,
      staticOps: opts.staticOps,
      staticKeepFloat: opts.staticKeepFloat,
      fuse: opts.fuse,
      calibration: {
        samples: calSamples,
        method: opts.calibrationMethod ?? 'minmax',
        percentile: opts.calibrationPercentile,
        onSample: (done, total) => progress({ phase: 'calibrate', precision: 'int8-static', done, total }),
      },
    })
    const candidates: CandidateReport[] = []
    const ok: Array<{ built: Built; report: CandidateReport; session: Session }> = []
    /** Builds and proves one candidate; `accuracyOnly` says the only problems were accuracy budgets. */
    const attempt = async (
      precision: Precision,
      keepFloat?: number,
    ): Promise<{ report: CandidateReport; accuracyOnly: boolean }> => {
      const t0 = performance.now()
      const report: CandidateReport = { precision, verdict: 'fail' }
      let built: Built
      let session: Session
      try {
        built = await buildCandidate(prep, precision, keepFloat === undefined ? {} : { staticKeepFloat: keepFloat })
        session = await openSession(built.bytes, { threads })
      } catch (err) {
        report.reason = `build failed: ${(err as Error).message}`
        return { report, accuracyOnly: false }
      }
      sessions.push(session)
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
        gots = await runAll(session, validation)
      } catch (err) {
        report.reason = `build does not run: ${(err as Error).message.split('\n')[0]}`
        return { report, accuracyOnly: false }
      }
      const acc = compareOutputs(refs, gots)
      report.accuracy = acc
      report.ramEstimateMb = ramEstimateMb(precision, built.bytes.byteLength, model.byteLength)
      const accuracy: string[] = []
      const other: string[] = []
      if (!(acc.cosine >= budgets.minCosine)) accuracy.push(`cosine ${acc.cosine.toFixed(4)} < ${budgets.minCosine}`)
      if (acc.top1Agreement !== undefined && 1 - acc.top1Agreement > budgets.maxTop1Disagreement)
        accuracy.push(`top-1 disagreement ${(1 - acc.top1Agreement).toFixed(3)} > ${budgets.maxTop1Disagreement}`)
      // A/B slots: the device holds the active and the staged build at once.
      if (2 * built.bytes.byteLength > budgets.storageBudgetMb * 2 ** 20)
        other.push(
          `2 × ${(built.bytes.byteLength / 2 ** 20).toFixed(1)} MiB exceeds the storage budget of ${budgets.storageBudgetMb} MiB`,
        )
      if (report.ramEstimateMb > budgets.ramMb)
        other.push(`estimated RAM ${report.ramEstimateMb} MiB exceeds ${budgets.ramMb} MiB`)
      if (accuracy.length || other.length) {
        report.reason = [...accuracy, ...other].join('; ')
        return { report, accuracyOnly: !other.length }
      }
      report.verdict = 'pass'
      ok.push({ built, report, session })
      return { report, accuracyOnly: false }
    }
    for (let i = 0; i < precisions.length; i++) {
      const precision = precisions[i]
      progress({ phase: 'build', precision, done: i, total: precisions.length })
      let { report, accuracyOnly } = await attempt(precision)
      // A static build that misses only the accuracy budget: keep the first few (most sensitive)
      // layers in float compute and try again, as long as that is what the caller left open.
      if (precision === 'int8-static' && opts.staticKeepFloat === undefined) {
        for (const keep of STATIC_KEEP_FLOAT_STEPS) {
          if (!accuracyOnly) break
          const first = report.reason
          ;({ report, accuracyOnly } = await attempt(precision, keep))
          report.notes = [...(report.notes ?? []), `all layers quantized missed the budget (${first})`]
        }
      }
      candidates.push(report)
      progress({ phase: 'validate', precision, done: i + 1, total: precisions.length })
    }

    let floatLatencyMs: number | null = null
    if (opts.timing !== false && ok.length) {
      progress({ phase: 'time', done: 0, total: 1 })
      const times = await timeSideBySide([floatSession, ...ok.map((c) => c.session)], validation[0], opts.timing)
      floatLatencyMs = times[0]
      ok.forEach((c, i) => (c.report.latencyMs = times[i + 1]))
      progress({ phase: 'time', done: 1, total: 1 })
    } else ok.forEach((c) => (c.report.latencyMs = null))

    if (!ok.length) {
      throw new EdgeFleetError(
        'EF_ERR_BUILD_FAILED',
        `no candidate fits profile ${profile.id}: ${candidates.map((c) => `${c.precision}: ${c.reason}`).join(' | ')}`,
      )
    }
    // Fastest wins; without timing (or on a tie) the smaller build. On a metered network every
    // downloaded byte costs, so there the smallest build that meets the latency budget wins
    // (int8-weight with compact storage: ~0.26 of fp32), and only if none does, the fastest.
    ok.sort(
      (a, b) =>
        (a.report.latencyMs ?? 0) - (b.report.latencyMs ?? 0) || a.built.bytes.byteLength - b.built.bytes.byteLength,
    )
    let best = ok[0]
    if (profile.network?.metered) {
      const inBudget = ok.filter(
        (c) =>
          c.report.latencyMs === null ||
          c.report.latencyMs === undefined ||
          c.report.latencyMs <= budgets.latencyBudgetMs,
      )
      const smallest = [...inBudget].sort((a, b) => a.built.bytes.byteLength - b.built.bytes.byteLength)[0]
      if (smallest) {
        best = smallest
        if (smallest !== ok[0])
          best.report.notes = [
            ...(best.report.notes ?? []),
            `metered network: smallest build within the ${budgets.latencyBudgetMs} ms latency budget chosen over the fastest (${ok[0].built.precision})`,
          ]
      }
    }
    progress({ phase: 'done', precision: best.built.precision, done: 1, total: 1 })
    return {
      built: best.built,
      report: best.report,
      candidates,
      floatLatencyMs,
      floatSizeBytes: model.byteLength,
      ...sig,
      warnings,
      calibration: {
        origin: cal.origin,
        samples: calSamples.length,
        validationSamples: validation.length,
        method: opts.calibrationMethod ?? 'minmax',
      },
      budgets,
    }
  } finally {
    for (const s of sessions) await s.release()
  }
}
