// int8-static in QDQ form: Conv, MatMul and Gemm (constant weight) in the main
// graph get QuantizeLinear → DequantizeLinear on their activations (u8, ranges
// from calibration), DequantizeLinear on s8 per-channel weights and an int32
// bias with scale = x_scale * w_scale — exactly the node groups ORT's QDQ
// fusion turns into QLinearConv / QLinearMatMul / QGemm at load time. Weights elsewhere
// (subgraphs, other ops) get weight-only int8.
import { defined } from '@edgefleet/shared'
import { DataType, setOpset, type ModelProto, type NodeProto } from '../onnx/proto.js'
import {
  mainGraph,
  makeNode,
  intAttr,
  attrInt,
  attrFloat,
  removeDeadConstants,
  topoSort,
  Scope,
} from '../onnx/graph.js'
import { dimsOf, floatData, makeTensor, elementCount } from '../onnx/tensor.js'
import { QuantContext, quantizeSymmetric, transpose2d } from './weights.js'
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
  ops: ReadonlySet<string> = new Set(['Conv', 'MatMul', 'Gemm']),
  keepFloat = 0,
  chains = true,
): StaticTargets {
  const graph = mainGraph(model)
  const scope = new Scope(graph, null)
  const nodes: NodeProto[] = []
  const tensors = new Set<string>()
  const graphOutputs = new Set(graph.output.map((o) => o.name ?? ''))
  let skip = keepFloat
  for (const node of graph.node) {
    if ((node.domain ?? '') !== '' || !ops.has(node.op_type ?? '')) continue
    const firstInput = node.input[0]
    if (!firstInput || scope.isConst(firstInput)) continue
    const w = scope.resolve(node.input[1] ?? '')
    if (!w || !floatData(w.tensor)) continue
    const wr = w.tensor.dims.length
    if (node.op_type === 'MatMul' && wr !== 2) continue
    if (node.op_type === 'Conv' && wr < 3) continue
    if (node.op_type === 'Gemm' && !plainGemm(node, wr)) continue
    if (skip > 0) {
      skip--
      continue
    }
    nodes.push(node)
    tensors.add(firstInput)
    if (!graphOutputs.has(node.output[0])) tensors.add(node.output[0])
  }
  const linked = chains ? chainTargets(graph, scope, nodes) : { chain: [], attention: [] }
  for (const node of [...linked.chain, ...linked.attention]) {
    if (linked.attention.includes(node)) node.input.slice(0, 2).forEach((x) => tensors.add(x))
    if (!graphOutputs.has(node.output[0])) tensors.add(node.output[0])
  }
  return { nodes, tensors: [...tensors], ...linked }
}

export interface StaticTargets {
  /** Ops with a constant weight, in QDQ form. */
  nodes: NodeProto[]
  /** Activations that need a calibration range. */
  tensors: string[]
  /** Add/Mul/Concat whose every input is already quantized: their output gets Q/DQ too, so ORT runs QLinearAdd/Mul/Concat instead of dequantizing around them. */
  chain: NodeProto[]
  /** MatMul of two activations (attention's Q·Kᵀ and scores·V): both inputs and the output in QDQ form. */
  attention: NodeProto[]
}

const CHAIN_OPS = new Set(['Add', 'Mul', 'Concat'])

/**
 * Quantized chains beyond weighted ops: a node whose inputs all carry Q/DQ already (what a target
 * reads or writes, or an earlier chain node's output) keeps the chain going (a residual Add of a
 * conv's input and a conv's output); an activation×activation MatMul is quantized on
 * both sides (ORT's QDQ selectors turn it into QLinearMatMul, the Softmax between stays float).
 */
