// The passes on tiny hand-written models: weights are found wherever they
// live (initializer, Constant node, If branches, outer scope) and actually
// quantized — counted in the rewritten graph — and outputs stay close.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { decodeModel, encodeModel, DataType, type ModelProto } from '../../src/compiler/onnx/proto.js'
import { walkGraphs } from '../../src/compiler/onnx/graph.js'
import { QuantContext } from '../../src/compiler/passes/weights.js'
import { dynamicPass } from '../../src/compiler/passes/dynamic.js'
import { weightOnlyPass } from '../../src/compiler/passes/weight-only.js'
import { qdqPass, staticTargets } from '../../src/compiler/passes/qdq.js'
import { fp16Pass } from '../../src/compiler/passes/fp16.js'
import { compactPass } from '../../src/compiler/passes/compact.js'
import { fuseAll } from '../../src/compiler/passes/fuse.js'
import { upgradeOpset } from '../../src/compiler/passes/opset.js'
import { collectRanges, entropyThreshold } from '../../src/compiler/calibration.js'
import {
  compile,
  openSession,
  prng,
  run,
  synthesizeInputs,
  sessionSignature,
  type NamedTensor,
} from '../../src/compiler/index.js'
import { shipped, testProfile } from '../fixtures/compiler/models.js'
import { compareOutputs } from '../../src/compiler/measure.js'
import { mlpModel, ifModel, convModel, attentionModel } from '../fixtures/compiler/tiny.js'

/** int8 tensors per graph depth, and float weight tensors (≥ 64 elements) left anywhere. */
function census(decoded: ModelProto) {
  const int8 = { main: 0, sub: 0 }
  let floatWeights = 0
  walkGraphs(decoded, ({ graph, depth }) => {
    const tensors = [
      ...graph.initializer,
      ...graph.node.filter((n) => n.op_type === 'Constant').map((n) => n.attribute[0].t!),
    ]
    for (const t of tensors) {
      const n = t.dims.reduce<number>((a, b) => a * Number(b), 1)
      if (t.data_type === DataType.INT8 && n >= 64) int8[depth ? 'sub' : 'main']++
      if (t.data_type === DataType.FLOAT && n >= 64 && !/_scale|_s$/.test(t.name ?? '')) floatWeights++
    }
  })
  const ops = new Map<string, number>()
  walkGraphs(decoded, ({ graph }) => graph.node.forEach((n) => ops.set(n.op_type!, (ops.get(n.op_type!) ?? 0) + 1)))
  return { int8, floatWeights, ops }
}

async function outputs(bytes: Uint8Array, inputs?: Record<string, NamedTensor>) {
  const s = await openSession(bytes)
  try {
    const x = inputs ?? synthesizeInputs(sessionSignature(s).inputs, { values: { flag: 1 } })
    return { x, y: await run(s, x) }
  } finally {
    await s.release()
  }
}

async function closeTo(
  original: Uint8Array,
  rewritten: ModelProto,
  minCosine: number,
  inputs?: Record<string, NamedTensor>,
) {
  const ref = await outputs(original, inputs)
  const got = await outputs(encodeModel(rewritten), ref.x)
  const acc = compareOutputs([ref.y], [got.y])
  expect(acc.cosine).toBeGreaterThanOrEqual(minCosine)
  return acc
}

