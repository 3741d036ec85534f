// int8-static in QDQ form: Conv, MatMul and Gemm (constant weight) in the main
// graph get QuantizeLinear → DequantizeLinear on their activations (u8, ranges
// from calibration), DequantizeLinear on s8 per-channel weights and an int32
// bias with scale = x_scale * w_scale — exactly the node groups ORT's QDQ
// fusion turns into QLinearConv / QLinearMatMul / QGemm at load time. Weights elsewhere
// (subgraphs, other ops) get weight-only int8.
import { defined } from '@edgefleet/shared'
import { DataType, setOpset, type GraphProto, type ModelProto, type NodeProto } from '../onnx/proto.js'
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
  const writer = new QdqWriter(graph, ctx, ranges)
  const targets = new Set<NodeProto>()
  const outputsOfTargets = new Set(nodes.map((n) => n.output[0]))
  for (const node of nodes) if (quantizeWeighted(node, scope, writer, ctx)) targets.add(node)
  for (const node of attention) {
    const [a, b] = [writer.activation(node.input[0]), writer.activation(node.input[1])]
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
  dequantizeOutputs(graph, writer, targets, outputsOfTargets)
  graph.node.push(...writer.added)
  topoSort(graph)
  setOpset(model, '', Math.max(10, Number(model.opset_import.find((o) => (o.domain ?? '') === '')?.version ?? 10)))
  // What the static pass did not take: Gemm/MatMul elsewhere go dynamic (faster than weight-only),
  // the rest (subgraph weights, LSTM, ConvTranspose...) weight-only.
  dynamicPass(model, ctx, { weightOnlyRest: false })
  weightOnlyPass(model, ctx, { skipNodes: targets })
  removeDeadConstants(model)
  return ctx
}

/**
 * A Conv/MatMul/Gemm with a constant weight in QDQ form: its input through the activation's Q/DQ, an s8
 * weight (per channel at opset 13) and an int32 bias. False when the input has no calibration range
 * (the node stays fp32).
 */
function quantizeWeighted(node: NodeProto, scope: Scope, writer: QdqWriter, ctx: QuantContext): boolean {
  const inputQdq = writer.activation(node.input[0])
  if (!inputQdq) {
    ctx.plan.count(node.op_type ?? '', 'fp32 (no calibration range)')
    return false
  }
  // staticTargets took only nodes whose weight is a float constant.
  const ref = defined(scope.resolve(node.input[1]), `weight of ${node.name}`)
  const w = defined(floatData(ref.tensor), `float data of ${node.input[1]}`)
  const dims = dimsOf(ref.tensor)
  const channel = channelAxis(node)
  const axis = ctx.perChannel ? channel : null
  const { q, scale } = quantizeSymmetric(w, dims, axis)
  const base = node.name || node.output[0]
  const weightScale = { dims: axis === null ? [] : [scale.length], values: scale }
  const wdq = writer.dequantized(base, 'weight', { type: DataType.INT8, dims, values: q }, weightScale, axis)
  ctx.plan.noteWeight(ref, 0)
  node.input[0] = inputQdq.dq
  node.input[1] = wdq
  const biasData = floatBias(node, scope, elementCount(dims.slice(channel, channel + 1)))
  if (biasData) {
    const biasScale = (c: number) => inputQdq.scale * scale[axis === null ? 0 : c]
    node.input[2] = quantizeBias(writer, base, biasData, biasScale, axis !== null)
  }
  ctx.plan.count(node.op_type ?? '', 'int8-static')
  return true
}

/**
 * The bias the QDQ form takes: a float constant with one value per output channel. MatMul has none;
 * a Gemm C of another shape stays float.
 */
function floatBias(node: NodeProto, scope: Scope, channels: number): Float32Array | undefined {
  const bref = node.op_type !== 'MatMul' && node.input[2] ? scope.resolve(node.input[2]) : undefined
  const biasData = bref && floatData(bref.tensor)
  if (!biasData || dimsOf(bref.tensor).length !== 1 || biasData.length !== channels) return undefined
  return biasData
}

/**
 * Conv/Gemm bias → int32 with scale x_scale * w_scale[c] (the only bias form ORT's QLinearConv
 * and QGemm fusions accept); returns the dequantized name.
 */
