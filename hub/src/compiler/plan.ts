// The per-profile planner: checks the model against the profile, prepares the
// float reference (session, calibration and held-out validation samples),
// then runs the three steps: candidate generation (candidates.ts: each build
// the profile allows, proven to load, run, match the float model within the
// accuracy budget and fit storage and measured RAM), measurement (prove.ts:
// timed beside the float model, latency estimated for the profile and held to
// its budget) and the choice (choose.ts: the profile's preference order, the
// previous version's precision, a margin). When no candidate passes the
// compile fails with every candidate's reason — EF_ERR_BUILD_OVER_BUDGET when
// builds ran but missed budgets [EF-5.8] — so it can never be deployed.
import { availableParallelism } from 'node:os'
import { EdgeFleetError, type FirmwareProfile, type Precision, type TensorSpec } from '@edgefleet/shared'
import { openSession, sessionSignature, type NamedTensor, type Session } from './ort.js'
import { decodeModel, opsetOf } from './onnx/proto.js'
import { Prepared, type Built } from './build.js'
import { loadSamples, type CalibrationMethod } from './calibration.js'
import { generateCandidates, type Candidate } from './candidates.js'
import { chooseBuild, defaultChoice, type Choice } from './choose.js'
import { latencyModel, parallelFraction, type LatencyModel } from './estimate.js'
import { runAll, timeSideBySide, type TimingOptions } from './measure.js'
import type { OfflineLevel } from './optimize.js'
import type { DynamicForm } from './passes/dynamic.js'
import { latencyMiss, timeCandidates, type FloatTiming } from './prove.js'
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
  /** false skips timing (tests); latency is then null, not held to the budget, and the profile's preference decides alone. */
  timing?: TimingOptions | false
  optimizationLevel?: OfflineLevel
  dynamicForm?: DynamicForm
  staticOps?: string[]
  /** Force how many leading static candidates stay float; by default the planner tries 0, then STATIC_KEEP_FLOAT_STEPS (candidates.ts). */
  staticKeepFloat?: number
  /** Quantized chains through Add/Mul/Concat and activation×activation MatMul (passes/qdq.ts chainTargets); default true. */
  staticChains?: boolean
  /** The previous version's precision on this profile: kept when it passes, so deltas survive [EF-5.3]. */
  previousPrecision?: Precision
  /** A build replaces the preferred one only when better by this share (default 0.10). */
  margin?: number
  /** Measure each candidate's peak RSS in a child process (default true; false reports no RAM figure). */
  measureRam?: boolean
  /** Our own float fusions (affine folding into Conv, HardSwish) where the profile allows opset 14 (default true). */
  fuse?: boolean
  onProgress?: (p: Progress) => void
}

export interface Planned {
  built: Built
  report: CandidateReport
  candidates: CandidateReport[]
  floatTiming: FloatTiming | null
  latencyModel: LatencyModel
  decision: Choice & { margin: number; previous: Precision | null }
  floatSizeBytes: number
  inputs: TensorSpec[]
  outputs: TensorSpec[]
  warnings: string[]
  calibration: { origin: string; samples: number; validationSamples: number; method: CalibrationMethod }
  budgets: Budgets
}

