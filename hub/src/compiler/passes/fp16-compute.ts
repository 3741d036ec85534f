// fp16 compute [EF-5.9]: the model's float tensors become IEEE half and its ops run
// fp16 kernels, for profiles whose execution providers have them (GPU/NPU EPs;
// profile.fp16Compute). The model's inputs and outputs stay fp32 — a Cast at
// each edge — so agents and callers see the same I/O contract as the float
// build. Kept in fp32, with Casts around them:
//  - precision-sensitive ops (KEEP_FLOAT_OPS: exponentials, reductions, norms,
//    recurrences), whose fp16 results drift or overflow;
//  - shape math: nodes computing only from Shape/Size values (Resize scales,
//    Reshape targets) — a rounded shape is a wrong shape;
//  - ops outside the default domain; ops with subgraphs (If/Loop/Scan) themselves,
//    and whatever their bodies read from the enclosing graph. The bodies are
//    rewritten by the same rules, one graph at a time: a body's formal inputs
//    and outputs stay fp32 (its contract with the If/Loop/Scan that runs it),
//    with Casts at its edges, and the outer values it reads are cast inside it.
// Every attribute that carries a type or a value follows the node (Cast 'to',
// ConstantOfShape 'value', Random* 'dtype'), constants get fp16 copies clipped
// to the half range, and value_info says the new types.
import {
  AttrType,
  DataType,
  toNumber,
  type GraphProto,
  type ModelProto,
  type NodeProto,
  type TensorProto,
} from '../onnx/proto.js'
import {
  Names,
  intAttr,
  makeNode,
  removeDeadConstants,
  topoSort,
  walkGraphs,
  type GraphVisit,
  type Scope,
} from '../onnx/graph.js'
import { dimsOf, floatData, makeTensor, toFloat16Array } from '../onnx/tensor.js'
import { Plan } from './weights.js'

/** Ops that stay fp32 by default: fp16's 11-bit mantissa and 65504 ceiling break their sums, exponentials and state. */
const KEEP_FLOAT_OPS: ReadonlySet<string> = new Set([
  'Softmax',
  'LogSoftmax',
  'Exp',
  'Log',
  'Pow',
  'LayerNormalization',
  'InstanceNormalization',
  'GroupNormalization',
  'ReduceMean',
  'ReduceSum',
  'ReduceSumSquare',
  'ReduceL1',
  'ReduceL2',
  'ReduceLogSum',
  'ReduceLogSumExp',
  'ReduceProd',
  'CumSum',
  'Range',
  'LSTM',
  'GRU',
  'RNN',
  'QuantizeLinear',
  'DequantizeLinear',
  'DynamicQuantizeLinear',
  'NonMaxSuppression',
])

/** Inputs ONNX types as fp32 whatever the op computes in (Resize roi and scales, Upsample scales). */
const FLOAT32_INPUTS: Readonly<Record<string, readonly number[]>> = { Resize: [1, 2], Upsample: [1] }

/** Ops whose output type is an attribute, not an input's type. */
const DTYPE_ATTR_OPS = new Set(['RandomNormal', 'RandomUniform', 'RandomNormalLike', 'RandomUniformLike', 'EyeLike'])

const HALF_MAX = 65504
/** The smallest fp16 subnormal: a non-zero constant below it would round to 0 (an epsilon becoming 0 divides by 0). */
const HALF_TINY = 2 ** -24

/** Tensor name → ONNX elem type (DataType), for every value of one graph (a body's: with the outer values it reads). */
export type TensorTypes = ReadonlyMap<string, number>

export interface Fp16ComputeOptions {
  /** Op types left in fp32 (default KEEP_FLOAT_OPS). */
  keepFloat?: ReadonlySet<string>
}

export interface Fp16ComputeResult {
  plan: Plan
  /** Nodes computing in fp16, and nodes kept in fp32 that have float values. */
  halfNodes: number
  floatNodes: number
  /** Of halfNodes, those inside If/Loop/Scan bodies. */
  halfInSubgraphs: number
  /** Bodies left as they are because ORT could not type them alone (see inferGraphTypes). */
  untypedSubgraphs: number
  castsAdded: number
  /** Constant values clipped into the half range. */
  clipped: number
}

/**
 * Rewrites every graph of `model` to compute in fp16. `types`: per graph in walkGraphs order
 * (inferGraphTypes on the same model; null leaves that body as it is). A body keeps its contract
 * with the op that runs it: its formal inputs and outputs stay fp32 (Casts at its edges), and the
 * outer values it reads stay fp32 in the enclosing graph and are cast inside the body.
 */
export function fp16ComputePass(
  model: ModelProto,
  types: readonly (TensorTypes | null)[],
  opts: Fp16ComputeOptions = {},
): Fp16ComputeResult {
  const graphs: GraphVisit[] = []
  walkGraphs(model, (v) => graphs.push(v))
  const names = new Names(model)
  const result: Fp16ComputeResult = {
    plan: new Plan(),
    halfNodes: 0,
    floatNodes: 0,
    halfInSubgraphs: 0,
    untypedSubgraphs: 0,
    castsAdded: 0,
    clipped: 0,
  }
  graphs.forEach((visit, index) => {
    const graphTypes = types[index]
    if (!graphTypes) result.untypedSubgraphs++
    else rewriteGraph(visit, graphTypes, names, opts.keepFloat ?? KEEP_FLOAT_OPS, result)
  })
  removeDeadConstants(model)
  return result
}

