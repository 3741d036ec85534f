// Graph fusions ONNX Runtime does not do itself. Paddle exports hard-swish as
// four elementwise ops, x · Clip(x + 3, 0, 6) / 6; ORT (1.30, any level) leaves
// them as four kernels, each a full pass over the activation. On PP-OCRv4 rec
// they are ~25% of the run time, and once the convolutions are int8 they are
// the largest remaining cost. HardSwish (opset 14, ORT CPU kernel) computes
// x · max(0, min(1, x/6 + 1/2)), the same function, in one pass.
import { DataType, setOpset, type GraphProto, type ModelProto, type NodeProto } from '../onnx/proto.js'
import { mainGraph, makeNode, topoSort, removeDeadConstants, Scope } from '../onnx/graph.js'
import { floatData, makeTensor } from '../onnx/tensor.js'

/** Default-domain opset from which HardSwish exists. */
export const HARDSWISH_OPSET = 14

function scalarOf(scope: Scope, name: string | undefined): number | undefined {
  if (!name) return undefined
  const ref = scope.resolve(name)
  const v = ref && floatData(ref.tensor)
  return v?.length === 1 ? v[0] : undefined
}

const near = (a: number | undefined, b: number) => a !== undefined && Math.abs(a - b) <= 1e-6 * Math.max(1, Math.abs(b))

/** Who reads each value of a graph, as indexed when built: the fusions match chains of single readers. */
class Readers {
  private readonly consumers = new Map<string, NodeProto[]>()
  private readonly outputs: Set<string>

  constructor(graph: GraphProto) {
    for (const n of graph.node) for (const i of n.input) this.consumers.set(i, [...(this.consumers.get(i) ?? []), n])
    this.outputs = new Set(graph.output.map((o) => o.name ?? ''))
  }

  /** How many nodes read `t`. */
  count(t: string): number {
    return this.consumers.get(t)?.length ?? 0
  }

  /** The one node reading `t`, when it is a default-domain `op` and `t` is not a graph output. */
  only(t: string, op: string): NodeProto | undefined {
    const c = this.consumers.get(t)
    return c?.length === 1 && !this.outputs.has(t) && c[0].op_type === op && (c[0].domain ?? '') === ''
      ? c[0]
      : undefined
  }
}

/** The other input of a binary node, when one input is `t`. */
const otherInput = (n: NodeProto, t: string) =>
  n.input[0] === t ? n.input[1] : n.input[1] === t ? n.input[0] : undefined

/**
 * Replaces x·Clip(x+3,0,6)/6 (also written x·(Clip(x+3,0,6)/6), or with ·(1/6)) in the main graph by
 * HardSwish(x). Returns how many were fused; 0 leaves the model untouched. Raises the default-domain
 * opset to 14 when it fuses anything (the caller checks the profile allows it; 13 → 14 changes no
 * op a model at 13 can already hold, except adding HardSwish and optional attributes with old defaults).
 */
function fuseHardSwish(model: ModelProto): number {
  const graph: GraphProto = mainGraph(model)
  // Opset 14 gave BatchNormalization's extra (training) outputs a new meaning: leave such models alone.
  if (graph.node.some((n) => n.op_type === 'BatchNormalization' && n.output.filter(Boolean).length > 1)) return 0
  const scope = new Scope(graph, null)
  const readers = new Readers(graph)
  const dead = new Set<NodeProto>()
  const added: NodeProto[] = []
  for (const add of graph.node) {
    if (dead.has(add)) continue
    const found = matchHardSwish(scope, readers, add)
    if (!found) continue
    for (const n of found.nodes) dead.add(n)
    added.push(makeNode('HardSwish', [found.x], [found.y], ''))
  }
  if (!added.length) return 0
  graph.node = [...graph.node.filter((n) => !dead.has(n)), ...added]
  topoSort(graph)
  removeDeadConstants(model)
  const v = Number(model.opset_import.find((o) => (o.domain ?? '') === '')?.version ?? 0)
  if (v < HARDSWISH_OPSET) setOpset(model, '', HARDSWISH_OPSET)
  return added.length
}

