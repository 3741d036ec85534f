// Weight quantization primitives and the bookkeeping every int8 pass shares:
// finding float weights wherever they live (initializers, Constant nodes,
// enclosing scopes of If/Loop/Scan bodies), symmetric int8 per-channel or
// per-tensor quantization, and DequantizeLinear insertion next to the consumer.
import { DataType, type GraphProto, type ModelProto, type NodeProto } from '../onnx/proto.js'
import { makeNode, intAttr, Names, type ConstRef, type Scope } from '../onnx/graph.js'
import { dimsOf, floatData, makeTensor, elementCount } from '../onnx/tensor.js'

export interface SymmetricQuant {
  q: Int8Array
  /** One scale per channel along `axis`, or a single scale. */
  scale: Float32Array
}

/** Smallest usable scale: a channel of zeros still needs a positive scale. */
const MIN_SCALE = 1e-12

/** Symmetric int8 in [-127, 127] (zero point 0), per channel along `axis` or per tensor when axis is null. */
export function quantizeSymmetric(
  weightData: Float32Array,
  dims: readonly number[],
  axis: number | null,
  qmax = 127,
): SymmetricQuant {
  const channels = axis === null ? 1 : dims[axis]
  const inner = axis === null ? weightData.length : elementCount(dims.slice(axis + 1))
  const maxAbs = new Float32Array(channels)
  for (let i = 0; i < weightData.length; i++) {
    const c = axis === null ? 0 : Math.floor(i / inner) % channels
    const a = Math.abs(weightData[i])
    if (a > maxAbs[c]) maxAbs[c] = a
  }
  const scale = new Float32Array(channels)
  for (let c = 0; c < channels; c++) scale[c] = Math.max(maxAbs[c] / qmax, MIN_SCALE)
  const q = new Int8Array(weightData.length)
  for (let i = 0; i < weightData.length; i++) {
    const c = axis === null ? 0 : Math.floor(i / inner) % channels
    const v = Math.round(weightData[i] / scale[c])
    q[i] = v > qmax ? qmax : v < -qmax ? -qmax : v
  }
  return { q, scale }
}

export function transpose2d(w: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(w.length)
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = w[r * cols + c]
  return out
}

/** Counts what a pass did, per op type, for the report's precision plan. */
export class Plan {
  readonly byOp: Record<string, Record<string, number>> = {}
  /** Weights quantized, by where they were found (the tests count these). */
  readonly weights = { initializer: 0, constantNode: 0, subgraph: 0 }
  count(opType: string, mode: string): void {
    const row = (this.byOp[opType] ??= {})
    row[mode] = (row[mode] ?? 0) + 1
  }
  noteWeight(ref: ConstRef, consumerDepth: number): void {
    if (ref.kind === 'constant-node') this.weights.constantNode++
    else this.weights.initializer++
    if (consumerDepth > 0) this.weights.subgraph++
  }
}

/** Per-pass state: fresh names, the plan, and DQ outputs already made for a weight in a graph. */
export class QuantContext {
  readonly names: Names
  readonly plan = new Plan()
  private readonly dqCache = new Map<GraphProto, Map<string, string>>()
  constructor(
    readonly model: ModelProto,
    /** Default-domain opset of the model being rewritten: DequantizeLinear's axis needs ≥ 13. */
    readonly opset: number,
  ) {
    this.names = new Names(model)
  }

  get perChannel(): boolean {
    return this.opset >= 13
  }

  /**
   * Replaces the float weight `name` read by `node` (in `graph`) with an int8
   * initializer + scale + DequantizeLinear placed in that same graph.
   * Returns false (and changes nothing) when the weight is not a plain float constant.
   */
  dequantizedWeight(
    graph: GraphProto,
    scope: Scope,
    depth: number,
    node: NodeProto,
    inputIndex: number,
    axis: number | null,
  ): boolean {
    const name = node.input[inputIndex]
    const ref = scope.resolve(name)
    if (!ref) return false
    const weightData = floatData(ref.tensor)
    if (!weightData) return false
    const dims = dimsOf(ref.tensor)
    const ax = this.perChannel && axis !== null && axis < dims.length && dims.length > 1 ? axis : null
    const key = `${name}@${ax}`
    let cache = this.dqCache.get(graph)
    if (!cache) this.dqCache.set(graph, (cache = new Map<string, string>()))
    let out = cache.get(key)
    if (!out) {
      const { q: quantizedValues, scale } = quantizeSymmetric(weightData, dims, ax)
      // Compact on purpose (this is the size-minimising path): short suffixes on the weight's own
      // name, no zero-point tensor (optional in DequantizeLinear; absent means 0, which symmetric
      // int8 is) and no node name. On PP-OCR cls these alone are ~5% of the int8 file.
      const base = name.replace(/^ConvBnFusion_(W|BN_B)_/, '').replace(/[^A-Za-z0-9_./:-]/g, '_')
      const qName = this.names.fresh(`${base}_q`)
      const sName = this.names.fresh(`${base}_s`)
      out = this.names.fresh(`${base}_dq`)
      const sDims = ax === null ? [] : [dims[ax]]
      graph.initializer.push(makeTensor(qName, DataType.INT8, dims, quantizedValues))
      graph.initializer.push(makeTensor(sName, DataType.FLOAT, sDims, scale))
      graph.node.unshift(
        makeNode('DequantizeLinear', [qName, sName], [out], '', ax === null ? [] : [intAttr('axis', ax)]),
      )
      cache.set(key, out)
      this.plan.noteWeight(ref, depth)
    }
    node.input[inputIndex] = out
    return true
  }
}

/** Float weight inputs worth storing as int8, per op: [input index, channel axis or null]. */
export function weightInputs(node: NodeProto, rankOf: (name: string) => number | undefined): [number, number | null][] {
  if ((node.domain ?? '') !== '') return []
  switch (node.op_type) {
    case 'Conv':
      return [[1, 0]]
    case 'ConvTranspose': {
      const group = node.attribute.find((a) => a.name === 'group')
      return [[1, group && Number(group.i) > 1 ? null : 1]]
    }
    case 'MatMul': {
      const r = rankOf(node.input[1])
      return [[1, r === 2 ? 1 : null]]
    }
    case 'Gemm': {
      const tb = node.attribute.find((a) => a.name === 'transB')
      return [[1, tb && Number(tb.i) === 1 ? 0 : 1]]
    }
    case 'LSTM':
    case 'GRU':
    case 'RNN':
      return [
        [1, 1],
        [2, 1],
      ]
    case 'Gather':
      return [[0, 0]]
    default:
      return []
  }
}
