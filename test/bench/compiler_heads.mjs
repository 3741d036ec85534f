// Is "int8 latency ≤ 0.6 × fp32" reachable on the wake-word heads? A head's fp32
// session.run is ~20 µs, most of it fixed per-call cost. This times, side by side
// in one process (interleaved, warm, median of 5 repeats of 3000 runs each):
//  - the head as shipped (fp32) and its EdgeFleet builds (int8-dynamic fused and
//    MatMulInteger forms, int8-static, int8-weight) and ORT's quantize_dynamic build (if --py works),
//  - zero-work models with the head's input: Identity, and ReduceMax → [1,1],
//  - the head's first layer alone (Reshape + its 2400×32 Gemm): fp32, DynamicQuantizeMatMul,
//    DynamicQuantizeLinear→MatMulInteger chain, QLinearMatMul.
// If even the first layer alone in int8 costs more than 0.6 × the whole fp32 head, 0.6 is out of reach.
//
//   npx tsc -b && node test/bench/compiler_heads.mjs [--model hello_deepa]
import { readFileSync, existsSync, mkdtempSync } from 'node:fs'
import { execFileSync } from 'node:child_process'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { compile, openSession, run, prng } from '../../hub/dist/compiler/index.js'
import { encodeModel, decodeModel, DataType } from '../../hub/dist/compiler/onnx/proto.js'
import { makeTensor, floatData } from '../../hub/dist/compiler/onnx/tensor.js'
import { quantizeSymmetric, transpose2d } from '../../hub/dist/compiler/passes/weights.js'

const arg = (name, dflt) => {
  const i = process.argv.indexOf(name)
  return i > 0 ? process.argv[i + 1] : dflt
}
const here = fileURLToPath(new URL('.', import.meta.url))
const name = arg('--model', 'hello_deepa')
const file = join(here, `../../node_modules/openwakeword-js/models/${name}.onnx`)
const py = arg('--py', '/work/pyref/bin/python')
const bytes = new Uint8Array(readFileSync(file))
const head = decodeModel(bytes)
const inName = head.graph.input[0].name
const inDims = head.graph.input[0].type.tensor_type.shape.dim.map((d) => Number(d.dim_value))
const flat = inDims.slice(1).reduce((a, b) => a * b, 1)

const vi = (n, dims, t = DataType.FLOAT) => ({
  name: n,
  type: { tensor_type: { elem_type: t, shape: { dim: dims.map((d) => ({ dim_value: d })) } } },
})
const node = (op, i, o, attribute = [], domain) => ({
  op_type: op,
  input: i,
  output: o,
  attribute,
  ...(domain ? { domain } : {}),
})
const model = (nodes, out, init = [], ms = false) =>
  encodeModel({
    ir_version: 8,
    opset_import: [{ domain: '', version: 13 }, ...(ms ? [{ domain: 'com.microsoft', version: 1 }] : [])],
    graph: {
      name: 'm',
      node: nodes,
      input: [vi(inName, inDims)],
      output: [vi('y', out)],
      initializer: init,
      value_info: [],
    },
    metadata_props: [],
  })

