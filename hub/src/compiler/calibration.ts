// Calibration data and activation ranges for int8-static (minmax, percentile, entropy). Samples come from a
// folder of .npy files (one sub-folder, or a file-name prefix, per model
// input); without one, inputs are synthesized from the declared shapes —
// uniform noise says little about real activation ranges, so this is weaker
// and reported as a warning [EF-3.4].
import { readdirSync, readFileSync, statSync, existsSync } from 'node:fs'
import { join } from 'node:path'
import { EdgeFleetError, type TensorSpec } from '@edgefleet/shared'
import { readNpy } from './npy.js'
import { synthesizeInputs, prng } from './inputs.js'
import { openSession, run, type NamedTensor } from './ort.js'
import { decodeModel, encodeModel, DataType, type ModelProto } from './onnx/proto.js'
import { mainGraph } from './onnx/graph.js'
import type { Range } from './passes/qdq.js'

export type Sample = Record<string, NamedTensor>

export interface SampleSource {
  samples: Sample[]
  /** 'files' when every float input came from calibrationDir. */
  origin: 'files' | 'synthetic' | 'mixed'
  warnings: string[]
}

export interface SampleOptions {
  calibrationDir?: string
  shapes?: Record<string, number[]>
  values?: Record<string, number>
  /** Synthetic samples to make when there is no folder. */
  count?: number
  seed?: number
}

function npyFilesFor(dir: string, input: string, single: boolean): string[] {
  const sub = join(dir, input)
  if (existsSync(sub) && statSync(sub).isDirectory()) {
    return readdirSync(sub)
      .filter((f) => f.endsWith('.npy'))
      .sort()
      .map((f) => join(sub, f))
  }
  const all = readdirSync(dir)
    .filter((f) => f.endsWith('.npy'))
    .sort()
  const prefixed = all.filter((f) => f.startsWith(input))
  if (prefixed.length) return prefixed.map((f) => join(dir, f))
  return single ? all.map((f) => join(dir, f)) : []
}

function checkAgainstSpec(t: NamedTensor, spec: TensorSpec, file: string): void {
  const bad = (why: string) =>
    new EdgeFleetError('EF_ERR_CALIBRATION_INVALID', `calibration file ${file} for input ${spec.name}: ${why}`)
  if (t.type !== spec.type) throw bad(`type ${t.type}, the model wants ${spec.type}`)
  if (t.dims.length !== spec.dims.length)
    throw bad(`shape [${t.dims.join(',')}] has rank ${t.dims.length}, the model wants [${spec.dims.join(',')}]`)
  spec.dims.forEach((d, i) => {
    if (typeof d === 'number' && d >= 0 && t.dims[i] !== d)
      throw bad(`shape [${t.dims.join(',')}] differs from the model's [${spec.dims.join(',')}] at axis ${i}`)
  })
}

