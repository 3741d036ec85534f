// One candidate build: (float model, precision) → transformed model bytes and
// what was done to it. The planner (plan.ts) decides which candidates to make
// and which one ships.
import type { FirmwareProfile, Precision } from '@edgefleet/shared'
import { EdgeFleetError } from '@edgefleet/shared'
import { decodeModel, encodeModel, opsetOf, type ModelProto } from './onnx/proto.js'
import { ortOptimize, levelFor, type OfflineLevel } from './optimize.js'
import { upgradeOpset, OpsetUpgradeError } from './passes/opset.js'
import { QuantContext, Plan } from './passes/weights.js'
import { dynamicPass, type DynamicForm } from './passes/dynamic.js'
import { weightOnlyPass } from './passes/weight-only.js'
import { gemmToMatMul, qdqPass, staticTargets, type Range } from './passes/qdq.js'
import { fp16Pass } from './passes/fp16.js'
import { compactPass, type CompactStats } from './passes/compact.js'
import { fuseAll, HARDSWISH_OPSET } from './passes/fuse.js'
import { collectRanges, type CalibrationMethod, type Sample } from './calibration.js'

export interface BuildInputs {
  /** The registered float model. */
  original: Uint8Array
  profile: FirmwareProfile
  /** Offline optimization level; default from the profile (levelFor). */
  optimizationLevel?: OfflineLevel
  dynamicForm?: DynamicForm
  calibration?: {
    samples: Sample[]
    method: CalibrationMethod
    percentile?: number
    onSample?: (done: number, total: number) => void
  }
  /** Op types the static pass puts in QDQ form. */
  staticOps?: string[]
  /** The first that many static candidates stay float compute (weight-only int8); see staticTargets. */
  staticKeepFloat?: number
  /** Our own float fusions (passes/fuse.ts: affine folding into Conv, hard-swish → HardSwish at opset 14) when the profile allows opset 14; default true. */
  fuse?: boolean
}

/**
 * Op types the static pass puts in QDQ form by default: every op with a weight that ORT's QDQ
 * fusion turns into an int8 kernel (QLinearConv, QLinearMatMul, QGemm). An "int8-static" build
 * that left MatMul/Gemm to DynamicQuantizeMatMul calibrated nothing on a Gemm model and was really
 * dynamic; on PP-OCRv4 rec the two forms measured 0.581 vs 0.585 of fp32 (docs/benchmarks/compiler.md).
 */
const DEFAULT_STATIC_OPS = ['Conv', 'MatMul', 'Gemm']

export interface Built {
  bytes: Uint8Array
  precision: Precision
  plan: Plan
  opset: number
  notes: string[]
}

/** Caches the offline-optimized float models a compile needs more than once. */
export class Prepared {
  private readonly cache = new Map<string, Promise<Uint8Array>>()
  private fusedNotes: string[] = []
  constructor(readonly input: BuildInputs) {}
  optimized(level: OfflineLevel, fused = false): Promise<Uint8Array> {
    const key = `${level}${fused ? '+fused' : ''}`
    let p = this.cache.get(key)
    if (!p) {
      const src = fused ? this.fusedFloat() : this.input.original
      // A model ORT loads but cannot save (rare) still builds, unoptimized.
      p = ortOptimize(src, level).catch(() => src)
      this.cache.set(key, p)
    }
    return p
  }
  /** Notes from the float fusion (what fusedFloat did), for the fp32/fp16 reports. */
  get floatFusionNotes(): string[] {
    return this.fusedNotes
  }
  /**
   * The float model with our own fusions applied (hard-swish; needs opset 13 → 14, which the profile
   * must allow). Falls back to the original when nothing fuses or the opset cannot move.
   */
  private fusedFloat(): Uint8Array {
    const { original, profile } = this.input
    if (!(this.input.fuse ?? true) || profile.opset.max < HARDSWISH_OPSET) return original
    const model = decodeModel(original)
    const from = opsetOf(model) ?? 1
    try {
      if (from < 13) upgradeOpset(model, 13)
    } catch (err) {
      if (err instanceof OpsetUpgradeError) return original
      throw err
    }
    const notes = fuseAll(model)
    if (!notes.length) return original
    this.fusedNotes = [...notes, `opset ${from} → ${opsetOf(model)}`]
    return encodeModel(model)
  }
}

/** Opset 13 for per-channel int8 when the profile allows it; else the model's own (per-tensor). */
function prepareOpset(model: ModelProto, profile: FirmwareProfile, notes: string[]): number {
  const current = opsetOf(model) ?? 1
  if (current >= 13) return current
  if (profile.opset.max < 13) {
    notes.push(`profile allows opset ≤ ${profile.opset.max}: per-tensor weight scales`)
  } else {
    try {
      upgradeOpset(model, 13)
      notes.push(`opset ${current} → 13 for per-channel quantization`)
      return 13
    } catch (err) {
      if (!(err instanceof OpsetUpgradeError)) throw err
      notes.push(`kept opset ${current} (${err.message}): per-tensor weight scales`)
    }
  }
  if (current < 10)
    throw new EdgeFleetError(
      'EF_ERR_BUILD_FAILED',
      `opset ${current} has no DequantizeLinear and could not be upgraded`,
    )
  return current
}