/** A decomposed hard-swish starting at `add`: its input x, the nodes it replaces and the value it writes. */
function matchHardSwish(
  scope: Scope,
  readers: Readers,
  add: NodeProto,
): { x: string; nodes: NodeProto[]; y: string } | undefined {
  if (add.op_type !== 'Add' || (add.domain ?? '') !== '') return undefined
  const gated = plusThreeInput(scope, add)
  if (!gated || scope.isConst(gated)) return undefined
  const clip = readers.only(add.output[0], 'Clip')
  if (
    clip?.input[0] !== add.output[0] ||
    !near(scalarOf(scope, clip.input[1]), 0) ||
    !near(scalarOf(scope, clip.input[2]), 6)
  )
    return undefined
  const chain = timesInputOverSix(scope, readers, clip.output[0], gated)
  if (!chain) return undefined
  return { x: gated, nodes: [add, clip, ...chain], y: chain[chain.length - 1].output[0] }
}

/** x, when `add` is Add(x, 3) or Add(3, x). */
function plusThreeInput(scope: Scope, add: NodeProto): string | undefined {
  if (near(scalarOf(scope, add.input[1]), 3)) return add.input[0]
  if (near(scalarOf(scope, add.input[0]), 3)) return add.input[1]
  return undefined
}

/** The nodes that make x·c/6 or x·(c/6) of the clipped value c, in graph order. */
function timesInputOverSix(scope: Scope, readers: Readers, clipped: string, gated: string): NodeProto[] | undefined {
  // x · c / 6
  const mul = readers.only(clipped, 'Mul')
  if (mul && otherInput(mul, clipped) === gated) {
    const s = sixthOf(scope, readers, mul.output[0])
    if (s) return [mul, s]
  }
  // x · (c / 6)
  const s = sixthOf(scope, readers, clipped)
  const m2 = s && readers.only(s.output[0], 'Mul')
  if (s && m2 && otherInput(m2, s.output[0]) === gated) return [s, m2]
  return undefined
}

/** `t` scaled by 1/6: Div(t, 6) or Mul(t, 1/6); returns that node. */
function sixthOf(scope: Scope, readers: Readers, t: string): NodeProto | undefined {
  const d = readers.only(t, 'Div')
  if (d?.input[0] === t && near(scalarOf(scope, d.input[1]), 6)) return d
  const m = readers.only(t, 'Mul')
  if (m && near(scalarOf(scope, otherInput(m, t)), 1 / 6)) return m
  return undefined
}

/** A constant that is one value, or one value per channel of an NCHW tensor with `channels` channels. */
function perChannelOf(scope: Scope, name: string | undefined, channels: number): Float32Array | undefined {
  if (!name) return undefined
  const ref = scope.resolve(name)
  const v = ref && floatData(ref.tensor)
  if (!v) return undefined
  const dims = ref.tensor.dims.map(Number)
  if (v.length === 1) return new Float32Array(channels).fill(v[0])
  // [C,1,1] or [1,C,1,1]
  const lead = dims.length === 4 ? dims[0] === 1 && dims[1] === channels : dims.length === 3 && dims[0] === channels
  if (lead && v.length === channels && dims.slice(-2).every((d) => d === 1)) return v
  return undefined
}

/**
 * Folds scalar or per-channel affine ops next to a Conv into the Conv's weights and bias, exactly
 * (up to float rounding). PP-OCRv4 rec (PPLCNetV3) follows activations and convolutions with a
 * "learnable affine block", y = s·x + b, two more full passes over the activation that ORT does not
 * fold: 53 Mul + 53 Add, ~20% of the float run and ~35% of the int8 run.
 *  - after: Conv → Mul(s) [→ Add(b)]  ⇒  Conv with W·s, bias·s + b
 *  - before: Mul(s) [→ Add(b)] → Conv (s a scalar): W·s; b folds into the bias (b·ΣW) only when the
 *    Conv has no padding (padding would see 0, not b); otherwise Add(b/s) stays in front.
 * Only Convs whose weight is a constant read by that Conv alone, and intermediates with a single reader.
 */
function foldAffineIntoConv(model: ModelProto): number {
  const graph: GraphProto = mainGraph(model)
  const writer = new FoldedWeights(graph)
  // The second rule reads weights the first one may have replaced.
  const folded = foldAffineAfterConv(graph, writer) + foldScaleBeforeConv(graph, writer)
  if (!folded) return 0
  topoSort(graph)
  removeDeadConstants(model)
  return folded
}

/** A Conv's weight [M, C/g, k...] and bias [M] (zeros when it has none), as read from its constants. */
interface ConvParams {
  w: Float32Array
  dims: number[]
  /** Output channels. */
  m: number
  bias: Float32Array
  /** Weights per output channel. */
  inner: number
}

