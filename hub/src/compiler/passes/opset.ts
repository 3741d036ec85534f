// Default-domain opset upgrade (7..12 → 13), for the passes that need opset 13:
// per-channel QuantizeLinear/DequantizeLinear (the `axis` attribute) and ORT's
// QDQ fusions. Only ops whose semantics we know to be unchanged, or that we
// rewrite here, are accepted; anything else makes the upgrade refuse with the
// op's name, and the caller falls back to per-tensor quantization.
import { opsetOf, setOpset, type GraphProto, type ModelProto, type NodeProto } from '../onnx/proto.js'
import {
  attr,
  attrInt,
  attrInts,
  attrFloat,
  attrString,
  intAttr,
  makeNode,
  removeAttr,
  stringAttr,
  walkGraphs,
  topoSort,
  Names,
} from '../onnx/graph.js'
import { f32, i64 } from '../onnx/tensor.js'

/** Ops whose opset-13 definition accepts the same graph as every version since 7 (for inference). */
const UNCHANGED = new Set([
  'Abs',
  'Acos',
  'Acosh',
  'Add',
  'And',
  'ArgMax',
  'ArgMin',
  'Asin',
  'Asinh',
  'Atan',
  'Atanh',
  'AveragePool',
  'BatchNormalization',
  'Cast',
  'Ceil',
  'Concat',
  'Constant',
  'ConstantOfShape',
  'Conv',
  'ConvTranspose',
  'Cos',
  'Cosh',
  'CumSum',
  'DepthToSpace',
  'Div',
  'Einsum',
  'Elu',
  'Equal',
  'Erf',
  'Exp',
  'Expand',
  'EyeLike',
  'Flatten',
  'Floor',
  'GRU',
  'Gather',
  'GatherElements',
  'GatherND',
  'Gemm',
  'GlobalAveragePool',
  'GlobalLpPool',
  'GlobalMaxPool',
  'Greater',
  'GreaterOrEqual',
  'HardSigmoid',
  'Identity',
  'If',
  'InstanceNormalization',
  'IsInf',
  'IsNaN',
  'LRN',
  'LSTM',
  'LeakyRelu',
  'Less',
  'LessOrEqual',
  'Log',
  'Loop',
  'LpNormalization',
  'MatMul',
  'MatMulInteger',
  'Max',
  'MaxPool',
  'MaxRoiPool',
  'Mean',
  'Min',
  'Mod',
  'Mul',
  'Neg',
  'NonMaxSuppression',
  'NonZero',
  'Not',
  'OneHot',
  'Or',
  'PRelu',
  'Pow',
  'QLinearConv',
  'QLinearMatMul',
  'RNN',
  'Range',
  'Reciprocal',
  'ReduceL1',
  'ReduceL2',
  'ReduceLogSum',
  'ReduceLogSumExp',
  'ReduceMax',
  'ReduceMean',
  'ReduceMin',
  'ReduceProd',
  'ReduceSumSquare',
  'Relu',
  'Reshape',
  'Round',
  'Scan',
  'Scatter',
  'ScatterElements',
  'ScatterND',
  'Selu',
  'Shape',
  'Shrink',
  'Sigmoid',
  'Sign',
  'Sin',
  'Sinh',
  'Size',
  'Softplus',
  'Softsign',
  'SpaceToDepth',
  'Sqrt',
  'Sub',
  'Sum',
  'Tan',
  'Tanh',
  'ThresholdedRelu',
  'Tile',
  'Transpose',
  'Where',
  'Xor',
  'Resize',
  'Pad',
  'Clip',
  'Slice',
  'TopK',
  'Dropout',
  'Softmax',
  'LogSoftmax',
  'Hardmax',
  'Squeeze',
  'Unsqueeze',
  'ReduceSum',
  'Split',
  'DequantizeLinear',
  'QuantizeLinear',
  'Upsample',
])

export class OpsetUpgradeError extends Error {}

/** Upgrades the default domain to `target` (13) in place. Throws OpsetUpgradeError naming the op it cannot convert. */
export function upgradeOpset(model: ModelProto, target = 13): void {
  const from = opsetOf(model) ?? 1
  if (from >= target) return
  if (from < 7) throw new OpsetUpgradeError(`opset ${from} is too old to upgrade`)
  const names = new Names(model)
  walkGraphs(model, ({ graph }) => {
    const out: NodeProto[] = []
    for (const node of graph.node) {
      if ((node.domain ?? '') !== '' && node.domain !== 'ai.onnx') {
        out.push(node)
        continue
      }
      if (!UNCHANGED.has(node.op_type ?? ''))
        throw new OpsetUpgradeError(`cannot upgrade ${node.op_type} from opset ${from}`)
      out.push(...convertNode(graph, node, from, names))
    }
    graph.node = out
    topoSort(graph)
  })
  setOpset(model, '', target)
  // IR 7 is the first to allow opset 13 tensors/attributes we emit; never lower it.
  if (Number(model.ir_version) < 7) model.ir_version = 7
}

/** The node being converted, and where its new constant inputs go. */
interface Conversion {
  graph: GraphProto
  names: Names
  node: NodeProto
  /** Prefix for the names of the constants and nodes this conversion adds. */
  base: string
}

/** Moves the ints attribute `attrName` into a new int64 constant; returns its name ('' when absent). */
function intsToInput(conversion: Conversion, attrName: string): string {
  const v = attrInts(conversion.node, attrName)
  removeAttr(conversion.node, attrName)
  return v === undefined ? '' : addConst(conversion, attrName, (n) => i64(n, [v.length], v))
}