// The first Gemm's weight [32, flat] (transB) and bias.
const gemm = head.graph.node.find((n) => n.op_type === 'Gemm')
const gemmWeight = head.graph.initializer.find((t) => t.name === gemm.input[1])
const gemmBias = head.graph.initializer.find((t) => t.name === gemm.input[2])
const outFeatures = Number(gemmWeight.dims[0])
const wkn = transpose2d(floatData(gemmWeight), outFeatures, flat) // [flat, n]
const { q, scale } = quantizeSymmetric(wkn, [flat, outFeatures], 1)
const shp = makeTensor('shp', DataType.INT64, [2], BigInt64Array.of(1n, BigInt(flat)))
const wq = makeTensor('wq', DataType.INT8, [flat, outFeatures], q)
const ws = makeTensor('ws', DataType.FLOAT, [outFeatures], scale)
const wz = makeTensor('wz', DataType.INT8, [outFeatures], new Int8Array(outFeatures))
const biasTensor = makeTensor('b', DataType.FLOAT, [outFeatures], floatData(gemmBias))
const reshape = node('Reshape', [inName, 'shp'], ['f'])
const qt = quantizeSymmetric(wkn, [flat, outFeatures], null)
const builds = [['head fp32 (as shipped)', bytes]]
const profile = {
  id: 'x',
  name: 'x',
  arch: 'x86_64',
  cores: 2,
  threads: 1,
  ramMb: 8192,
  storageBudgetMb: 4096,
  accelerators: [],
  executionProviders: ['cpu'],
  precisions: ['fp32', 'int8-dynamic', 'int8-weight', 'int8-static'],
  opset: { min: 7, max: 21 },
  latencyBudgetMs: 1000,
  accuracyBudget: { minCosine: 0, maxTop1Disagreement: 1 },
  network: { metered: false, kind: 'ethernet' },
  maintenanceWindow: { cron: '0 3 * * *', durationMinutes: 60, timezone: 'UTC' },
}
for (const [label, o] of [
  ['EdgeFleet int8-dynamic (DynamicQuantizeMatMul)', { precision: 'int8-dynamic' }],
  ['EdgeFleet int8-dynamic (MatMulInteger chain)', { precision: 'int8-dynamic', dynamicForm: 'integer' }],
  ['EdgeFleet int8-static', { precision: 'int8-static' }],
  ['EdgeFleet int8-weight', { precision: 'int8-weight' }],
]) {
  builds.push([label, (await compile(bytes, profile, { ...o, timing: false })).bytes])
}
if (existsSync(py)) {
  const dst = join(mkdtempSync(join(tmpdir(), 'ef-heads-')), 'ort.onnx')
  try {
    execFileSync(py, [join(here, 'compiler_ref.py'), file, dst], { stdio: 'ignore' })
    builds.push(['ORT quantize_dynamic', new Uint8Array(readFileSync(dst))])
  } catch {
    // The reference build is optional: without onnxruntime's Python tools the table just lacks its row.
  }
}
builds.push(['zero work: Identity', model([node('Identity', [inName], ['y'])], inDims)])
builds.push([
  'zero work: ReduceMax → [1,1]',
  model(
    [node('ReduceMax', [inName], ['r'], [{ name: 'keepdims', type: 2, i: 0 }]), node('Reshape', ['r', 'shp1'], ['y'])],
    [1, 1],
    [makeTensor('shp1', DataType.INT64, [2], BigInt64Array.of(1n, 1n))],
  ),
])
builds.push([
  'first layer alone, fp32 Gemm',
  model(
    [reshape, node('Gemm', ['f', 'wt', 'b'], ['y'], [{ name: 'transB', type: 2, i: 1 }])],
    [1, outFeatures],
    [shp, { ...gemmWeight, name: 'wt' }, biasTensor],
  ),
])
builds.push([
  'first layer alone, DynamicQuantizeMatMul',
  model(
    [reshape, node('DynamicQuantizeMatMul', ['f', 'wq', 'ws', '', 'b'], ['y'], [], 'com.microsoft')],
    [1, outFeatures],
    [shp, wq, ws, biasTensor],
    true,
  ),
])
builds.push([
  'first layer alone, MatMulInteger chain',
  model(
    [
      reshape,
      node('DynamicQuantizeLinear', ['f'], ['fq', 'fs', 'fz']),
      node('MatMulInteger', ['fq', 'wq', 'fz', 'wz'], ['mi']),
      node('Cast', ['mi'], ['mf'], [{ name: 'to', type: 2, i: 1 }]),
      node('Mul', ['fs', 'ws'], ['sc']),
      node('Mul', ['mf', 'sc'], ['ms']),
      node('Add', ['ms', 'b'], ['y']),
    ],
    [1, outFeatures],
    [shp, wq, ws, wz, biasTensor],
  ),
])
builds.push([
  'first layer alone, QLinearMatMul',
  model(
    [
      reshape,
      node('QuantizeLinear', ['f', 'xs', 'xz'], ['fq']),
      node('QLinearMatMul', ['fq', 'xs', 'xz', 'wq1', 'ws1', 'wz1', 'ys', 'yz'], ['yq']),
      node('DequantizeLinear', ['yq', 'ys', 'yz'], ['y']),
    ],
    [1, outFeatures],
    [
      shp,
      makeTensor('xs', DataType.FLOAT, [], Float32Array.of(0.05)),
      makeTensor('xz', DataType.UINT8, [], Uint8Array.of(128)),
      makeTensor('wq1', DataType.INT8, [flat, outFeatures], qt.q),
      makeTensor('ws1', DataType.FLOAT, [], qt.scale),
      makeTensor('wz1', DataType.INT8, [], Int8Array.of(0)),
      makeTensor('ys', DataType.FLOAT, [], Float32Array.of(0.05)),
      makeTensor('yz', DataType.UINT8, [], Uint8Array.of(128)),
    ],
  ),
])

const sessions = []
for (const [, m] of builds) sessions.push(await openSession(m, { threads: 1 }))
const r = prng(3)
const data = new Float32Array(flat).map(() => r() * 2 - 1)
const feed = { [inName]: { type: 'float32', dims: inDims, data } }
const reps = []
for (let rep = 0; rep < 5; rep++) {
  const times = sessions.map(() => [])
  for (const s of sessions) for (let i = 0; i < 50; i++) await run(s, feed)
  for (let round = 0; round < 3000; round++)
    for (const [k, s] of sessions.entries()) {
      const t0 = performance.now()
      await run(s, feed)
      times[k].push(performance.now() - t0)
    }
  reps.push(times.map((t) => t.sort((a, b) => a - b)[t.length >> 1]))
}
const med = (a) => [...a].sort((x, y) => x - y)[a.length >> 1]
const m = builds.map((_, k) => med(reps.map((x) => x[k])))
console.log(`| ${name}: build | µs per session.run (median of 5 × 3000) | vs fp32 head |\n|---|---|---|`)
builds.forEach(([l], k) => console.log(`| ${l} | ${(m[k] * 1000).toFixed(1)} | ${(m[k] / m[0]).toFixed(2)} |`))
for (const s of sessions) await s.release()