describe('weight discovery', () => {
  it('int8-dynamic: MatMul weight in a Constant node and Gemm weight initializer both become DynamicQuantizeMatMul', async () => {
    const decoded = decodeModel(mlpModel())
    const ctx = dynamicPass(decoded, new QuantContext(decoded, 13))
    expect(ctx.plan.weights.constantNode).toBe(1)
    expect(ctx.plan.weights.initializer).toBe(1)
    const c = census(decoded)
    expect(c.ops.get('DynamicQuantizeMatMul')).toBe(2)
    expect(c.ops.get('Constant') ?? 0).toBe(0) // the dead Constant is gone
    expect(c.int8.main).toBe(2)
    expect(c.floatWeights).toBe(0)
    await closeTo(mlpModel(), decoded, 0.999)
  })

  it('int8-dynamic integer form: DynamicQuantizeLinear → MatMulInteger chain', async () => {
    const m = decodeModel(mlpModel())
    dynamicPass(m, new QuantContext(m, 13), { form: 'integer' })
    expect(census(m).ops.get('MatMulInteger')).toBe(2)
    await closeTo(mlpModel(), m, 0.999)
  })

  it('int8-weight: weights inside If branches and read from the outer scope are quantized in the branch', async () => {
    const decoded = decodeModel(ifModel())
    const ctx = weightOnlyPass(decoded, new QuantContext(decoded, 13))
    // then-branch initializer, else-branch outer Constant, main-graph MatMul initializer
    expect(ctx.plan.weights).toEqual({ initializer: 2, constantNode: 1, subgraph: 2 })
    const c = census(decoded)
    expect(c.int8).toEqual({ main: 1, sub: 2 })
    expect(c.floatWeights).toBe(0)
    expect(c.ops.get('Constant') ?? 0).toBe(0)
    for (const flag of [0, 1]) {
      const x = synthesizeInputs([{ name: 'x', type: 'float32', dims: [1, 4, 8, 8] }])
      await closeTo(ifModel(), decoded, 0.999, { ...x, flag: { type: 'bool', dims: [], data: Uint8Array.of(flag) } })
    }
  })

  it('fp16: Constant-node and subgraph weights are stored as half, inputs and outputs stay float', async () => {
    const m = decodeModel(ifModel())
    const plan = fp16Pass(m)
    expect(plan.weights.constantNode).toBe(1)
    expect(plan.weights.subgraph).toBe(1)
    expect(census(m).floatWeights).toBe(0)
    expect(m.graph!.input[0].type!.tensor_type!.elem_type).toBe(DataType.FLOAT)
    await closeTo(ifModel(), m, 0.9999)
  })

  it('per-tensor scales when the opset has no DequantizeLinear axis (opset 11)', () => {
    const m = decodeModel(mlpModel(11))
    const ctx = weightOnlyPass(m, new QuantContext(m, 11))
    const dq = m.graph!.node.filter((n) => n.op_type === 'DequantizeLinear')
    expect(dq.length).toBe(2)
    expect(dq.every((n) => n.attribute.length === 0)).toBe(true)
    expect(ctx.perChannel).toBe(false)
  })
})

describe('compact storage (int8-weight)', () => {
  it('DequantizeLinear without zero point; biases and scales packed as one fp16 blob; short names; I/O names and results kept', async () => {
    const src = convModel()
    const decoded = decodeModel(src)
    weightOnlyPass(decoded, new QuantContext(decoded, 13), { minElements: 1 })
    const dq = decoded.graph!.node.filter((n) => n.op_type === 'DequantizeLinear')
    expect(dq.length).toBe(2)
    expect(dq.every((n) => n.input.length === 2)).toBe(true) // no zero-point tensor: symmetric int8, 0 by default
    const before = encodeModel(decoded).byteLength
    const stats = compactPass(decoded, 13, { shortNames: true })
    expect(stats.packedTensors).toBe(4) // b1, b2 and the two per-channel weight scales
    const floats = decoded.graph!.initializer.filter((t) => t.data_type === DataType.FLOAT)
    expect(floats.length).toBe(0)
    expect(decoded.graph!.initializer.filter((t) => t.data_type === DataType.FLOAT16).length).toBe(1)
    expect(decoded.graph!.node.filter((n) => n.op_type === 'Split').length).toBe(1)
    expect(decoded.graph!.input[0].name).toBe('x')
    expect(decoded.graph!.output[0].name).toBe('y')
    expect(decoded.graph!.node.every((n) => !n.name)).toBe(true)
    expect(encodeModel(decoded).byteLength).toBeLessThan(before)
    const x = synthesizeInputs([{ name: 'x', type: 'float32', dims: [1, 3, 16, 16] }], { seed: 3 })
    const acc = await closeTo(src, decoded, 0.999, x)
    expect(acc.maxAbsError).toBeLessThan(0.05)
  })

  it('leaves names alone when the model has subgraphs, and keeps fp32 what fp16 cannot hold', () => {
    const m = decodeModel(ifModel())
    weightOnlyPass(m, new QuantContext(m, 13))
    const names = m.graph!.node.flatMap((n) => n.output)
    expect(compactPass(m, 13, { shortNames: true }).renamed).toBe(0)
    expect(m.graph!.node.flatMap((n) => n.output).filter((o) => names.includes(o)).length).toBe(names.length)
    const c = decodeModel(convModel())
    c.graph!.initializer.find((t) => t.name === 'b1')!.raw_data = new Uint8Array(
      Float32Array.from({ length: 16 }, () => 1e6).buffer,
    )
    const stats = compactPass(c, 13)
    expect(c.graph!.initializer.some((t) => t.name === 'b1' && t.data_type === DataType.FLOAT)).toBe(true)
    expect(stats.packedTensors).toBe(0) // b2 alone is not worth a Cast + Split
  })
})