/** The Conv's weight and bias, when it is a default-domain Conv that alone reads a constant float weight. */
function convParams(scope: Scope, readers: Readers, conv: NodeProto): ConvParams | undefined {
  if (conv.op_type !== 'Conv' || (conv.domain ?? '') !== '') return undefined
  const wref = scope.resolve(conv.input[1] ?? '')
  const convWeights = wref && floatData(wref.tensor)
  if (!convWeights || readers.count(conv.input[1]) !== 1) return undefined
  const dims = wref.tensor.dims.map(Number)
  const m = dims[0]
  let bias: Float32Array = new Float32Array(m)
  if (conv.input[2]) {
    const bref = scope.resolve(conv.input[2])
    const b = bref && floatData(bref.tensor)
    if (b?.length !== m) return undefined
    bias = b
  }
  return { w: convWeights, dims, m, bias, inner: convWeights.length / m }
}

/** Writes a Conv's folded weight and bias as new initializers, with names unused in the graph. */
class FoldedWeights {
  private readonly names = new Set<string>()

  constructor(private readonly graph: GraphProto) {
    for (const n of graph.node) for (const x of [...n.input, ...n.output]) this.names.add(x)
    for (const t of graph.initializer) this.names.add(t.name ?? '')
  }

  fresh(base: string): string {
    let s = base
    for (let i = 1; this.names.has(s); i++) s = `${base}_${i}`
    this.names.add(s)
    return s
  }

  /** Points `conv` at new initializers holding `w` (shaped `dims`) and `bias`. */
  store(conv: NodeProto, w: Float32Array, dims: number[], bias: Float32Array): void {
    const wn = this.fresh(`${conv.input[1]}_folded`)
    const bn = this.fresh(`${conv.input[2] || conv.output[0]}_bias_folded`)
    this.graph.initializer.push(makeTensor(wn, DataType.FLOAT, dims, w))
    this.graph.initializer.push(makeTensor(bn, DataType.FLOAT, [bias.length], bias))
    conv.input[1] = wn
    conv.input[2] = bn
  }
}

/** after: Conv → Mul(s) [→ Add(b)] becomes one Conv with W·s and bias·s + b. Returns the count. */
function foldAffineAfterConv(graph: GraphProto, writer: FoldedWeights): number {
  const scope = new Scope(graph, null)
  const readers = new Readers(graph)
  const dead = new Set<NodeProto>()
  let folded = 0
  for (const conv of graph.node) {
    const params = convParams(scope, readers, conv)
    const affine = params && affineAfter(scope, readers, conv, params.m)
    if (!params || !affine) continue
    const { w, bias } = scaleOutputChannels(params, affine.scales, affine.add?.b)
    writer.store(conv, w, params.dims, bias)
    conv.output[0] = (affine.add ? affine.add.node : affine.mul).output[0]
    dead.add(affine.mul)
    if (affine.add) dead.add(affine.add.node)
    folded++
  }
  graph.node = graph.node.filter((n) => !dead.has(n))
  return folded
}

/** The Mul(s) [→ Add(b)] that alone reads the Conv's output, s and b one value or one per channel. */
function affineAfter(
  scope: Scope,
  readers: Readers,
  conv: NodeProto,
  channels: number,
): { mul: NodeProto; scales: Float32Array; add?: { node: NodeProto; b: Float32Array } } | undefined {
  const mul = readers.only(conv.output[0], 'Mul')
  const scales = mul && perChannelOf(scope, otherInput(mul, conv.output[0]), channels)
  if (!mul || !scales) return undefined
  // The Add folds in too when its other input is a per-channel constant.
  const addNode = readers.only(mul.output[0], 'Add')
  const addBias = addNode && perChannelOf(scope, otherInput(addNode, mul.output[0]), channels)
  return { mul, scales, add: addNode && addBias ? { node: addNode, b: addBias } : undefined }
}

/** Output channel o of the Conv's weight times scales[o]; its bias bias·s + b. */
function scaleOutputChannels(
  params: ConvParams,
  scales: Float32Array,
  shift: Float32Array | undefined,
): { w: Float32Array; bias: Float32Array } {
  const w = new Float32Array(params.w.length)
  const bias = new Float32Array(params.m)
  for (let o = 0; o < params.m; o++) {
    for (let i = 0; i < params.inner; i++) w[o * params.inner + i] = params.w[o * params.inner + i] * scales[o]
    bias[o] = params.bias[o] * scales[o] + (shift ? shift[o] : 0)
  }
  return { w, bias }
}

/** A Mul(x, s) [→ Add(b)] → Conv the second rule folds, s and b scalars. */
interface ScaleBeforeConv {
  mul: NodeProto
  factor: number
  /** The Mul's non-constant input, x. */
  scaledInput: string
  shift?: { add: NodeProto; b: number }
  conv: NodeProto
  params: ConvParams
}

