// int8-static in QDQ form: Conv and MatMul (constant weight) in the main graph
// get QuantizeLinear → DequantizeLinear on their activations (u8, ranges from
// calibration), DequantizeLinear on s8 per-channel weights and an int32 bias
// with scale = x_scale * w_scale — exactly the node groups ORT's QDQ fusion
// turns into QLinearConv / QLinearMatMul at load time. Weights elsewhere
// (subgraphs, other ops) get weight-only int8.
import { DataType, setOpset, type ModelProto, type NodeProto } from '../onnx/proto.js'
import { makeNode, intAttr, walkGraphs, removeDeadConstants, topoSort, Scope } from '../onnx/graph.js'
import { dimsOf, floatData, makeTensor, elementCount } from '../onnx/tensor.js'
import { QuantContext, quantizeSymmetric } from './weights.js'
import { weightOnlyPass } from './weight-only.js'
import { dynamicPass } from './dynamic.js'

export interface Range {
  min: number
  max: number
}

/**
 * Which nodes of the main graph the static pass quantizes, and the activations it needs ranges for.
 * `keepFloat` leaves the first that many candidates (in graph order) to weight-only int8: the
 * stem of a conv net sees the raw input at full resolution, and its error is amplified by every
 * later layer (PP-OCRv4 det: quantizing all Conv → cosine 0.76; all but the first 4 → 0.99).
 */
export function staticTargets(
  model: ModelProto,
  ops: ReadonlySet<string> = new Set(['Conv', 'MatMul']),
  keepFloat = 0,
): { nodes: NodeProto[]; tensors: string[] } {
  const graph = model.graph!
  const scope = new Scope(graph, null)
  const nodes: NodeProto[] = []
  const tensors = new Set<string>()
  const graphOutputs = new Set(graph.output.map((o) => o.name ?? ''))
  let skip = keepFloat
  for (const node of graph.node) {
    if ((node.domain ?? '') !== '' || !ops.has(node.op_type ?? '')) continue
    const x = node.input[0]
    if (!x || scope.isConst(x)) continue
    const w = scope.resolve(node.input[1] ?? '')
    if (!w || !floatData(w.tensor)) continue
    const wr = w.tensor.dims.length
    if (node.op_type === 'MatMul' && wr !== 2) continue
    if (node.op_type === 'Conv' && wr < 3) continue
    if (skip > 0) {
      skip--
      continue
    }
    nodes.push(node)
    tensors.add(x)
    if (!graphOutputs.has(node.output[0])) tensors.add(node.output[0])
  }
  return { nodes, tensors: [...tensors] }
}

/** u8 asymmetric parameters covering [min, max] (always including 0, as ONNX requires zero to be exact). */
export function u8Params(r: Range): { scale: number; zeroPoint: number } {
  const lo = Math.min(0, r.min)
  const hi = Math.max(0, r.max)
  if (!(hi > lo) || !Number.isFinite(hi - lo)) return { scale: 1, zeroPoint: 0 }
  const scale = (hi - lo) / 255
  const zeroPoint = Math.max(0, Math.min(255, Math.round(-lo / scale)))
  return { scale, zeroPoint }
}