/** One graph's rewrite; counts go into `result`. */
function rewriteGraph(
  { graph, scope, depth }: GraphVisit,
  types: TensorTypes,
  names: Names,
  keepFloat: ReadonlySet<string>,
  result: Fp16ComputeResult,
): void {
  const isFloat = (name: string) => types.get(name) === DataType.FLOAT
  const half = decideHalfNodes(graph, scope, isFloat, keepFloat)
  const rewriter = new HalfRewriter(names, graph, scope, isFloat)
  for (const node of [...graph.node]) {
    if (node.op_type === 'Constant' && (node.domain ?? '') === '') continue
    if (half.has(node)) {
      rewriter.toHalfNode(node)
      result.plan.count(node.op_type ?? '', 'fp16 compute')
    } else {
      rewriter.toFloatNode(node)
      if (node.input.some(isFloat) || node.output.some(isFloat)) {
        result.floatNodes++
        result.plan.count(node.op_type ?? '', 'fp32 (keep-float)')
      }
    }
  }
  rewriter.finishOutputs()
  rewriter.retypeValueInfo()
  graph.node.push(...rewriter.added)
  topoSort(graph)
  result.halfNodes += half.size
  if (depth > 0) result.halfInSubgraphs += half.size
  result.castsAdded += rewriter.casts
  result.clipped += rewriter.clipped
}

/** The nodes that compute in fp16 (see the module header for what stays fp32). */
function decideHalfNodes(
  graph: GraphProto,
  scope: Scope,
  isFloat: (name: string) => boolean,
  keepFloat: ReadonlySet<string>,
): Set<NodeProto> {
  const shapeMath = shapeMathNodes(graph, scope)
  const outerReads = subgraphReads(graph)
  const half = new Set<NodeProto>()
  for (const node of graph.node) {
    const op = node.op_type ?? ''
    if ((node.domain ?? '') !== '' || op === 'Constant' || keepFloat.has(op)) continue
    if (node.attribute.some((a) => a.g ?? a.graphs?.length) || shapeMath.has(node)) continue
    if (node.output.some((o) => outerReads.has(o))) continue
    // A float output is what makes a node compute in fp16: Shape, Size or a comparison reading a
    // float tensor would only gain a Cast in front.
    if (node.output.some(isFloat)) half.add(node)
  }
  return half
}

/**
 * Nodes that only compute shapes: every non-constant input comes from Shape/Size or from another
 * such node (Shape → Cast → Mul → Cast → Resize sizes). Their float values are dimensions.
 */
function shapeMathNodes(graph: GraphProto, scope: Scope): Set<NodeProto> {
  const shapeValues = new Set<string>()
  const nodes = new Set<NodeProto>()
  for (const node of graph.node) {
    const op = node.op_type ?? ''
    if (op === 'Shape' || op === 'Size') {
      node.output.forEach((o) => shapeValues.add(o))
      continue
    }
    const live = node.input.filter((x) => x && !scope.isConst(x))
    // ConstantOfShape makes data of a computed shape: its values are not dimensions. An If/Loop/Scan
    // output comes from its body, whatever its condition was computed from (Silero VAD: If on a
    // Shape-derived Equal returns the padded audio).
    const bodied = node.attribute.some((a) => a.g ?? a.graphs?.length)
    if (op !== 'ConstantOfShape' && !bodied && live.length && live.every((x) => shapeValues.has(x))) {
      nodes.add(node)
      node.output.forEach((o) => shapeValues.add(o))
    }
  }
  return nodes
}

/** Main-graph values that some subgraph body reads from its enclosing scope. */
function subgraphReads(graph: GraphProto): Set<string> {
  const reads = new Set<string>()
  const collect = (g: GraphProto) => {
    for (const n of g.node) {
      n.input.forEach((x) => reads.add(x))
      for (const a of n.attribute) [a.g, ...(a.graphs ?? [])].forEach((s) => s && collect(s))
    }
    g.output.forEach((o) => reads.add(o.name ?? ''))
  }
  for (const n of graph.node) for (const a of n.attribute) [a.g, ...(a.graphs ?? [])].forEach((s) => s && collect(s))
  return reads
}

/** fp16 copy of a float constant, clipped into the half range (non-zeros stay non-zero); counts the values clipped at ±65504. */
function halfConstant(name: string, source: TensorProto): { tensor: TensorProto; clipped: number } {
  const values = floatData(source) ?? new Float32Array(0)
  let clipped = 0
  for (let i = 0; i < values.length; i++) {
    const a = Math.abs(values[i])
    if (a > HALF_MAX || (a > 0 && a < HALF_TINY)) {
      values[i] = Math.sign(values[i]) * (a > HALF_MAX ? HALF_MAX : HALF_TINY)
      if (a > HALF_MAX) clipped++
    }
  }
  return { tensor: makeTensor(name, DataType.FLOAT16, dimsOf(source), toFloat16Array(values)), clipped }
}

