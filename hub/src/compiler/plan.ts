// The per-profile planner: checks the model against the profile, prepares the
// float reference (session, calibration and held-out validation samples),
// then runs the three steps: candidate generation (candidates.ts: each build
// the profile allows, proven to load, run, match the float model within the
// accuracy budget and fit storage and RAM), measurement (prove.ts: timed
// beside the float model with the profile's thread count) and the choice
// (choose.ts). When no candidate passes the compile fails with every
// candidate's reason, so it can never be deployed.
import { EdgeFleetError, type FirmwareProfile, type Precision, type TensorSpec } from '@edgefleet/shared'
import { openSession, sessionSignature, type NamedTensor, type Session } from './ort.js'
import { decodeModel, opsetOf } from './onnx/proto.js'
import { Prepared, type Built } from './build.js'
import { loadSamples, type CalibrationMethod } from './calibration.js'
import { generateCandidates, type Candidate } from './candidates.js'
import { chooseBuild } from './choose.js'
import { runAll, type TimingOptions } from './measure.js'
import type { OfflineLevel } from './optimize.js'
import type { DynamicForm } from './passes/dynamic.js'
import { timeCandidates } from './prove.js'
import { budgetsOf, type Budgets, type CandidateReport, type Progress } from './report.js'

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
  /** Force how many leading static candidates stay float; by default the planner tries 0, then STATIC_KEEP_FLOAT_STEPS (candidates.ts). */
  staticKeepFloat?: number
  /** Our own float fusions (affine folding into Conv, HardSwish) where the profile allows opset 14 (default true). */
  fuse?: boolean
  onProgress?: (p: Progress) => void
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
  budgets: Budgets
}

