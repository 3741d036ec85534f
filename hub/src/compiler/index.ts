// The compiler: turns a registered float ONNX model into the build for one
// device profile (optimized, quantized or converted), proves the build against
// the float model and reports how it compares. Pipeline: plan.ts (candidates.ts,
// prove.ts, choose.ts) → build.ts (one candidate) → passes/* (graph rewrites on
// onnx/*, our protobuf model).
import { EdgeFleetError, defined, type FirmwareProfile, type Precision, type TensorSpec } from '@edgefleet/shared'
import { openSession, run, sessionSignature, type NamedTensor } from './ort.js'
import { planBuild, type PlanOptions, type Planned } from './plan.js'
import type { CandidateReport } from './report.js'
import type { Accuracy } from './measure.js'

export { openSession, run, sessionSignature, type NamedTensor, type Session } from './ort.js'
export { synthesizeInputs, concreteDims, prng } from './inputs.js'
export { readNpy, writeNpy } from './npy.js'
export { decodeModel, encodeModel } from './onnx/proto.js'
export { defaultAccuracyBudget, type Progress, type CandidateReport } from './report.js'
export { compileInWorker } from './worker-client.js'

export interface CompileOptions extends PlanOptions {
  /** 'auto' picks per profile; a fixed precision must be one the profile allows. */
  precision?: 'auto' | Precision
  /** Shapes for symbolic input dims, by input name. */
  inputShapes?: Record<string, number[]>
  /** Fixed values for inputs (e.g. a sample-rate scalar), by input name. */
  inputValues?: Record<string, number>
  /** Folder of .npy calibration tensors (a sub-folder or file-name prefix per input). */
  calibrationDir?: string
}

export interface ValidationReport {
  precision: Precision
  sizeBytes: number
  floatSizeBytes: number
  maxAbsError: number
  meanAbsError: number
  cosine: number
  verdict: 'pass' | 'fail'
  reason?: string
  [key: string]: unknown
}

export interface CompileResult {
  bytes: Uint8Array
  precision: Precision
  inputs: TensorSpec[]
  outputs: TensorSpec[]
  report: ValidationReport
}

/** Loads a model and returns its declared inputs and outputs; EF_ERR_MODEL_INVALID when ORT cannot. */
export async function inspectModel(model: Uint8Array): Promise<{ inputs: TensorSpec[]; outputs: TensorSpec[] }> {
  const s = await openSession(model)
  try {
    return sessionSignature(s)
  } finally {
    await s.release()
  }
}

/** JSON-safe numbers: a NaN/Infinity error would silently become null in the manifest. */
function finite(x: number): number | string {
  return Number.isFinite(x) ? x : String(x)
}

function accuracyJson(a: Accuracy | undefined): Record<string, unknown> {
  if (!a) return {}
  return {
    maxAbsError: finite(a.maxAbsError),
    meanAbsError: finite(a.meanAbsError),
    cosine: finite(a.cosine),
    meanCosine: finite(a.meanCosine),
    ...(a.top1Agreement !== undefined ? { top1Agreement: a.top1Agreement } : {}),
  }
}

function candidateJson(candidateReport: CandidateReport): Record<string, unknown> {
  return {
    precision: candidateReport.precision,
    verdict: candidateReport.verdict,
    ...(candidateReport.reason ? { reason: candidateReport.reason } : {}),
    ...(candidateReport.sizeBytes !== undefined ? { sizeBytes: candidateReport.sizeBytes } : {}),
    ...(candidateReport.latencyMs !== undefined ? { latencyMs: candidateReport.latencyMs } : {}),
    ...(candidateReport.hubLatencyMs !== undefined ? { hubLatencyMs: candidateReport.hubLatencyMs } : {}),
    ...(candidateReport.ramPeakMb !== undefined ? { ramPeakMb: candidateReport.ramPeakMb } : {}),
    ...(candidateReport.overBudget?.length ? { overBudget: candidateReport.overBudget } : {}),
    ...accuracyJson(candidateReport.accuracy),
    ...(candidateReport.buildMs !== undefined ? { buildMs: candidateReport.buildMs } : {}),
  }
}