/** Loads or synthesizes calibration samples for `inputs`. Throws EF_ERR_CALIBRATION_INVALID on wrong shapes/types. */
export function loadSamples(inputs: readonly TensorSpec[], opts: SampleOptions = {}): SampleSource {
  const warnings: string[] = []
  const files = new Map<string, string[]>()
  if (opts.calibrationDir) {
    if (!existsSync(opts.calibrationDir) || !statSync(opts.calibrationDir).isDirectory()) {
      throw new EdgeFleetError('EF_ERR_CONFIG_INVALID', `calibration folder ${opts.calibrationDir} does not exist`)
    }
    for (const spec of inputs) {
      const list = npyFilesFor(opts.calibrationDir, spec.name, inputs.length === 1)
      if (list.length) files.set(spec.name, list)
    }
    if (!files.size)
      throw new EdgeFleetError(
        'EF_ERR_CALIBRATION_INVALID',
        `calibration folder ${opts.calibrationDir} has no .npy file for any input (${inputs.map((i) => i.name).join(', ')})`,
      )
  } else {
    warnings.push(
      'no calibration data: activation ranges come from synthesized inputs, which can misjudge real ranges (pass a calibration folder of .npy files)',
    )
  }
  const counts = [...files.values()].map((l) => l.length)
  const sampleCount = counts.length ? Math.max(...counts) : (opts.count ?? 8)
  for (const [name, list] of files) {
    if (list.length !== sampleCount)
      throw new EdgeFleetError(
        'EF_ERR_CALIBRATION_INVALID',
        `calibration folder has ${list.length} files for input ${name} but ${sampleCount} for another input`,
      )
  }
  const samples: Sample[] = []
  const seed = opts.seed ?? 1
  for (let i = 0; i < sampleCount; i++) {
    const synth = synthesizeInputs(inputs, { seed: seed + i * 7919, shapes: opts.shapes, values: opts.values })
    const sample: Sample = {}
    for (const spec of inputs) {
      const list = files.get(spec.name)
      if (list) {
        const t = readNpy(readFileSync(list[i]), list[i])
        checkAgainstSpec(t, spec, list[i])
        sample[spec.name] = t
      } else sample[spec.name] = synth[spec.name]
    }
    samples.push(sample)
  }
  const floatInputs = inputs.filter((i) => i.type.startsWith('float'))
  const fromFiles = floatInputs.filter((i) => files.has(i.name)).length
  const origin = fromFiles === 0 ? 'synthetic' : fromFiles === floatInputs.length ? 'files' : 'mixed'
  if (origin === 'mixed') warnings.push(`calibration files cover only some float inputs; the others are synthesized`)
  return { samples, origin, warnings }
}

export type CalibrationMethod = 'minmax' | 'percentile' | 'entropy'

export interface CalibrationOptions {
  method?: CalibrationMethod
  /** For 'percentile': the share of values kept inside the range, in percent. */
  percentile?: number
  threads?: number
  onSample?: (done: number, total: number) => void
}

const RESERVOIR = 1 << 15

class Stats {
  min = Infinity
  max = -Infinity
  seen = 0
  readonly pool = new Float32Array(RESERVOIR)
  filled = 0
  constructor(private readonly rand: () => number) {}
  add(sampleValues: Float32Array, keepSample: boolean): void {
    let lo = this.min
    let hi = this.max
    for (const x of sampleValues) {
      if (x < lo) lo = x
      if (x > hi) hi = x
    }
    this.min = lo
    this.max = hi
    if (!keepSample) return
    // Strided subsample, then reservoir replacement: bounded memory whatever the tensor size.
    const stride = Math.max(1, Math.floor(sampleValues.length / 4096))
    for (let i = Math.floor(this.rand() * stride); i < sampleValues.length; i += stride) {
      this.seen++
      if (this.filled < RESERVOIR) this.pool[this.filled++] = sampleValues[i]
      else {
        const j = Math.floor(this.rand() * this.seen)
        if (j < RESERVOIR) this.pool[j] = sampleValues[i]
      }
    }
  }
  range(method: CalibrationMethod, percentile: number): Range {
    if (method === 'minmax' || this.filled === 0) return { min: this.min, max: this.max }
    if (method === 'entropy') {
      const t = entropyThreshold(this.pool.subarray(0, this.filled), Math.max(-this.min, this.max))
      return { min: Math.max(this.min, -t), max: Math.min(this.max, t) }
    }
    const sorted = this.pool.slice(0, this.filled).sort()
    const tail = (100 - percentile) / 100
    const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.round(q * (sorted.length - 1))))]
    return { min: Math.max(this.min, at(tail)), max: Math.min(this.max, at(1 - tail)) }
  }
}

const ENTROPY_BINS = 1024
/** Quantization levels on one side of zero (int8's 128; u8 asymmetric spends its 256 over [min, max]). */
const ENTROPY_LEVELS = 128

