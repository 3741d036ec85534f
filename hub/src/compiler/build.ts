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
import { fp16ComputePass } from './passes/fp16-compute.js'
import { inferGraphTypes } from './tensor-types.js'
import { compactPass, type CompactStats } from './passes/compact.js'
import { fuseAll, HARDSWISH_OPSET } from './passes/fuse.js'
import { dropUnusedOpsets } from './passes/layout.js'
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
  /** Add/Mul/Concat chains and attention MatMuls in QDQ form too (default true). */
  staticChains?: boolean
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

/** One candidate of `precision`, without opset imports nobody uses (a smaller tail chunk for head-only deltas, passes/layout.ts). */
export async function buildCandidate(
  prep: Prepared,
  precision: Precision,
  over: { staticKeepFloat?: number } = {},
): Promise<Built> {
  const built = await transform(prep, precision, over)
  const model = decodeModel(built.bytes)
  dropUnusedOpsets(model)
  return { ...built, bytes: encodeModel(model) }
}

async function transform(prep: Prepared, precision: Precision, over: { staticKeepFloat?: number }): Promise<Built> {
  const { profile } = prep.input
  const level = prep.input.optimizationLevel ?? levelFor(profile)
  if (precision === 'fp32') return buildFp32(prep, level)
  if (precision === 'fp16') return fp16Compute(profile) ? buildFp16Compute(prep, level) : buildFp16Storage(prep, level)
  // Quantizing passes need standard ops only: 'extended' would already have fused Conv+activation into contrib ops.
  const base = await prep.optimized(level === 'disabled' ? 'disabled' : 'basic')
  const model = decodeModel(base)
  const notes: string[] = []
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
    await staticPasses(prep, model, ctx, over.staticKeepFloat ?? prep.input.staticKeepFloat ?? 0, notes)
  } else {
    throw new EdgeFleetError('EF_ERR_BUILD_FAILED', `unknown precision ${String(precision)}`)
  }
  return { bytes: encodeModel(model), precision, plan: ctx.plan, opset, notes }
}

/**
 * Execution providers with fp16 kernels (GPU and NPU back ends). ORT's CPU EP has only a few and
 * wraps every other op in Casts (measured in docs/benchmarks/compiler.md), so a CPU-only profile
 * gets fp16 storage unless it states `fp16Compute: true` (an arm64 CPU with fp16 arithmetic).
 */
const FP16_COMPUTE_EPS: ReadonlySet<string> = new Set(['cuda', 'tensorrt', 'coreml', 'nnapi', 'qnn'])

/** Whether the profile's fp16 candidate computes in fp16: its `fp16Compute`, else from its execution providers. */
export function fp16Compute(profile: FirmwareProfile): boolean {
  return profile.fp16Compute ?? profile.executionProviders.some((ep) => FP16_COMPUTE_EPS.has(ep))
}

async function buildFp32(prep: Prepared, level: OfflineLevel): Promise<Built> {
  const bytes = await prep.optimized(level, true)
  const plan = new Plan()
  plan.count('all', 'fp32')
  return {
    bytes,
    precision: 'fp32',
    plan,
    opset: opsetOf(decodeModel(bytes)) ?? 0,
    notes: [...prep.floatFusionNotes, `ORT offline optimization: ${level}`],
  }
}

async function buildFp16Storage(prep: Prepared, level: OfflineLevel): Promise<Built> {
  const model = decodeModel(await prep.optimized(level, true))
  const plan = fp16Pass(model)
  return {
    bytes: encodeModel(model),
    precision: 'fp16',
    plan,
    opset: opsetOf(model) ?? 0,
    notes: [
      ...prep.floatFusionNotes,
      "fp16 weight storage, fp32 compute (the profile's execution providers have no fp16 kernels; set fp16Compute to change that)",
    ],
  }
}

/**
 * fp16 compute (passes/fp16-compute.ts) on the basic-level float model: standard ops only, so the
 * device's EP makes its own fusions on fp16 ops at load; ORT's 'extended' contrib ops would stay fp32.
 */
async function buildFp16Compute(prep: Prepared, level: OfflineLevel): Promise<Built> {
  const base = await prep.optimized(level === 'disabled' ? 'disabled' : 'basic', true)
  const types = await inferGraphTypes(base)
  const model = decodeModel(base)
  const rewrite = fp16ComputePass(model, types)
  const untyped = rewrite.untypedSubgraphs
    ? [`${rewrite.untypedSubgraphs} subgraph bodies kept fp32: ONNX Runtime could not type them on their own`]
    : []
  if (!rewrite.halfNodes) {
    // Nothing computes in fp16 (every float op on the keep-float list or shape math): the fp16
    // build is then what it is on CPU profiles, and says so.
    const stored = await buildFp16Storage(prep, level)
    stored.notes.push('fp16 compute: no op can compute in fp16 (all on the keep-float list or shape math)', ...untyped)
    return stored
  }
  return {
    bytes: encodeModel(model),
    precision: 'fp16',
    plan: rewrite.plan,
    opset: opsetOf(model) ?? 0,
    notes: [
      ...prep.floatFusionNotes,
      `fp16 compute: ${rewrite.halfNodes} nodes in fp16 (${rewrite.halfInSubgraphs} inside If/Loop/Scan bodies, whose inputs and outputs stay fp32), ${rewrite.floatNodes} kept fp32, ${rewrite.castsAdded} Casts; inputs and outputs stay fp32`,
      ...untyped,
      ...(rewrite.clipped ? [`${rewrite.clipped} constant values clipped into the fp16 range`] : []),
      "latency timed on the hub's CPU execution provider, which has few fp16 kernels: it overstates the device's fp16 time",
    ],
  }
}

/** The int8-static passes: Gemm → MatMul, calibration of the targets' activations, QDQ, compact storage. */
async function staticPasses(
  prep: Prepared,
  model: ModelProto,
  ctx: QuantContext,
  keepFloat: number,
  notes: string[],
): Promise<void> {
  const cal = prep.input.calibration
  if (!cal) throw new EdgeFleetError('EF_ERR_BUILD_FAILED', 'int8-static needs calibration samples')
  const ops = new Set(prep.input.staticOps ?? DEFAULT_STATIC_OPS)
  if (ops.has('Gemm')) {
    ops.add('MatMul')
    const rewritten = gemmToMatMul(model, ctx)
    if (rewritten) notes.push(`${rewritten} Gemm → MatMul + Add (ORT fuses QDQ MatMul into QLinearMatMul)`)
  }
  const chains = prep.input.staticChains ?? true
  const { tensors, chain, attention } = staticTargets(model, ops, keepFloat, chains)
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
    threads: prep.input.profile.threads ?? 1,
    onSample: cal.onSample,
  })
  notes.push(`calibrated ${tensors.length} activations on ${cal.samples.length} samples (${cal.method})`)
  if (keepFloat) notes.push(`first ${keepFloat} ${[...ops].join('/')} node(s) kept in float compute (weight-only int8)`)
  if (chain.length || attention.length)
    notes.push(`quantized chains: ${chain.length} Add/Mul/Concat, ${attention.length} activation × activation MatMul`)
  qdqPass(model, ctx, ranges, ops, keepFloat, chains)
  // Compact storage here too: ORT constant-folds the fp16 Cast+Split before its QDQ fusion, so the
  // groups still become QLinearConv (measured: same latency, rec 0.274 → 0.266, det 0.293 → 0.267).
  notes.push(compactNote(compactPass(model, ctx.opset, { shortNames: true })))
}