describe('float fusions', () => {
  /** Paddle's shapes: Conv → Mul(s) → Add(b) → hard-swish as x·Clip(x+3,0,6)/6 → Mul(s) → Add(b) → padded Conv → 1×1 Conv behind another affine. */
  async function paddleBlock() {
    const { node, vi, weights } = await import('../fixtures/compiler/tiny.js')
    const { f32 } = await import('../../src/compiler/onnx/tensor.js')
    const graphProto = {
      name: 'paddle',
      value_info: [],
      input: [vi('x', [1, 3, 8, 8])],
      output: [vi('y', [1, 4, 8, 8])],
      initializer: [
        weights('w1', [6, 3, 3, 3], 1),
        weights('b1', [6], 2, 0.1),
        f32('s1', [1], [0.7]),
        f32('a1', [1], [0.2]),
        f32('three', [], [3]),
        f32('zero', [], [0]),
        f32('six', [], [6]),
        f32('six2', [], [6]),
        f32('s2', [1], [1.3]),
        f32('a2', [1], [-0.1]),
        weights('w2', [6, 1, 3, 3], 3),
        weights('b2', [6], 4, 0.1),
        f32('s3', [1], [0.9]),
        f32('a3', [1], [0.05]),
        weights('w3', [4, 6, 1, 1], 5),
      ],
      node: [
        node('Conv', ['x', 'w1', 'b1'], ['c1'], [{ name: 'pads', type: 7, ints: [1, 1, 1, 1] }]),
        node('Mul', ['c1', 's1'], ['m1']),
        node('Add', ['m1', 'a1'], ['l1']),
        node('Add', ['l1', 'three'], ['h1']),
        node('Clip', ['h1', 'zero', 'six'], ['h2']),
        node('Mul', ['l1', 'h2'], ['h3']),
        node('Div', ['h3', 'six2'], ['h4']),
        node('Mul', ['h4', 's2'], ['m2']),
        node('Add', ['m2', 'a2'], ['l2']),
        node(
          'Conv',
          ['l2', 'w2', 'b2'],
          ['c2'],
          [
            { name: 'pads', type: 7, ints: [1, 1, 1, 1] },
            { name: 'group', type: 2, i: 6 },
          ],
        ),
        node('Relu', ['c2'], ['r2']),
        node('Mul', ['r2', 's3'], ['m3']),
        node('Add', ['m3', 'a3'], ['l3']),
        node('Conv', ['l3', 'w3'], ['y']),
      ],
    }
    return encodeModel({
      ir_version: 8,
      opset_import: [{ domain: '', version: 13 }],
      graph: graphProto,
      metadata_props: [],
    })
  }

  it('folds affine pairs into Conv and hard-swish into HardSwish; results are unchanged', async () => {
    const src = await paddleBlock()
    const decoded = decodeModel(src)
    const notes = fuseAll(decoded)
    expect(notes.join(' ')).toMatch(/3 scalar\/per-channel affine/)
    const ops = census(decoded).ops
    expect(ops.get('HardSwish')).toBe(1)
    expect(ops.get('Clip') ?? 0).toBe(0)
    expect(ops.get('Div') ?? 0).toBe(0)
    expect(ops.get('Mul') ?? 0).toBe(0)
    expect(ops.get('Add')).toBe(1) // the shift in front of the padded depthwise Conv: its padding must still see 0
    expect(Number(decoded.opset_import[0].version)).toBe(14)
    const x = synthesizeInputs([{ name: 'x', type: 'float32', dims: [1, 3, 8, 8] }], { seed: 5 })
    const acc = await closeTo(src, decoded, 0.99999, x)
    expect(acc.maxAbsError).toBeLessThan(1e-4)
  })

  it('leaves a Conv whose output has two readers, and non-constant affines, alone', async () => {
    const { node, vi, weights } = await import('../fixtures/compiler/tiny.js')
    const graphProto = {
      name: 'two',
      value_info: [],
      initializer: [weights('w', [4, 3, 1, 1], 1)],
      input: [vi('x', [1, 3, 4, 4]), vi('s', [1])],
      output: [vi('y', [1, 4, 4, 4]), vi('z', [1, 4, 4, 4])],
      node: [node('Conv', ['x', 'w'], ['c']), node('Mul', ['c', 's'], ['y']), node('Relu', ['c'], ['z'])],
    }
    const decoded = decodeModel(
      encodeModel({
        ir_version: 8,
        opset_import: [{ domain: '', version: 13 }],
        graph: graphProto,
        metadata_props: [],
      }),
    )
    expect(fuseAll(decoded)).toEqual([])
    expect(decoded.graph!.node.length).toBe(3)
  })
})