/** The latency part of the report: hub times, the device estimate and how it was made [EF-5.8]. */
function latencyJson(
  planned: Planned,
  candidateReport: CandidateReport,
  profile: FirmwareProfile,
): Record<string, unknown> {
  const m = planned.latencyModel
  return {
    threads: m.threads,
    hubThreads: 1,
    speedFactor: m.speedFactor,
    parallelFraction: m.parallelFraction,
    scaling: m.scaling,
    factor: m.factor,
    floatHubMs: planned.floatTiming?.hubMs ?? null,
    floatMs: planned.floatTiming?.estimatedMs ?? null,
    buildHubMs: candidateReport.hubLatencyMs ?? null,
    buildMs: candidateReport.latencyMs ?? null,
    ratio:
      planned.floatTiming && candidateReport.hubLatencyMs
        ? candidateReport.hubLatencyMs / planned.floatTiming.hubMs
        : null,
    budgetMs: profile.latencyBudgetMs,
    withinLatencyBudget:
      candidateReport.latencyMs == null ? null : candidateReport.latencyMs <= profile.latencyBudgetMs,
  }
}

export async function compile(
  model: Uint8Array,
  profile: FirmwareProfile,
  opts: CompileOptions = {},
): Promise<CompileResult> {
  if (!(model instanceof Uint8Array)) throw new TypeError('compile: model must be a Uint8Array')
  const t0 = performance.now()
  const planned = await planBuild(model, profile, opts)
  const chosenReport = planned.report
  const chosenAccuracy = defined(chosenReport.accuracy, 'accuracy of the chosen build')
  const report: ValidationReport = {
    precision: planned.built.precision,
    profile: profile.id,
    sizeBytes: planned.built.bytes.byteLength,
    floatSizeBytes: planned.floatSizeBytes,
    sizeRatio: planned.built.bytes.byteLength / planned.floatSizeBytes,
    maxAbsError: Number.isFinite(chosenAccuracy.maxAbsError) ? chosenAccuracy.maxAbsError : Number.MAX_VALUE,
    meanAbsError: Number.isFinite(chosenAccuracy.meanAbsError) ? chosenAccuracy.meanAbsError : Number.MAX_VALUE,
    cosine: chosenAccuracy.cosine,
    meanCosine: chosenAccuracy.meanCosine,
    ...(chosenAccuracy.top1Agreement !== undefined ? { top1Agreement: chosenAccuracy.top1Agreement } : {}),
    perOutput: chosenAccuracy.perOutput,
    latency: latencyJson(planned, chosenReport, profile),
    ram: { peakMb: chosenReport.ramPeakMb ?? null, budgetMb: profile.ramMb },
    decision: planned.decision,
    plan: chosenReport.plan ?? {},
    quantizedWeights: chosenReport.weights ?? { initializer: 0, constantNode: 0, subgraph: 0 },
    opset: chosenReport.opset,
    notes: chosenReport.notes ?? [],
    budgets: planned.budgets,
    calibration: planned.calibration,
    candidates: planned.candidates.map(candidateJson),
    warnings: planned.warnings,
    compileMs: Math.round(performance.now() - t0),
    verdict: 'pass',
  }
  return {
    bytes: planned.built.bytes,
    precision: planned.built.precision,
    inputs: planned.inputs,
    outputs: planned.outputs,
    report,
  }
}

/** Runs `model` on `inputs` once (health-check reference vectors). */
export async function referenceOutputs(
  model: Uint8Array,
  inputs: Record<string, NamedTensor>,
): Promise<Record<string, NamedTensor>> {
  const s = await openSession(model)
  try {
    return await run(s, inputs)
  } finally {
    await s.release()
  }
}

export { EdgeFleetError }
