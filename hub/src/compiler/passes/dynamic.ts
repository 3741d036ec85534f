// int8-dynamic: MatMul/Gemm with a constant weight become
// com.microsoft.DynamicQuantizeMatMul (activations quantized to u8 per call,
// weights s8 per output column), the form ORT's CPU kernels run fastest:
// one fused op with a prepacked weight. The `integer` form emits the standard
// DynamicQuantizeLinear → MatMulInteger → Cast → Mul chain instead (ORT fuses
// it back at 'extended' level; kept for runtimes without contrib ops).
// Other weighted ops (Conv, LSTM, ...) get weight-only int8: ConvInteger is
// far slower than float Conv on CPU (BASELINES), so dynamic Conv is never emitted.
import { DataType, setOpset, type GraphProto, type ModelProto, type NodeProto } from '../onnx/proto.js'
import {
  attrFloat,
  attrInt,
  makeNode,
  intAttr,
  walkGraphs,
  removeDeadConstants,
  topoSort,
  type Scope,
} from '../onnx/graph.js'
import { dimsOf, floatData, makeTensor } from '../onnx/tensor.js'
import { QuantContext, quantizeSymmetric, transpose2d } from './weights.js'
import { weightOnlyPass } from './weight-only.js'

export type DynamicForm = 'fused' | 'integer'

export interface DynamicOptions {
  form?: DynamicForm
  /** Also store the remaining weights (Conv, LSTM, ...) as int8 + DequantizeLinear. */
  weightOnlyRest?: boolean
}

interface MatMulWeight {
  /** [K, N] row-major. */
  w: Float32Array
  k: number
  n: number
  bias?: Float32Array
}

/** The [K,N] weight (transposed/scaled as needed) and optional 1-D bias of a MatMul/Gemm we can rewrite. */
function matmulWeight(node: NodeProto, scope: Scope): MatMulWeight | undefined {
  const ref = scope.resolve(node.input[1])
  if (!ref) return undefined
  const raw = floatData(ref.tensor)
  const dims = dimsOf(ref.tensor)
  if (!raw || dims.length !== 2) return undefined
  if (node.op_type === 'MatMul') return { w: raw, k: dims[0], n: dims[1] }
  // Gemm: Y = alpha * A' * B' + beta * C
  if (attrInt(node, 'transA', 0) !== 0) return undefined
  const transB = attrInt(node, 'transB', 0) === 1
  const alpha = attrFloat(node, 'alpha', 1)
  const beta = attrFloat(node, 'beta', 1)
  let weightMatrix = transB ? transpose2d(raw, dims[0], dims[1]) : raw
  const [rows, cols] = transB ? [dims[1], dims[0]] : dims
  if (alpha !== 1) weightMatrix = weightMatrix.map((v) => v * alpha)
  let bias: Float32Array | undefined
  if (node.input[2] && beta !== 0) {
    const cref = scope.resolve(node.input[2])
    const c = cref && floatData(cref.tensor)
    if (!c) return undefined
    if (c.length === cols) bias = c.map((v) => v * beta)
    else if (c.length === 1) bias = new Float32Array(cols).fill(c[0] * beta)
    else return undefined
  }
  return { w: weightMatrix, k: rows, n: cols, bias }
}

function rewrite(
  graph: GraphProto,
  node: NodeProto,
  mw: MatMulWeight,
  ctx: QuantContext,
  form: DynamicForm,
): NodeProto[] {
  const { q, scale } = quantizeSymmetric(mw.w, [mw.k, mw.n], 1)
  const base = (node.name || node.output[0]).replace(/[^A-Za-z0-9_./:-]/g, '_')
  const fresh = (s: string) => ctx.names.fresh(`${base}_${s}`)
  const qName = fresh('weight_quantized')
  const sName = fresh('weight_scale')
  graph.initializer.push(makeTensor(qName, DataType.INT8, [mw.k, mw.n], q))
  graph.initializer.push(makeTensor(sName, DataType.FLOAT, [mw.n], scale))
  let bName = ''
  if (mw.bias) {
    bName = fresh('bias')
    graph.initializer.push(makeTensor(bName, DataType.FLOAT, [mw.n], mw.bias))
  }
  const matmulInput = node.input[0]
  const matmulOutput = node.output[0]
  if (form === 'fused') {
    return [
      makeNode(
        'DynamicQuantizeMatMul',
        bName ? [matmulInput, qName, sName, '', bName] : [matmulInput, qName, sName],
        [matmulOutput],
        fresh('DynamicQuantizeMatMul'),
        [],
        'com.microsoft',
      ),
    ]
  }
  const zName = fresh('weight_zero_point')
  graph.initializer.push(makeTensor(zName, DataType.INT8, [mw.n], new Int8Array(mw.n)))
  const [aq, as, az, mm, mmf, sc] = ['a_quantized', 'a_scale', 'a_zero_point', 'int32', 'float', 'scales'].map(fresh)
  const scaled = bName ? fresh('scaled') : matmulOutput
  const nodes = [
    makeNode('DynamicQuantizeLinear', [matmulInput], [aq, as, az], fresh('DynamicQuantizeLinear')),
    makeNode('MatMulInteger', [aq, qName, az, zName], [mm], fresh('MatMulInteger')),
    makeNode('Cast', [mm], [mmf], fresh('Cast'), [intAttr('to', DataType.FLOAT)]),
    makeNode('Mul', [as, sName], [sc], fresh('scale_Mul')),
    makeNode('Mul', [mmf, sc], [scaled], fresh('Mul')),
  ]
  if (bName) nodes.push(makeNode('Add', [scaled, bName], [matmulOutput], fresh('bias_Add')))
  return nodes
}

export function dynamicPass(model: ModelProto, ctx: QuantContext, opts: DynamicOptions = {}): QuantContext {
  const form = opts.form ?? 'fused'
  let usedContrib = false
  walkGraphs(model, ({ graph, scope, depth }) => {
    let touched = false
    const out: NodeProto[] = []
    for (const node of graph.node) {
      const isMM = (node.domain ?? '') === '' && (node.op_type === 'MatMul' || node.op_type === 'Gemm')
      const mw = isMM && !scope.isConst(node.input[0]) ? matmulWeight(node, scope) : undefined
      if (!mw) {
        out.push(node)
        continue
      }
      const ref = scope.resolve(node.input[1])
      if (ref) ctx.plan.noteWeight(ref, depth)
      out.push(...rewrite(graph, node, mw, ctx, form))
      ctx.plan.count(node.op_type ?? '', 'int8-dynamic')
      usedContrib ||= form === 'fused'
      touched = true
    }
    graph.node = out
    if (touched) topoSort(graph)
  })
  if (usedContrib) setOpset(model, 'com.microsoft', 1)
  if (opts.weightOnlyRest ?? true) weightOnlyPass(model, ctx)
  removeDeadConstants(model)
  return ctx
}
