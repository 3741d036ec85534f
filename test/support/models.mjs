// Synthetic ONNX models of a chosen size for distribution tests and
// benchmarks: x[1,k] → MatMul(W[k,n]) → y[1,n], written with the hub's own
// protobuf writer (built dist).
import { join } from 'node:path'
import { ROOT } from './fleet.mjs'

export async function matmulModel(sizeBytes, seed = 1) {
  const { encodeModel } = await import(join(ROOT, 'hub', 'dist', 'compiler', 'onnx', 'proto.js'))
  const { makeTensor } = await import(join(ROOT, 'hub', 'dist', 'compiler', 'onnx', 'tensor.js'))
  const inFeatures = 1024
  const outFeatures = Math.max(1, Math.round(sizeBytes / 4 / inFeatures))
  const weights = new Float32Array(inFeatures * outFeatures)
  let a = seed >>> 0
  for (let i = 0; i < weights.length; i++) {
    a = (a * 1664525 + 1013904223) >>> 0
    weights[i] = (a / 4294967296 - 0.5) * 0.05
  }
  const vi = (name, dims) => ({
    name,
    type: { tensor_type: { elem_type: 1, shape: { dim: dims.map((d) => ({ dim_value: d })) } } },
  })
  return encodeModel({
    ir_version: 8,
    opset_import: [{ domain: '', version: 13 }],
    producer_name: 'edgefleet-tests',
    graph: {
      name: 'big',
      node: [{ op_type: 'MatMul', input: ['x', 'w'], output: ['y'], name: 'mm', attribute: [] }],
      input: [vi('x', [1, inFeatures])],
      output: [vi('y', [1, outFeatures])],
      initializer: [makeTensor('w', 1, [inFeatures, outFeatures], weights)],
      value_info: [],
    },
  })
}
