// The compiler: turns a registered float ONNX model into the build for one
// device profile, and reports how that build compares with the float model.
// (Today: fp32 passthrough with validation; quantizing passes land here.)
import { EdgeFleetError, type FirmwareProfile, type Precision, type TensorSpec } from '@edgefleet/shared'
import { openSession, run, sessionSignature, type NamedTensor } from './ort.js'
import { synthesizeInputs } from './inputs.js'

export { openSession, run, sessionSignature, type NamedTensor, type Session } from './ort.js'
export { synthesizeInputs, concreteDims, prng } from './inputs.js'

export interface CompileOptions {
  /** 'auto' picks per profile; a fixed precision must be one the profile allows. */
  precision?: 'auto' | Precision
  /** Shapes for symbolic input dims, by input name. */
  inputShapes?: Record<string, number[]>
  /** Fixed values for inputs (e.g. a sample-rate scalar), by input name. */
  inputValues?: Record<string, number>
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

export async function compile(model: Uint8Array, profile: FirmwareProfile, opts: CompileOptions = {}): Promise<CompileResult> {
  const wanted = opts.precision ?? 'auto'
  if (wanted !== 'auto' && wanted !== 'fp32') {
    throw new EdgeFleetError('EF_ERR_BUILD_FAILED', `precision ${wanted} is not implemented yet`)
  }
  const s = await openSession(model, { threads: profile.threads ?? 1 })
  try {
    const sig = sessionSignature(s)
    // Passthrough is exact by construction; running it once still proves the build loads and runs.
    await run(s, synthesizeInputs(sig.inputs, { shapes: opts.inputShapes, values: opts.inputValues }))
    return {
      bytes: model,
      precision: 'fp32',
      ...sig,
      report: { precision: 'fp32', sizeBytes: model.byteLength, floatSizeBytes: model.byteLength, maxAbsError: 0, meanAbsError: 0, cosine: 1, verdict: 'pass' },
    }
  } finally {
    await s.release()
  }
}

/** Runs `model` on `inputs` once (health-check reference vectors). */
export async function referenceOutputs(model: Uint8Array, inputs: Record<string, NamedTensor>): Promise<Record<string, NamedTensor>> {
  const s = await openSession(model)
  try {
    return await run(s, inputs)
  } finally {
    await s.release()
  }
}