/** Adds a constant named `${base}_${suffix}` (or a fresh variant) to the graph; returns its name. */
function addConst(conversion: Conversion, suffix: string, tensor: (name: string) => ReturnType<typeof i64>): string {
  const name = conversion.names.fresh(`${conversion.base}_${suffix}`)
  conversion.graph.initializer.push(tensor(name))
  return name
}

/** The node(s) that compute at opset 13 what `node` computed at opset `from`. */
function convertNode(graph: GraphProto, node: NodeProto, from: number, names: Names): NodeProto[] {
  const conversion: Conversion = { graph, names, node, base: node.name || node.output[0] }
  switch (node.op_type) {
    case 'Upsample':
      throw new OpsetUpgradeError('cannot upgrade Upsample (deprecated; re-export with Resize)')
    case 'Slice':
      if (from < 10) sliceAttrsToInputs(conversion)
      return [node]
    case 'TopK':
      if (from < 10) {
        const k = attrInt(node, 'k', 1)
        removeAttr(node, 'k')
        node.input = [node.input[0], addConst(conversion, 'k', (n) => i64(n, [1], [k]))]
      }
      return [node]
    case 'Clip':
      if (from < 11) clipAttrsToInputs(conversion)
      return [node]
    case 'Pad':
      if (from < 11) padAttrsToInputs(conversion)
      return [node]
    case 'Resize':
      if (from < 11) resize10To11(conversion)
      return [node]
    case 'Dropout':
      if (from < 12) {
        removeAttr(node, 'ratio')
        removeAttr(node, 'is_test')
      }
      return [node]
    case 'Squeeze':
    case 'Unsqueeze':
    case 'ReduceSum':
    case 'Split':
      attrToSecondInput(conversion, node.op_type === 'Split' ? 'split' : 'axes')
      return [node]
    case 'Softmax':
    case 'LogSoftmax':
    case 'Hardmax':
      return softmaxOnLastAxis(conversion)
    case 'BatchNormalization':
      removeAttr(node, 'spatial')
      removeAttr(node, 'is_test')
      removeAttr(node, 'consumed_inputs')
      return [node]
    default:
      return [node]
  }
}

/** Slice-10 takes starts, ends and axes as inputs. */
function sliceAttrsToInputs(conversion: Conversion): void {
  const { node } = conversion
  const starts = intsToInput(conversion, 'starts')
  const ends = intsToInput(conversion, 'ends')
  const axes = intsToInput(conversion, 'axes')
  node.input = axes ? [node.input[0], starts, ends, axes] : [node.input[0], starts, ends]
}

/** Clip-11 takes min and max as (optional) inputs. */
function clipAttrsToInputs(conversion: Conversion): void {
  const { node } = conversion
  const lo = attr(node, 'min') ? attrFloat(node, 'min', -3.4028234663852886e38) : undefined
  const hi = attr(node, 'max') ? attrFloat(node, 'max', 3.4028234663852886e38) : undefined
  removeAttr(node, 'min')
  removeAttr(node, 'max')
  // Clip-6 is float-only, so float scalars are the right type.
  const minName = lo === undefined ? '' : addConst(conversion, 'min', (n) => f32(n, [], [lo]))
  const maxName = hi === undefined ? '' : addConst(conversion, 'max', (n) => f32(n, [], [hi]))
  node.input = maxName ? [node.input[0], minName, maxName] : minName ? [node.input[0], minName] : [node.input[0]]
}

/** Pad-11 takes pads and the constant value as inputs. */
function padAttrsToInputs(conversion: Conversion): void {
  const { node } = conversion
  const pads = intsToInput(conversion, 'pads')
  const value = attrFloat(node, 'value', 0)
  removeAttr(node, 'value')
  node.input = [node.input[0], pads, addConst(conversion, 'value', (n) => f32(n, [], [value]))]
}

/** Resize-10 = asymmetric coordinates, nearest rounds down; Resize-11 takes (X, roi, scales). */
function resize10To11(conversion: Conversion): void {
  const { node } = conversion
  const mode = attrString(node, 'mode') ?? 'nearest'
  node.attribute.push(stringAttr('coordinate_transformation_mode', 'asymmetric'))
  if (mode === 'nearest') node.attribute.push(stringAttr('nearest_mode', 'floor'))
  node.input = [node.input[0], addConst(conversion, 'roi', (n) => f32(n, [0], [])), node.input[1]]
}

/** Squeeze/Unsqueeze/ReduceSum `axes` and Split `split` are a second input at 13. */
function attrToSecondInput(conversion: Conversion, attrName: string): void {
  const value = intsToInput(conversion, attrName)
  if (value) conversion.node.input = [conversion.node.input[0], value]
}

/** Before 13 these flatten to 2-D at `axis` (default 1); 13 works on one axis (default -1). */
function softmaxOnLastAxis(conversion: Conversion): NodeProto[] {
  const { node, names, base } = conversion
  const axis = attrInt(node, 'axis', 1)
  if (axis === -1) return [node]
  removeAttr(node, 'axis')
  const x = node.input[0]
  const nodeOutput = node.output[0]
  const [shape, flat, flatOut] = ['shape', 'flat', 'flat_out'].map((s) => names.fresh(`${base}_${s}`))
  node.input = [flat]
  node.output = [flatOut]
  node.attribute.push(intAttr('axis', -1))
  return [
    makeNode('Shape', [x], [shape], names.fresh(`${base}_Shape`)),
    makeNode('Flatten', [x], [flat], names.fresh(`${base}_Flatten`), [intAttr('axis', axis)]),
    node,
    makeNode('Reshape', [flatOut, shape], [nodeOutput], names.fresh(`${base}_Reshape`)),
  ]
}