export async function planBuild(model: Uint8Array, profile: FirmwareProfile, opts: PlanOptions = {}): Promise<Planned> {
  const progress = opts.onProgress ?? (() => {})
  const threads = profile.threads ?? profile.cores
  const precisions = precisionsToTry(model, profile, opts.precision ?? 'auto')
  const budgets = budgetsOf(profile)
  progress({ phase: 'load', done: 0, total: 1 })
  const floatSession = await openSession(model, { threads })
  const sessions: Session[] = [floatSession]
  try {
    const sig = sessionSignature(floatSession)
    const samples = planSamples(sig.inputs, opts, precisions.includes('int8-static'))
    const refs = await floatReferences(floatSession, samples.validation, sig.inputs, opts.inputShapes)
    progress({ phase: 'load', done: 1, total: 1 })
    const prep = prepare(model, profile, opts, samples.calibration, progress)
    const { reports, passing } = await generateCandidates(precisions, {
      prep,
      threads,
      refs,
      validation: samples.validation,
      budgets,
      floatBytes: model.byteLength,
      staticKeepFloat: opts.staticKeepFloat,
      progress,
      sessions,
    })
    const timed = opts.timing !== false && passing.length > 0
    if (timed) progress({ phase: 'time', done: 0, total: 1 })
    const floatLatencyMs = await timeCandidates(floatSession, passing, samples.validation[0], opts.timing)
    if (timed) progress({ phase: 'time', done: 1, total: 1 })
    if (!passing.length) {
      throw new EdgeFleetError(
        'EF_ERR_BUILD_FAILED',
        `no candidate fits profile ${profile.id}: ${reports.map((c) => `${c.precision}: ${c.reason}`).join(' | ')}`,
      )
    }
    const best = choose(passing, profile, budgets)
    progress({ phase: 'done', precision: best.built.precision, done: 1, total: 1 })
    return {
      built: best.built,
      report: best.report,
      candidates: reports,
      floatLatencyMs,
      floatSizeBytes: model.byteLength,
      ...sig,
      warnings: samples.warnings,
      calibration: {
        origin: samples.origin,
        samples: samples.calibration.length,
        validationSamples: samples.validation.length,
        method: opts.calibrationMethod ?? 'minmax',
      },
      budgets,
    }
  } finally {
    for (const s of sessions) await s.release()
  }
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

/** The float model's offline-optimized forms, shared by every candidate build. */
function prepare(
  model: Uint8Array,
  profile: FirmwareProfile,
  opts: PlanOptions,
  calibration: Record<string, NamedTensor>[],
  progress: (p: Progress) => void,
): Prepared {
  return new Prepared({
    original: model,
    profile,
    optimizationLevel: opts.optimizationLevel,
    dynamicForm: opts.dynamicForm,
    staticOps: opts.staticOps,
    staticKeepFloat: opts.staticKeepFloat,
    fuse: opts.fuse,
    calibration: {
      samples: calibration,
      method: opts.calibrationMethod ?? 'minmax',
      percentile: opts.calibrationPercentile,
      onSample: (done, total) => progress({ phase: 'calibrate', precision: 'int8-static', done, total }),
    },
  })
}

/** The passing build the profile's policy chooses (choose.ts); a note says why when it is not the fastest. */
function choose(passing: Candidate[], profile: FirmwareProfile, budgets: Budgets): Candidate {
  const choice = chooseBuild(
    passing.map((c) => ({
      precision: c.built.precision,
      sizeBytes: c.built.bytes.byteLength,
      latencyMs: c.report.latencyMs,
    })),
    { metered: profile.network?.metered ?? false, latencyBudgetMs: budgets.latencyBudgetMs },
  )
  const best = passing[choice.index]
  if (choice.note) best.report.notes = [...(best.report.notes ?? []), choice.note]
  return best
}

/** The precisions the plan tries; refuses a model outside the profile's opsets or a precision it does not allow. */
function precisionsToTry(model: Uint8Array, profile: FirmwareProfile, wanted: 'auto' | Precision): Precision[] {
  const opset = opsetOf(decodeModel(model))
  if (opset === undefined || opset < profile.opset.min || opset > profile.opset.max) {
    throw new EdgeFleetError(
      'EF_ERR_OPSET_OUT_OF_RANGE',
      `model opset ${opset ?? 'none'} is outside profile ${profile.id}'s range ${profile.opset.min}..${profile.opset.max}`,
    )
  }
  if (wanted !== 'auto' && !profile.precisions.includes(wanted)) {
    throw new EdgeFleetError(
      'EF_ERR_BUILD_FAILED',
      `profile ${profile.id} does not allow precision ${wanted} (allowed: ${profile.precisions.join(', ')})`,
    )
  }
  return wanted === 'auto' ? [...profile.precisions] : [wanted]
}

interface PlanSamples {
  origin: string
  calibration: Record<string, NamedTensor>[]
  validation: Record<string, NamedTensor>[]
  warnings: string[]
}

/** Calibration samples (real ones from a folder, else synthetic) and the validation samples held out from them. */
function planSamples(inputs: TensorSpec[], opts: PlanOptions, needsCalibration: boolean): PlanSamples {
  const cal =
    needsCalibration || opts.calibrationDir
      ? loadSamples(inputs, {
          calibrationDir: opts.calibrationDir,
          shapes: opts.inputShapes,
          values: opts.inputValues,
          count: opts.calibrationSamples ?? 8,
          seed: 1,
        })
      : { samples: [], origin: 'synthetic' as const, warnings: [] }
  const warnings = needsCalibration ? [...cal.warnings] : []
  const nVal = opts.validationSamples ?? 4
  // Validate on real samples held out from calibration: a build proven on the very inputs it
  // was calibrated on looks better than it is (ranges fit them exactly). With too few files
  // to split, the overlap is reported.
  if (cal.origin !== 'synthetic' && cal.samples.length) {
    const validation = cal.samples.slice(-nVal)
    if (cal.samples.length >= nVal + 2)
      return {
        origin: cal.origin,
        calibration: cal.samples.slice(0, cal.samples.length - validation.length),
        validation,
        warnings,
      }
    warnings.push(
      `only ${cal.samples.length} calibration samples: validation reuses ${validation.length} of them, so accuracy is optimistic`,
    )
    return { origin: cal.origin, calibration: cal.samples, validation, warnings }
  }
  const validation = loadSamples(inputs, {
    shapes: opts.inputShapes,
    values: opts.inputValues,
    count: nVal,
    seed: 100_003,
  }).samples
  return { origin: cal.origin, calibration: cal.samples, validation, warnings }
}