/** before: Mul(s) [→ Add(b)] → Conv, s scalar, becomes a Conv with W·s (see foldAffineIntoConv). Returns the count. */
function foldScaleBeforeConv(graph: GraphProto, writer: FoldedWeights): number {
  const scope = new Scope(graph, null)
  const readers = new Readers(graph)
  const dead = new Set<NodeProto>()
  let folded = 0
  for (const mul of graph.node) {
    const found = matchScaleBeforeConv(scope, readers, mul)
    if (!found) continue
    for (const n of moveScaleIntoConv(graph, writer, found)) dead.add(n)
    folded++
  }
  graph.node = graph.node.filter((n) => !dead.has(n))
  return folded
}

/** Mul(x, s) [→ Add(b)] → Conv from its Mul, s a nonzero finite scalar and the Conv folding (see convParams). */
function matchScaleBeforeConv(scope: Scope, readers: Readers, mul: NodeProto): ScaleBeforeConv | undefined {
  if (mul.op_type !== 'Mul' || (mul.domain ?? '') !== '') return undefined
  const right = scalarOf(scope, mul.input[1])
  const factor = right ?? scalarOf(scope, mul.input[0])
  if (factor === undefined) return undefined
  const scaledInput = mul.input[right !== undefined ? 0 : 1]
  if (!(factor !== 0 && Number.isFinite(factor)) || scope.isConst(scaledInput)) return undefined
  const add = readers.only(mul.output[0], 'Add')
  const b = add ? scalarOf(scope, otherInput(add, mul.output[0])) : undefined
  const shift = add && b !== undefined ? { add, b } : undefined
  const feed = shift ? shift.add.output[0] : mul.output[0]
  const conv = readers.only(feed, 'Conv')
  const params = conv?.input[0] === feed ? convParams(scope, readers, conv) : undefined
  if (!conv || !params) return undefined
  return { mul, factor, scaledInput, shift, conv, params }
}

/** Rewrites the match's Conv to take x with W·s; returns the nodes this leaves unread. */
function moveScaleIntoConv(graph: GraphProto, writer: FoldedWeights, found: ScaleBeforeConv): NodeProto[] {
  const { conv, params, factor, shift } = found
  const scaledWeights = params.w.map((v) => v * factor)
  let bias: Float32Array = Float32Array.from(params.bias)
  const dead = [found.mul]
  if (shift && unpadded(conv)) {
    bias = biasPlusShift(params, shift.b)
    conv.input[0] = found.scaledInput
    dead.push(shift.add)
  } else if (shift) {
    // Keep Add(b/s) in front: Conv_{sW}(x + b/s) = Conv_W(s·x + b).
    const bn = writer.fresh(`${shift.add.output[0]}_shift`)
    graph.initializer.push(makeTensor(bn, DataType.FLOAT, [], Float32Array.of(shift.b / factor)))
    shift.add.input = [found.scaledInput, bn]
  } else conv.input[0] = found.scaledInput
  writer.store(conv, scaledWeights, params.dims, bias)
  return dead
}

/** Whether the Conv pads nothing, so a constant added to its input adds b·ΣW to each output channel. */
function unpadded(conv: NodeProto): boolean {
  const pads = conv.attribute.find((a) => a.name === 'pads')?.ints?.map(Number) ?? []
  const autoPad = conv.attribute.find((a) => a.name === 'auto_pad')?.s
  return pads.every((v) => v === 0) && (!autoPad || ['NOTSET', 'VALID'].includes(Buffer.from(autoPad).toString('utf8')))
}

/** The Conv's bias plus b·ΣW per output channel: what a constant b added to every input value contributes. */
function biasPlusShift(params: ConvParams, b: number): Float32Array {
  const bias = Float32Array.from(params.bias)
  for (let o = 0; o < params.m; o++) {
    let sum = 0
    for (let i = 0; i < params.inner; i++) sum += params.w[o * params.inner + i]
    bias[o] += b * sum
  }
  return bias
}
/** Every fusion in this file, in order; returns report notes (empty when nothing changed). */
export function fuseAll(model: ModelProto): string[] {
  const notes: string[] = []
  const affine = foldAffineIntoConv(model)
  if (affine) notes.push(`${affine} scalar/per-channel affine op pair(s) folded into Conv`)
  const hs = fuseHardSwish(model)
  if (hs) notes.push(`${hs} decomposed hard-swish (x·Clip(x+3,0,6)/6) fused into HardSwish`)
  return notes
}