export function qdqPass(
  model: ModelProto,
  ctx: QuantContext,
  ranges: ReadonlyMap<string, Range>,
  ops?: ReadonlySet<string>,
  keepFloat = 0,
): QuantContext {
  const graph = model.graph!
  const scope = new Scope(graph, null)
  const { nodes } = staticTargets(model, ops, keepFloat)
  const targets = new Set(nodes)
  const outputsOfTargets = new Set(nodes.map((n) => n.output[0]))
  const fresh = (s: string) => ctx.names.fresh(s.replace(/[^A-Za-z0-9_./:-]/g, '_'))
  const params = new Map<string, { scale: number; zeroPoint: number; dq: string }>()
  const added: NodeProto[] = []

  /** One Q→DQ pair per activation tensor, shared by every consumer. */
  const qdq = (t: string) => {
    let p = params.get(t)
    if (p) return p
    const r = ranges.get(t)
    if (!r) return undefined
    const { scale, zeroPoint } = u8Params(r)
    const [s, z, q, dq] = ['scale', 'zero_point', 'quantized', 'dequantized'].map((x) => fresh(`${t}_${x}`))
    graph.initializer.push(makeTensor(s, DataType.FLOAT, [], Float32Array.of(scale)))
    graph.initializer.push(makeTensor(z, DataType.UINT8, [], Uint8Array.of(zeroPoint)))
    added.push(makeNode('QuantizeLinear', [t, s, z], [q], fresh(`${t}_QuantizeLinear`)))
    added.push(makeNode('DequantizeLinear', [q, s, z], [dq], fresh(`${t}_DequantizeLinear`)))
    p = { scale, zeroPoint, dq }
    params.set(t, p)
    return p
  }

  for (const node of nodes) {
    const x = qdq(node.input[0])
    if (!x) {
      ctx.plan.count(node.op_type ?? '', 'fp32 (no calibration range)')
      targets.delete(node)
      continue
    }
    const isConv = node.op_type === 'Conv'
    const ref = scope.resolve(node.input[1])!
    const w = floatData(ref.tensor)!
    const dims = dimsOf(ref.tensor)
    const axis = ctx.perChannel ? (isConv ? 0 : 1) : null
    const { q, scale } = quantizeSymmetric(w, dims, axis)
    const base = node.name || node.output[0]
    const [wq, ws, wdq] = ['weight_quantized', 'weight_scale', 'weight_dequantized'].map((s) => fresh(`${base}_${s}`))
    const sDims = axis === null ? [] : [scale.length]
    graph.initializer.push(makeTensor(wq, DataType.INT8, dims, q))
    graph.initializer.push(makeTensor(ws, DataType.FLOAT, sDims, scale))
    // No zero-point tensors for the symmetric weight and the int32 bias (optional inputs, 0 when absent):
    // ORT still fuses the group into QLinearConv, and a per-channel int32 zero point costs 4 bytes a channel.
    added.push(
      makeNode(
        'DequantizeLinear',
        [wq, ws],
        [wdq],
        fresh(`${base}_weight_DequantizeLinear`),
        axis === null ? [] : [intAttr('axis', axis)],
      ),
    )
    ctx.plan.noteWeight(ref, 0)
    node.input[0] = x.dq
    node.input[1] = wdq
    // Conv bias → int32 with scale x_scale * w_scale[c] (the only bias form ORT's QLinearConv fusion accepts).
    const bref = isConv && node.input[2] ? scope.resolve(node.input[2]) : undefined
    const b = bref && floatData(bref.tensor)
    if (b && b.length === elementCount(dims.slice(0, 1))) {
      const bs = new Float32Array(b.length)
      const bq = new Int32Array(b.length)
      for (let c = 0; c < b.length; c++) {
        bs[c] = x.scale * scale[axis === null ? 0 : c]
        bq[c] = Math.max(-2147483647, Math.min(2147483647, Math.round(b[c] / bs[c])))
      }
      const [bqn, bsn, bdq] = ['bias_quantized', 'bias_scale', 'bias_dequantized'].map((s) => fresh(`${base}_${s}`))
      const perC = axis !== null
      graph.initializer.push(makeTensor(bqn, DataType.INT32, [b.length], bq))
      graph.initializer.push(makeTensor(bsn, DataType.FLOAT, perC ? [b.length] : [], perC ? bs : bs.subarray(0, 1)))
      added.push(
        makeNode(
          'DequantizeLinear',
          [bqn, bsn],
          [bdq],
          fresh(`${base}_bias_DequantizeLinear`),
          perC ? [intAttr('axis', 0)] : [],
        ),
      )
      node.input[2] = bdq
    }
    ctx.plan.count(node.op_type ?? '', 'int8-static')
  }

  // Outputs of quantized nodes: every consumer reads the dequantized value, so the node's only reader is its Q.
  for (const t of outputsOfTargets) {
    const producer = nodes.find((n) => n.output[0] === t)
    if (!producer || !targets.has(producer)) continue
    const p = qdq(t)
    if (!p) continue
    // graph.node does not hold the new Q/DQ nodes yet, so the Q reading t is untouched.
    for (const n of graph.node) if (n.input.includes(t)) n.input = n.input.map((x) => (x === t ? p.dq : x))
  }
  graph.node.push(...added)
  topoSort(graph)
  setOpset(model, '', Math.max(10, Number(model.opset_import.find((o) => (o.domain ?? '') === '')?.version ?? 10)))
  // What the static pass did not take: Gemm/MatMul elsewhere go dynamic (faster than weight-only),
  // the rest (subgraph weights, LSTM, ConvTranspose...) weight-only.
  dynamicPass(model, ctx, { weightOnlyRest: false })
  weightOnlyPass(model, ctx, { skipNodes: targets })
  removeDeadConstants(model)
  return ctx
}

/** Collects the tensor names every graph (not just main) would need to calibrate; only main-graph ones are supported. */
export function mainGraphOnly(model: ModelProto): boolean {
  let nested = false
  walkGraphs(model, ({ depth }) => (nested ||= depth > 0))
  return !nested
}