function chainTargets(
  graph: { node: NodeProto[] },
  scope: Scope,
  targets: readonly NodeProto[],
): { chain: NodeProto[]; attention: NodeProto[] } {
  // Values that carry Q/DQ anyway: what a weighted target reads and what it writes.
  const quantized = new Set(targets.flatMap((n) => [n.input[0], n.output[0]]))
  const chain: NodeProto[] = []
  const attention: NodeProto[] = []
  for (const node of graph.node) {
    if ((node.domain ?? '') !== '') continue
    const op = node.op_type ?? ''
    const live = node.input.filter((x) => x && !scope.isConst(x))
    if (CHAIN_OPS.has(op) && live.length === node.input.length && live.length >= 2) {
      if (!live.every((x) => quantized.has(x))) continue
      chain.push(node)
      quantized.add(node.output[0])
    } else if (op === 'MatMul' && live.length === 2 && node.input.length === 2) {
      attention.push(node)
      quantized.add(node.output[0])
    }
  }
  return { chain, attention }
}

/** A Gemm the QDQ form keeps exact: Y = A·B(ᵀ) + C with a 2-D constant B, A not transposed, alpha = beta = 1. */
function plainGemm(node: NodeProto, weightRank: number): boolean {
  return (
    weightRank === 2 &&
    attrInt(node, 'transA', 0) === 0 &&
    attrFloat(node, 'alpha', 1) === 1 &&
    attrFloat(node, 'beta', 1) === 1
  )
}

/**
 * The weight's output-channel axis: Conv [M, C, kH, kW] → 0; MatMul [K, N] → 1;
 * Gemm → 0 when transB (B is [N, K]), else 1. Per-channel scales run along it, and so does the bias.
 */
function channelAxis(node: NodeProto): number {
  if (node.op_type === 'Conv') return 0
  if (node.op_type === 'Gemm') return attrInt(node, 'transB', 0) === 1 ? 0 : 1
  return 1
}

/**
 * Gemm → MatMul (+ Add for C) in the main graph, before the static pass: ORT 1.30 did not turn our
 * QDQ Gemm groups into QGemm (the head ran 1.5–1.6× fp32 between Q/DQ pairs), while QDQ MatMul
 * becomes QLinearMatMul. Exact: B is transposed offline when transB, C added after. Returns the count.
 */
export function gemmToMatMul(model: ModelProto, ctx: QuantContext): number {
  const graph = mainGraph(model)
  const scope = new Scope(graph, null)
  const out: NodeProto[] = []
  let rewritten = 0
  for (const node of graph.node) {
    const w = node.op_type === 'Gemm' && (node.domain ?? '') === '' ? scope.resolve(node.input[1] ?? '') : undefined
    const data = w && floatData(w.tensor)
    if (!w || !data || !plainGemm(node, w.tensor.dims.length) || scope.isConst(node.input[0])) {
      out.push(node)
      continue
    }
    const [r, c] = dimsOf(w.tensor)
    const transB = attrInt(node, 'transB', 0) === 1
    const name = ctx.names.fresh(`${node.input[1]}_kn`)
    graph.initializer.push(
      makeTensor(name, DataType.FLOAT, transB ? [c, r] : [r, c], transB ? transpose2d(data, r, c) : data),
    )
    const y = node.output[0]
    const bias = node.input[2]
    const mmOut = bias ? ctx.names.fresh(`${y}_matmul`) : y
    out.push(makeNode('MatMul', [node.input[0], name], [mmOut], node.name || ctx.names.fresh('MatMul')))
    if (bias) out.push(makeNode('Add', [mmOut, bias], [y], ctx.names.fresh(`${node.name ?? y}_bias`)))
    rewritten++
  }
  graph.node = out
  removeDeadConstants(model)
  return rewritten
}

