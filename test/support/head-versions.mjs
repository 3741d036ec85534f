// Successive versions of one model that differ only in the head, and what
// changed between two builds of them (issue 15's precision-stability figure):
// retrainHead perturbs the float constants read by the model's last weighted
// nodes (Conv/MatMul/Gemm with a constant weight, and the nodes after them:
// the bias Add of a MatMul head), as a retraining of the head on a frozen
// backbone would; changedTensorBytes is what a perfect tensor-level delta
// between two builds would move. Uses the hub's own protobuf codec (built dist).
import { createHash } from 'node:crypto'
import { join } from 'node:path'
import { ROOT } from './fleet.mjs'

const proto = () => import(join(ROOT, 'hub', 'dist', 'compiler', 'onnx', 'proto.js'))
const tensor = () => import(join(ROOT, 'hub', 'dist', 'compiler', 'onnx', 'tensor.js'))
const WEIGHTED = new Set(['Conv', 'MatMul', 'Gemm', 'ConvTranspose'])

/** Every constant tensor of the main graph by value name: initializers and Constant node values. */
function constants(graph) {
  const out = new Map(graph.initializer.map((t) => [t.name, t]))
  for (const n of graph.node) {
    const t = n.op_type === 'Constant' ? n.attribute.find((a) => a.name === 'value')?.t : undefined
    if (t) out.set(n.output[0], t)
  }
  return out
}

/** A gaussian-ish value from a seeded LCG (sum of 4 uniforms, variance 1). */
function noise(seed) {
  let a = seed >>> 0 || 1
  const u = () => (a = (a * 1664525 + 1013904223) >>> 0) / 4294967296
  return () => (u() + u() + u() + u() - 2) * Math.sqrt(3)
}

/**
 * `model` with its head retrained: every float constant read from the `nodes`-th last weighted
 * node onwards gets w · (1 + scale · n), n seeded noise. Returns the bytes, the head's float bytes
 * and how many tensors changed.
 */
export async function retrainHead(model, { seed, nodes = 1, scale = 0.05 }) {
  const { decodeModel, encodeModel } = await proto()
  const { floatData, makeTensor, dimsOf } = await tensor()
  const decoded = decodeModel(model)
  const graph = decoded.graph
  const consts = constants(graph)
  const weighted = graph.node.flatMap((n, i) => (WEIGHTED.has(n.op_type) && consts.has(n.input[1]) ? [i] : []))
  if (weighted.length < nodes) throw new RangeError(`the model has ${weighted.length} weighted nodes`)
  const names = new Set(graph.node.slice(weighted[weighted.length - nodes]).flatMap((n) => n.input))
  const next = noise(seed)
  let changedBytes = 0
  let tensors = 0
  for (const name of names) {
    const t = consts.get(name)
    const values = t && floatData(t)
    if (!values || values.length < 2) continue // scalars and shape constants are architecture, not weights
    for (let i = 0; i < values.length; i++) values[i] *= 1 + scale * next()
    const fresh = makeTensor(t.name, 1, dimsOf(t), values)
    Object.assign(t, { raw_data: fresh.raw_data, float_data: [] })
    changedBytes += values.byteLength
    tensors++
  }
  return { bytes: encodeModel(decoded), changedBytes, tensors }
}

/** Data bytes of a tensor as stored (raw_data, else its typed fields at their element size). */
function storedBytes(t) {
  if (t.raw_data?.byteLength) return t.raw_data.byteLength
  const n = (t.float_data?.length ?? 0) + (t.int32_data?.length ?? 0)
  return n * 4 + ((t.int64_data?.length ?? 0) + (t.double_data?.length ?? 0) + (t.uint64_data?.length ?? 0)) * 8
}

/** Every tensor of every graph in document order (initializers, then Constant and attribute tensors, then subgraphs). */
function allTensors(graph, out = []) {
  out.push(...graph.initializer)
  for (const n of graph.node)
    for (const a of n.attribute) {
      if (a.t) out.push(a.t)
      for (const t of a.tensors ?? []) out.push(t)
      if (a.g) allTensors(a.g, out)
      for (const g of a.graphs ?? []) allTensors(g, out)
    }
  return out
}

/** A tensor's type, shape and data as one comparable string (the name is left out: builds may rename). */
function content(t) {
  const data = t.raw_data?.byteLength
    ? createHash('sha256').update(t.raw_data).digest('hex')
    : JSON.stringify(
        [t.float_data, t.int32_data, t.int64_data, t.double_data, t.uint64_data].map((v) => v?.map(String)),
      )
  return `${t.data_type}|${t.dims.map(String).join(',')}|${data}`
}

/**
 * Data bytes of `next`'s tensors that differ from `prev`'s, matched by position (same graph → same
 * order): a changed tensor counts whole; tensors beyond `prev`'s count are new.
 */
export async function changedTensorBytes(prev, next) {
  const { decodeModel } = await proto()
  const a = allTensors(decodeModel(prev).graph)
  const b = allTensors(decodeModel(next).graph)
  let changed = 0
  for (let i = 0; i < b.length; i++) if (i >= a.length || content(a[i]) !== content(b[i])) changed += storedBytes(b[i])
  return changed
}