export async function planBuild(model: Uint8Array, profile: FirmwareProfile, opts: PlanOptions = {}): Promise<Planned> {
  const progress = opts.onProgress ?? (() => undefined) // no listener: progress goes nowhere
  const precisions = precisionsToTry(model, profile, opts.precision ?? 'auto')
  const budgets = budgetsOf(profile)
  progress({ phase: 'load', done: 0, total: 1 })
  // One thread on the hub: steady on a shared machine; the device's threads enter through the estimate.
  const floatSession = await openSession(model, { threads: 1 })
  const sessions: Session[] = [floatSession]
  try {
    const sig = sessionSignature(floatSession)
    const samples = planSamples(sig.inputs, opts, precisions.includes('int8-static'))
    const refs = await floatReferences(floatSession, samples.validation, sig.inputs, opts.inputShapes)
    progress({ phase: 'load', done: 1, total: 1 })
    const prep = prepare(model, profile, opts, samples.calibration, progress)
    const { reports, passing } = await generateCandidates(precisions, {
      prep,
      threads: Math.min(profile.threads ?? profile.cores, availableParallelism()),
      refs,
      validation: samples.validation,
      budgets,
      measureRam: opts.measureRam ?? true,
      staticKeepFloat: opts.staticKeepFloat,
      progress,
      sessions,
    })
    const timed = opts.timing !== false && passing.length > 0
    if (timed) progress({ phase: 'time', done: 0, total: 1 })
    const lat = latencyModel(
      profile,
      timed ? await floatParallelShare(model, profile, floatSession, samples, sessions) : 0,
    )
    const floatTiming = await timeCandidates(floatSession, passing, samples.validation[0], opts.timing, lat)
    if (timed) progress({ phase: 'time', done: 1, total: 1 })
    const inBudget = dropOverLatency(passing, budgets.latencyBudgetMs, lat)
    if (!inBudget.length) throw noCandidate(profile, reports)
    const decision = choose(inBudget, profile, reports, opts)
    const best = inBudget[decision.index]
    progress({ phase: 'done', precision: best.built.precision, done: 1, total: 1 })
    return {
      built: best.built,
      report: best.report,
      candidates: reports,
      floatTiming,
      latencyModel: lat,
      decision,
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
 * The float model's parallel share (estimate.ts), from its one- and two-thread times on the hub;
 * 0 (no speed-up assumed, the conservative estimate) for one-thread profiles or a one-core hub.
 */
async function floatParallelShare(
  model: Uint8Array,
  profile: FirmwareProfile,
  floatSession: Session,
  samples: PlanSamples,
  sessions: Session[],
): Promise<number> {
  if ((profile.threads ?? profile.cores) < 2 || availableParallelism() < 2) return 0
  const two = await openSession(model, { threads: 2 })
  sessions.push(two)
  const t = await timeSideBySide([floatSession, two], samples.validation[0], { minRounds: 8, budgetMs: 1000 })
  return parallelFraction(t.medianMs[0], t.medianMs[1])
}

/** The passing builds within the latency budget; the others turn into failures with the numbers. */
function dropOverLatency(passing: Candidate[], budgetMs: number, lat: LatencyModel): Candidate[] {
  return passing.filter((c) => {
    const miss = latencyMiss(c.report, budgetMs, lat)
    if (!miss) return true
    Object.assign(c.report, { verdict: 'fail', reason: miss, overBudget: [miss] })
    return false
  })
}

/** No build passed: over budget when any ran and missed one (the numbers in the message), else failed. */
function noCandidate(profile: FirmwareProfile, reports: CandidateReport[]): EdgeFleetError {
  const code = reports.some((r) => r.overBudget?.length) ? 'EF_ERR_BUILD_OVER_BUDGET' : 'EF_ERR_BUILD_FAILED'
  return new EdgeFleetError(
    code,
    `no candidate fits profile ${profile.id}: ${reports.map((c) => `${c.precision}: ${c.reason}`).join(' | ')}`,
  )
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
    const first = samples[0] ?? {}
    if (!guessed.length) {
      const fed = inputs.map((i) => `${i.name} [${first[i.name]?.dims.join(',') ?? '?'}]`).join(', ')
      throw new EdgeFleetError(
        'EF_ERR_MODEL_RUN_FAILED',
        `the float model does not run on the inputs made from its declared shapes and the given --shape/--value (${fed}). ` +
          `Check each --shape and --value (e.g. a window length or sample rate the model requires), or give real inputs with --calibration. ` +
          `ONNX Runtime said: ${(err as Error).message.split('\n')[0]}`,
        { cause: err },
      )
    }
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
    staticChains: opts.staticChains,
    fuse: opts.fuse,
    calibration: {
      samples: calibration,
      method: opts.calibrationMethod ?? 'minmax',
      percentile: opts.calibrationPercentile,
      onSample: (done, total) => progress({ phase: 'calibrate', precision: 'int8-static', done, total }),
    },
  })
}

/** The passing build the profile's policy chooses (choose.ts), with the reasons and numbers. */
function choose(
  passing: Candidate[],
  profile: FirmwareProfile,
  reports: CandidateReport[],
  opts: PlanOptions,
): Planned['decision'] {
  const previous = opts.previousPrecision
  const prevReport = previous ? reports.find((r) => r.precision === previous) : undefined
  const previousFailure = !previous
    ? undefined
    : !profile.precisions.includes(previous)
      ? `the profile no longer allows it`
      : !prevReport
        ? 'not tried: a fixed precision was asked for'
        : prevReport.reason
  const margin = opts.margin ?? defaultChoice.margin
  const choice = chooseBuild(
    passing.map((c) => ({
      precision: c.built.precision,
      sizeBytes: c.built.bytes.byteLength,
      latencyMs: c.report.latencyMs,
      roundsMs: c.report.roundsMs,
    })),
    {
      preference: profile.precisions,
      previous,
      previousFailure,
      margin,
      metered: profile.network?.metered ?? false,
    },
  )
  const best = passing[choice.index]
  best.report.notes = [...(best.report.notes ?? []), `chosen: ${choice.why}`]
  return { ...choice, margin, previous: previous ?? null }
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