/** u8 asymmetric parameters covering [min, max] (always including 0, as ONNX requires zero to be exact). */
function u8Params(r: Range): { scale: number; zeroPoint: number } {
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
  chains = true,
): QuantContext {
  const graph = mainGraph(model)
  const scope = new Scope(graph, null)
  const { nodes, chain, attention } = staticTargets(model, ops, keepFloat, chains)
  const targets = new Set(nodes)
  const outputsOfTargets = new Set(nodes.map((n) => n.output[0]))
  const fresh = (s: string) => ctx.names.fresh(s.replace(/[^A-Za-z0-9_./:-]/g, '_'))
  const params = new Map<string, { scale: number; zeroPoint: number; dq: string }>()
  const added: NodeProto[] = []

  /** One Q→DQ pair per activation tensor, shared by every consumer. */
  const qdq = (tensorName: string) => {
    let known = params.get(tensorName)
    if (known) return known
    const r = ranges.get(tensorName)
    if (!r) return undefined
    const { scale, zeroPoint } = u8Params(r)
    const [s, z, q, dq] = ['scale', 'zero_point', 'quantized', 'dequantized'].map((x) => fresh(`${tensorName}_${x}`))
    graph.initializer.push(makeTensor(s, DataType.FLOAT, [], Float32Array.of(scale)))
    graph.initializer.push(makeTensor(z, DataType.UINT8, [], Uint8Array.of(zeroPoint)))
    added.push(makeNode('QuantizeLinear', [tensorName, s, z], [q], fresh(`${tensorName}_QuantizeLinear`)))
    added.push(makeNode('DequantizeLinear', [q, s, z], [dq], fresh(`${tensorName}_DequantizeLinear`)))
    known = { scale, zeroPoint, dq }
    params.set(tensorName, known)
    return known
  }

  for (const node of nodes) {
    const inputQdq = qdq(node.input[0])
    if (!inputQdq) {
      ctx.plan.count(node.op_type ?? '', 'fp32 (no calibration range)')
      targets.delete(node)
      continue
    }
    // staticTargets took only nodes whose weight is a float constant.
    const ref = defined(scope.resolve(node.input[1]), `weight of ${node.name}`)
    const w = defined(floatData(ref.tensor), `float data of ${node.input[1]}`)
    const dims = dimsOf(ref.tensor)
    const channel = channelAxis(node)
    const axis = ctx.perChannel ? channel : null
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
    node.input[0] = inputQdq.dq
    node.input[1] = wdq
    // Conv/Gemm bias → int32 with scale x_scale * w_scale[c] (the only bias form ORT's QLinearConv
    // and QGemm fusions accept). MatMul has none; a Gemm C of another shape stays float.
    const bref = node.op_type !== 'MatMul' && node.input[2] ? scope.resolve(node.input[2]) : undefined
    const biasData = bref && floatData(bref.tensor)
    if (
      biasData &&
      dimsOf(bref.tensor).length === 1 &&
      biasData.length === elementCount(dims.slice(channel, channel + 1))
    ) {
      const bs = new Float32Array(biasData.length)
      const bq = new Int32Array(biasData.length)
      for (let c = 0; c < biasData.length; c++) {
        bs[c] = inputQdq.scale * scale[axis === null ? 0 : c]
        bq[c] = Math.max(-2147483647, Math.min(2147483647, Math.round(biasData[c] / bs[c])))
      }
      const [bqn, bsn, bdq] = ['bias_quantized', 'bias_scale', 'bias_dequantized'].map((s) => fresh(`${base}_${s}`))
      const perC = axis !== null
      graph.initializer.push(makeTensor(bqn, DataType.INT32, [biasData.length], bq))
      graph.initializer.push(
        makeTensor(bsn, DataType.FLOAT, perC ? [biasData.length] : [], perC ? bs : bs.subarray(0, 1)),
      )
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

  for (const node of attention) {
    const [a, b] = [qdq(node.input[0]), qdq(node.input[1])]
    if (!a || !b) continue
    node.input = [a.dq, b.dq]
    ctx.plan.count('MatMul', 'int8-static (activation × activation)')
    targets.add(node)
    outputsOfTargets.add(node.output[0])
  }
  for (const node of chain) {
    ctx.plan.count(node.op_type ?? '', 'int8-static (quantized chain)')
    targets.add(node)
    outputsOfTargets.add(node.output[0])
  }
  // Outputs of quantized nodes: every consumer reads the dequantized value, so the node's only reader is its Q.
  for (const t of outputsOfTargets) {
    const producer = graph.node.find((n) => n.output[0] === t)
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