describe('int8-static QDQ', () => {
  it('Conv → Relu → Conv gets Q/DQ on activations, per-channel weights and int32 bias, and matches the float model', async () => {
    const src = convModel()
    const decoded = decodeModel(src)
    const { tensors } = staticTargets(decoded)
    expect(tensors.sort()).toEqual(['c1', 'r1', 'x'].sort())
    const s = await openSession(src)
    const samples = [1, 2, 3, 4].map((seed) => synthesizeInputs(sessionSignature(s).inputs, { seed }))
    await s.release()
    const ranges = await collectRanges(decoded, tensors, samples)
    qdqPass(decoded, new QuantContext(decoded, 13), ranges)
    const c = census(decoded)
    expect(c.ops.get('QuantizeLinear')).toBe(3)
    expect(c.floatWeights).toBe(0)
    const biasDq = decoded.graph!.initializer.filter((t) => t.data_type === DataType.INT32)
    expect(biasDq.length).toBeGreaterThanOrEqual(2)
    await closeTo(src, decoded, 0.99, samples[0])
  })
})

describe('opset upgrade', () => {
  it('rewrites opset-9 Clip/Slice/Squeeze/Softmax attributes into inputs and keeps results', async () => {
    const { node, vi } = await import('../fixtures/compiler/tiny.js')
    const FLOAT = 1
    const graphProto = {
      name: 'old',
      initializer: [],
      value_info: [],
      input: [vi('x', [2, 1, 6])],
      output: [vi('y', [2, 4])],
      node: [
        node(
          'Clip',
          ['x'],
          ['c'],
          [
            { name: 'min', type: 1, f: -0.5 },
            { name: 'max', type: 1, f: 0.5 },
          ],
        ),
        node(
          'Slice',
          ['c'],
          ['s'],
          [
            { name: 'starts', type: 7, ints: [1] },
            { name: 'ends', type: 7, ints: [5] },
            { name: 'axes', type: 7, ints: [2] },
          ],
        ),
        node('Squeeze', ['s'], ['q'], [{ name: 'axes', type: 7, ints: [1] }]),
        node('Softmax', ['q'], ['y'], [{ name: 'axis', type: 2, i: 1 }]),
      ],
    }
    const src = encodeModel({
      ir_version: 4,
      opset_import: [{ domain: '', version: 9 }],
      graph: graphProto,
      metadata_props: [],
    })
    const m = decodeModel(src)
    upgradeOpset(m, 13)
    expect(m.graph!.node.find((n) => n.op_type === 'Clip')!.input.length).toBe(3)
    expect(m.graph!.node.find((n) => n.op_type === 'Slice')!.input.length).toBe(4)
    const x: Record<string, NamedTensor> = {
      x: { type: 'float32', dims: [2, 1, 6], data: Float32Array.from({ length: 12 }, (_, i) => Math.sin(i) * FLOAT) },
    }
    const acc = await closeTo(src, m, 0.999999, x)
    expect(acc.maxAbsError).toBeLessThan(1e-6)
  })
})