function quantizeBias(
  writer: QdqWriter,
  base: string,
  biasData: Float32Array,
  scaleOf: (channel: number) => number,
  perChannel: boolean,
): string {
  const bs = new Float32Array(biasData.length)
  const bq = new Int32Array(biasData.length)
  for (let c = 0; c < biasData.length; c++) {
    bs[c] = scaleOf(c)
    bq[c] = Math.max(-2147483647, Math.min(2147483647, Math.round(biasData[c] / bs[c])))
  }
  return writer.dequantized(
    base,
    'bias',
    { type: DataType.INT32, dims: [biasData.length], values: bq },
    { dims: perChannel ? [biasData.length] : [], values: perChannel ? bs : bs.subarray(0, 1) },
    perChannel ? 0 : null,
  )
}

/** Outputs of quantized nodes: every consumer reads the dequantized value, so the node's only reader is its Q. */
function dequantizeOutputs(
  graph: GraphProto,
  writer: QdqWriter,
  targets: ReadonlySet<NodeProto>,
  outputsOfTargets: ReadonlySet<string>,
): void {
  for (const t of outputsOfTargets) {
    const producer = graph.node.find((n) => n.output[0] === t)
    if (!producer || !targets.has(producer)) continue
    const p = writer.activation(t)
    if (!p) continue
    // graph.node does not hold the new Q/DQ nodes yet, so the Q reading t is untouched.
    for (const n of graph.node) if (n.input.includes(t)) n.input = n.input.map((x) => (x === t ? p.dq : x))
  }
}

/** u8 parameters of an activation and the name of its dequantized value. */
interface ActivationQdq {
  scale: number
  zeroPoint: number
  dq: string
}

/**
 * Writes the QDQ form into the main graph: initializers at once, the new Q/DQ nodes into `added`,
 * which the pass appends to the graph at the end (so no loop over graph.node meets them).
 */
class QdqWriter {
  readonly added: NodeProto[] = []
  private readonly activations = new Map<string, ActivationQdq>()

  constructor(
    private readonly graph: GraphProto,
    private readonly ctx: QuantContext,
    private readonly ranges: ReadonlyMap<string, Range>,
  ) {}

  fresh(s: string): string {
    return this.ctx.names.fresh(s.replace(/[^A-Za-z0-9_./:-]/g, '_'))
  }

  /** One Q→DQ pair per activation tensor, shared by every consumer; undefined without a calibration range. */
  activation(tensorName: string): ActivationQdq | undefined {
    let known = this.activations.get(tensorName)
    if (known) return known
    const r = this.ranges.get(tensorName)
    if (!r) return undefined
    const { scale, zeroPoint } = u8Params(r)
    const [s, z, q, dq] = ['scale', 'zero_point', 'quantized', 'dequantized'].map((x) =>
      this.fresh(`${tensorName}_${x}`),
    )
    this.graph.initializer.push(makeTensor(s, DataType.FLOAT, [], Float32Array.of(scale)))
    this.graph.initializer.push(makeTensor(z, DataType.UINT8, [], Uint8Array.of(zeroPoint)))
    this.added.push(makeNode('QuantizeLinear', [tensorName, s, z], [q], this.fresh(`${tensorName}_QuantizeLinear`)))
    this.added.push(makeNode('DequantizeLinear', [q, s, z], [dq], this.fresh(`${tensorName}_DequantizeLinear`)))
    known = { scale, zeroPoint, dq }
    this.activations.set(tensorName, known)
    return known
  }

  /**
   * Quantized data, its scale (one, or one per channel along `axis`) and a DequantizeLinear reading them;
   * returns the dequantized name. `what` is 'weight' or 'bias', for the names.
   */
  dequantized(
    base: string,
    what: string,
    data: { type: number; dims: number[]; values: Int8Array | Int32Array },
    scale: { dims: number[]; values: Float32Array },
    axis: number | null,
  ): string {
    const [qn, sn, dqn] = ['quantized', 'scale', 'dequantized'].map((s) => this.fresh(`${base}_${what}_${s}`))
    this.graph.initializer.push(makeTensor(qn, data.type, data.dims, data.values))
    this.graph.initializer.push(makeTensor(sn, DataType.FLOAT, scale.dims, scale.values))
    // No zero-point tensors for the symmetric weight and the int32 bias (optional inputs, 0 when absent):
    // ORT still fuses the group into QLinearConv, and a per-channel int32 zero point costs 4 bytes a channel.
    this.added.push(
      makeNode(
        'DequantizeLinear',
        [qn, sn],
        [dqn],
        this.fresh(`${base}_${what}_DequantizeLinear`),
        axis === null ? [] : [intAttr('axis', axis)],
      ),
    )
    return dqn
  }
}