function compactNote(c: CompactStats): string {
  return `compact storage: ${c.packedTensors} small fp32 tensors (${c.packedElements} values) packed as fp16, ${c.droppedAttributes} default Conv attributes dropped, ${c.renamed} internal names shortened`
}

export async function buildCandidate(
  prep: Prepared,
  precision: Precision,
  over: { staticKeepFloat?: number } = {},
): Promise<Built> {
  const { profile } = prep.input
  const level = prep.input.optimizationLevel ?? levelFor(profile)
  const notes: string[] = []
  if (precision === 'fp32' || precision === 'fp16') {
    const bytes = await prep.optimized(level, true)
    const fusion = prep.floatFusionNotes
    if (precision === 'fp32') {
      const plan = new Plan()
      plan.count('all', 'fp32')
      return {
        bytes,
        precision,
        plan,
        opset: opsetOf(decodeModel(bytes)) ?? 0,
        notes: [...fusion, `ORT offline optimization: ${level}`],
      }
    }
    const model = decodeModel(bytes)
    const plan = fp16Pass(model)
    return {
      bytes: encodeModel(model),
      precision,
      plan,
      opset: opsetOf(model) ?? 0,
      notes: [...fusion, 'fp16 weight storage, fp32 compute (CPU EPs run fp32 kernels)'],
    }
  }
  // Quantizing passes need standard ops only: 'extended' would already have fused Conv+activation into contrib ops.
  const base = await prep.optimized(level === 'disabled' ? 'disabled' : 'basic')
  const model = decodeModel(base)
  let opset = prepareOpset(model, profile, notes)
  if ((prep.input.fuse ?? true) && opset >= 13 && profile.opset.max >= HARDSWISH_OPSET) {
    notes.push(...fuseAll(model))
    opset = opsetOf(model) ?? opset
  }
  const ctx = new QuantContext(model, opset)
  if (precision === 'int8-weight') {
    // The size-minimising candidate: weight scales, biases and other small fp32 tensors packed as fp16, short names.
    weightOnlyPass(model, ctx)
    notes.push(compactNote(compactPass(model, opset, { shortNames: true })))
  } else if (precision === 'int8-dynamic') {
    if (prep.input.dynamicForm === 'integer' && opset < 11)
      throw new EdgeFleetError('EF_ERR_BUILD_FAILED', 'the integer dynamic form needs opset ≥ 11')
    dynamicPass(model, ctx, { form: prep.input.dynamicForm ?? 'fused' })
    // Names and default attributes only: DynamicQuantizeMatMul's weight scales stay plain initializers.
    notes.push(compactNote(compactPass(model, opset, { shortNames: true, pack: false })))
  } else if (precision === 'int8-static') {
    const cal = prep.input.calibration
    if (!cal) throw new EdgeFleetError('EF_ERR_BUILD_FAILED', 'int8-static needs calibration samples')
    const ops = new Set(prep.input.staticOps ?? DEFAULT_STATIC_OPS)
    const keepFloat = over.staticKeepFloat ?? prep.input.staticKeepFloat ?? 0
    if (ops.has('Gemm')) {
      const rewritten = gemmToMatMul(model, ctx)
      if (rewritten) notes.push(`${rewritten} Gemm → MatMul + Add (ORT fuses QDQ MatMul into QLinearMatMul)`)
    }
    const { tensors } = staticTargets(model, ops.has('Gemm') ? new Set([...ops, 'MatMul']) : ops, keepFloat)
    // Nothing to calibrate is not a static build, whatever the label would say: refuse it, so the
    // report shows why and the plan takes a precision that describes what the build does.
    if (!tensors.length)
      throw new EdgeFleetError(
        'EF_ERR_BUILD_FAILED',
        `nothing for int8-static to quantize: no ${[...ops].join('/')} with a constant weight in the main graph${keepFloat ? ` beyond the first ${keepFloat} kept float` : ''} (weights inside subgraphs or other ops get int8-weight or int8-dynamic)`,
      )
    const ranges: Map<string, Range> = await collectRanges(model, tensors, cal.samples, {
      method: cal.method,
      percentile: cal.percentile,
      threads: profile.threads ?? 1,
      onSample: cal.onSample,
    })
    notes.push(`calibrated ${tensors.length} activations on ${cal.samples.length} samples (${cal.method})`)
    if (keepFloat)
      notes.push(`first ${keepFloat} ${[...ops].join('/')} node(s) kept in float compute (weight-only int8)`)
    qdqPass(model, ctx, ranges, ops.has('Gemm') ? new Set([...ops, 'MatMul']) : ops, keepFloat)
    // Compact storage here too: ORT constant-folds the fp16 Cast+Split before its QDQ fusion, so the
    // groups still become QLinearConv (measured: same latency, rec 0.274 → 0.266, det 0.293 → 0.267).
    const c = compactPass(model, opset, { shortNames: true })
    notes.push(compactNote(c))
  } else {
    throw new EdgeFleetError('EF_ERR_BUILD_FAILED', `unknown precision ${String(precision)}`)
  }
  return { bytes: encodeModel(model), precision, plan: ctx.plan, opset, notes }
}