describe('int8-static quantized chains', () => {
  /** Op counts in the graph ONNX Runtime runs after its QDQ fusions. */
  async function afterOrtLoad(bytes: Uint8Array): Promise<Map<string, number>> {
    const dir = mkdtempSync(join(tmpdir(), 'ef-qdq-'))
    try {
      const file = join(dir, 'optimized.onnx')
      await (await openSession(bytes, { optimizedModelFilePath: file })).release()
      return census(decodeModel(new Uint8Array(readFileSync(file)))).ops
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  }

  it('attention MatMuls and a residual Add of quantized values run as QLinearMatMul/QLinearAdd: fewer DQ left', async () => {
    const src = attentionModel()
    const s = await openSession(src)
    const samples = [1, 2, 3, 4].map((seed) => synthesizeInputs(sessionSignature(s).inputs, { seed }))
    await s.release()
    const build = async (chains: boolean) => {
      const decoded = decodeModel(src)
      const targets = staticTargets(decoded, undefined, 0, chains)
      const ranges = await collectRanges(decoded, targets.tensors, samples)
      qdqPass(decoded, new QuantContext(decoded, 13), ranges, undefined, 0, chains)
      return { targets, decoded, ops: await afterOrtLoad(encodeModel(decoded)) }
    }
    const plain = await build(false)
    const chained = await build(true)
    expect(chained.targets.attention.map((n) => n.output[0])).toEqual(['scores', 'att'])
    expect(chained.targets.chain.map((n) => n.output[0])).toEqual(['res'])
    // Without chains the two attention MatMuls, the Softmax and the Add run in float between DQ and Q.
    expect(plain.ops.get('MatMul')).toBe(1)
    expect(chained.ops.get('QLinearMatMul')).toBe((plain.ops.get('QLinearMatMul') ?? 0) + 2)
    expect(chained.ops.get('QLinearAdd')).toBe(1)
    expect(chained.ops.get('MatMul') ?? 0).toBe(0)
    // Every DequantizeLinear left after fusion is a float op's way out of int8: the chained build has none.
    expect(plain.ops.get('DequantizeLinear')).toBeGreaterThan(0)
    expect(chained.ops.get('DequantizeLinear') ?? 0).toBe(0)
    await closeTo(src, chained.decoded, 0.99, samples[0])
  })
})

describe('entropy (KL) calibration', () => {
  it('clips the long tail of a Laplace-like activation that minmax would stretch the step for; keeps a uniform range', () => {
    const rand = prng(5)
    const laplace = Float32Array.from({ length: 30000 }, () => -Math.log(1 - rand()) * (rand() < 0.5 ? -1 : 1))
    const maxAbs = laplace.reduce((a, x) => Math.max(a, Math.abs(x)), 0)
    const threshold = entropyThreshold(laplace, maxAbs)
    expect(threshold).toBeLessThan(0.85 * maxAbs)
    expect(threshold).toBeGreaterThan(0.4 * maxAbs)
    const uniform = Float32Array.from({ length: 30000 }, () => rand() * 2 - 1)
    expect(entropyThreshold(uniform, 1)).toBeGreaterThan(0.9)
  })

  it('calibrates a static build of a real model (wake-word head) that stays within budget', async () => {
    const entry = shipped['wake-hello']
    const built = await compile(new Uint8Array(readFileSync(entry.file)), testProfile(), {
      precision: 'int8-static',
      calibrationMethod: 'entropy',
      calibrationSamples: 8,
      validationSamples: 3,
      timing: false,
      measureRam: false,
    })
    expect(built.report.verdict).toBe('pass')
    expect((built.report.notes as string[]).join('\n')).toMatch(/calibrated \d+ activations on \d+ samples \(entropy\)/)
  })
})
