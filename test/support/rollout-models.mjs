// Small ONNX models for rollout tests, written with the hub's own protobuf
// writer (built dist): x[N,64] → MatMul → y[N,8]. With `strictBatch` the
// graph reshapes y to [1,8]: it passes the hub's health check (batch 1) but
// fails every request with a batch of 2 — a deliberately worse version whose
// error rate only shows on devices under real traffic.
import { join } from 'node:path'
import { ROOT } from './fleet.mjs'

export async function batchModel({ strictBatch = false, seed = 1 } = {}) {
  const { encodeModel } = await import(join(ROOT, 'hub', 'dist', 'compiler', 'onnx', 'proto.js'))
  const { makeTensor, i64 } = await import(join(ROOT, 'hub', 'dist', 'compiler', 'onnx', 'tensor.js'))
  const weights = new Float32Array(64 * 8)
  let a = seed >>> 0
  for (let i = 0; i < weights.length; i++) {
    a = (a * 1664525 + 1013904223) >>> 0
    weights[i] = (a / 4294967296 - 0.5) * 0.2
  }
  const vi = (name, dims) => ({
    name,
    type: {
      tensor_type: {
        elem_type: 1,
        shape: { dim: dims.map((d) => (typeof d === 'string' ? { dim_param: d } : { dim_value: d })) },
      },
    },
  })
  const node = [{ op_type: 'MatMul', input: ['x', 'w'], output: [strictBatch ? 'h' : 'y'], name: 'mm', attribute: [] }]
  const initializer = [makeTensor('w', 1, [64, 8], weights)]
  if (strictBatch) {
    node.push({ op_type: 'Reshape', input: ['h', 'shape'], output: ['y'], name: 'rs', attribute: [] })
    initializer.push(i64('shape', [2], [1, 8]))
  }
  return encodeModel({
    ir_version: 8,
    opset_import: [{ domain: '', version: 13 }],
    producer_name: 'edgefleet-tests',
    graph: {
      name: 'batch',
      node,
      input: [vi('x', ['N', 64])],
      output: [vi('y', ['N', 8])],
      initializer,
      value_info: [],
    },
  })
}

/** A request body for the agent's local API with `batch` rows. */
export function batchInput(batch, seed = 1) {
  let a = seed >>> 0
  const data = []
  for (let i = 0; i < batch * 64; i++) {
    a = (a * 1664525 + 1013904223) >>> 0
    data.push((a / 4294967296) * 2 - 1)
  }
  return { inputs: { x: { type: 'float32', dims: [batch, 64], data } } }
}