/** Rewires inputs and outputs node by node; Casts and fp16 constants are made once per value. */
class HalfRewriter {
  readonly added: NodeProto[] = []
  casts = 0
  clipped = 0
  /** Values that are fp16 in the rewritten graph. */
  private readonly halfValues = new Set<string>()
  private readonly halfOf = new Map<string, string>()
  private readonly floatOf = new Map<string, string>()
  private readonly graphOutputs: Set<string>

  constructor(
    private readonly names: Names,
    private readonly graph: GraphProto,
    private readonly scope: Scope,
    private readonly isFloat: (name: string) => boolean,
  ) {
    this.graphOutputs = new Set(graph.output.map((o) => o.name ?? ''))
  }

  toHalfNode(node: NodeProto): void {
    const fixed = FLOAT32_INPUTS[node.op_type ?? ''] ?? []
    node.input = node.input.map((x, i) => {
      if (!x) return x
      if (fixed.includes(i)) return this.asFloat(x)
      return this.isFloat(x) || this.halfValues.has(x) ? this.asHalf(x) : x
    })
    retypeAttributes(node)
    for (const o of node.output) if (o && this.isFloat(o)) this.halfValues.add(o)
  }

  toFloatNode(node: NodeProto): void {
    node.input = node.input.map((x) => (x ? this.asFloat(x) : x))
  }

  /** The fp16 form of a float value: itself, an fp16 copy of a constant, or a Cast. */
  private asHalf(name: string): string {
    if (this.halfValues.has(name)) return name
    const known = this.halfOf.get(name)
    if (known) return known
    const fresh = this.names.fresh(`${name}_fp16`)
    const ref = this.scope.resolve(name)
    if (ref && floatData(ref.tensor)) {
      const { tensor, clipped } = halfConstant(fresh, ref.tensor)
      this.graph.initializer.push(tensor)
      this.clipped += clipped
    } else this.cast(name, fresh, DataType.FLOAT16)
    this.halfOf.set(name, fresh)
    return fresh
  }

  private asFloat(name: string): string {
    if (!this.halfValues.has(name)) return name
    let f = this.floatOf.get(name)
    if (!f) {
      f = this.names.fresh(`${name}_fp32`)
      this.cast(name, f, DataType.FLOAT)
      this.floatOf.set(name, f)
    }
    return f
  }

  private cast(from: string, to: string, type: number): void {
    this.added.push(makeNode('Cast', [from], [to], this.names.fresh(`${to}_Cast`), [intAttr('to', type)]))
    this.casts++
  }

  /** Graph outputs computed in fp16: the producer writes `<name>_fp16`, a Cast writes `<name>` in fp32. */
  finishOutputs(): void {
    for (const out of this.graphOutputs) {
      if (!this.halfValues.has(out)) continue
      const renamed = this.names.fresh(`${out}_fp16`)
      for (const n of [...this.graph.node, ...this.added]) {
        n.output = n.output.map((x) => (x === out ? renamed : x))
        n.input = n.input.map((x) => (x === out ? renamed : x))
      }
      this.halfValues.delete(out)
      this.halfValues.add(renamed)
      this.cast(renamed, out, DataType.FLOAT)
    }
  }

  retypeValueInfo(): void {
    for (const vi of this.graph.value_info) {
      const tt = vi.type?.tensor_type
      if (tt && this.halfValues.has(vi.name ?? '')) tt.elem_type = DataType.FLOAT16
    }
  }
}

/** A node now computing in fp16: attributes that name float32 as a type or hold a float32 value follow. */
function retypeAttributes(node: NodeProto): void {
  const op = node.op_type ?? ''
  for (const a of node.attribute) {
    const toFloat = toNumber(a.i, -1) === DataType.FLOAT
    if (op === 'Cast' && a.name === 'to' && toFloat) a.i = DataType.FLOAT16
    if (DTYPE_ATTR_OPS.has(op) && a.name === 'dtype' && toFloat) a.i = DataType.FLOAT16
    if (op === 'ConstantOfShape' && a.name === 'value' && a.t?.data_type === DataType.FLOAT)
      a.t = halfConstant(a.t.name ?? '', a.t).tensor
  }
  // ConstantOfShape without 'value' makes fp32 zeros; say fp16 zeros explicitly.
  if (op === 'ConstantOfShape' && !node.attribute.some((a) => a.name === 'value'))
    node.attribute.push({
      name: 'value',
      type: AttrType.TENSOR,
      t: makeTensor('', DataType.FLOAT16, [1], Uint16Array.of(0)),
    })
  // Random* without dtype default to fp32.
  if (DTYPE_ATTR_OPS.has(op) && !op.endsWith('Like') && !node.attribute.some((a) => a.name === 'dtype'))
    node.attribute.push(intAttr('dtype', DataType.FLOAT16))
}