/**
 * Entropy (KL) calibration, TensorRT's method: the |x| histogram clipped at each candidate threshold
 * (outliers folded into the last bin) against the same histogram merged into ENTROPY_LEVELS levels
 * and expanded back; the threshold with the least KL divergence wins. It keeps the bulk of the
 * distribution finely resolved where minmax lets one outlier stretch the step for every value.
 */
export function entropyThreshold(values: Float32Array, maxAbs: number): number {
  if (!(maxAbs > 0) || !Number.isFinite(maxAbs)) return maxAbs
  const hist = new Float64Array(ENTROPY_BINS)
  const width = maxAbs / ENTROPY_BINS
  for (const x of values) hist[Math.min(ENTROPY_BINS - 1, Math.floor(Math.abs(x) / width))]++
  let best = ENTROPY_BINS
  let bestKl = Infinity
  for (let i = ENTROPY_LEVELS; i <= ENTROPY_BINS; i += 8) {
    const kl = clippedKl(hist, i)
    if (kl < bestKl) {
      bestKl = kl
      best = i
    }
  }
  return best * width
}

/** KL(clipped‖expanded): clipped = hist cut to `bins` (tail folded in), expanded = its bins merged into ENTROPY_LEVELS and spread back over the non-empty bins. */
function clippedKl(hist: Float64Array, bins: number): number {
  const clipped = hist.slice(0, bins)
  for (let j = bins; j < hist.length; j++) clipped[bins - 1] += hist[j]
  const expanded = new Float64Array(bins)
  const merged = bins / ENTROPY_LEVELS
  for (let level = 0; level < ENTROPY_LEVELS; level++) {
    const start = Math.floor(level * merged)
    const end = level === ENTROPY_LEVELS - 1 ? bins : Math.floor((level + 1) * merged)
    let sum = 0
    let nonEmpty = 0
    for (let j = start; j < end; j++) {
      sum += hist[j]
      if (hist[j] > 0) nonEmpty++
    }
    for (let j = start; j < end; j++) if (hist[j] > 0) expanded[j] = sum / nonEmpty
  }
  const clippedSum = clipped.reduce((a, b) => a + b, 0)
  const expandedSum = expanded.reduce((a, b) => a + b, 0)
  let kl = 0
  for (let j = 0; j < bins; j++) {
    if (clipped[j] === 0) continue
    // A bin the merged histogram left empty (only the folded tail lands there): smooth, don't divide by 0.
    const expandedShare = Math.max(expanded[j] / expandedSum, 1e-12)
    kl += (clipped[j] / clippedSum) * Math.log(clipped[j] / clippedSum / expandedShare)
  }
  return kl
}

/** Runs the float model on every sample with `tensors` exposed as outputs and returns their ranges. */
export async function collectRanges(
  model: ModelProto,
  tensors: readonly string[],
  samples: readonly Sample[],
  opts: CalibrationOptions = {},
): Promise<Map<string, Range>> {
  const method = opts.method ?? 'minmax'
  const aug = decodeModel(encodeModel(model))
  const graph = mainGraph(aug)
  const have = new Set(graph.output.map((o) => o.name ?? ''))
  for (const t of tensors)
    if (!have.has(t)) graph.output.push({ name: t, type: { tensor_type: { elem_type: DataType.FLOAT } } })
  const session = await openSession(encodeModel(aug), {
    threads: opts.threads ?? 1,
    graphOptimizationLevel: 'disabled',
  })
  const rand = prng(12345)
  const stats = new Map(tensors.map((t) => [t, new Stats(rand)]))
  try {
    for (let i = 0; i < samples.length; i++) {
      const out = await run(session, samples[i])
      for (const [name, st] of stats) {
        const v = out[name]
        if (v && v.data instanceof Float32Array) st.add(v.data, method !== 'minmax')
      }
      opts.onSample?.(i + 1, samples.length)
    }
  } finally {
    await session.release()
  }
  const ranges = new Map<string, Range>()
  for (const [name, st] of stats)
    if (Number.isFinite(st.min)) ranges.set(name, st.range(method, opts.percentile ?? 99.99))
  return ranges
}
