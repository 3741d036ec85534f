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
  const producer = new Map<string, NodeProto>()
  const consumers = new Map<string, NodeProto[]>()
  for (const n of graph.node) {
    for (const o of n.output) producer.set(o, n)
    for (const i of n.input) consumers.set(i, [...(consumers.get(i) ?? []), n])
  }
  const outputs = new Set(graph.output.map((o) => o.name ?? ''))
  const only = (t: string, op: string): NodeProto | undefined => {
    const c = consumers.get(t)
    return c?.length === 1 && !outputs.has(t) && c[0].op_type === op && (c[0].domain ?? '') === '' ? c[0] : undefined
  }
  /** The other input of a binary node, when one input is `t`. */
  const other = (n: NodeProto, t: string) => (n.input[0] === t ? n.input[1] : n.input[1] === t ? n.input[0] : undefined)
  /** `t` scaled by 1/6: Div(t, 6) or Mul(t, 1/6); returns that node. */
  const sixth = (t: string): NodeProto | undefined => {
    const d = only(t, 'Div')
    if (d?.input[0] === t && near(scalarOf(scope, d.input[1]), 6)) return d
    const m = only(t, 'Mul')
    if (m && near(scalarOf(scope, other(m, t)), 1 / 6)) return m
    return undefined
  }
  const dead = new Set<NodeProto>()
  const added: NodeProto[] = []
  for (const add of graph.node) {
    if (add.op_type !== 'Add' || (add.domain ?? '') !== '' || dead.has(add)) continue
    const gated = near(scalarOf(scope, add.input[1]), 3)
      ? add.input[0]
      : near(scalarOf(scope, add.input[0]), 3)
        ? add.input[1]
        : undefined
    if (!gated || scope.isConst(gated)) continue
    const clip = only(add.output[0], 'Clip')
    if (
      clip?.input[0] !== add.output[0] ||
      !near(scalarOf(scope, clip.input[1]), 0) ||
      !near(scalarOf(scope, clip.input[2]), 6)
    )
      continue
    const clipped = clip.output[0]
    let chain: NodeProto[] | undefined
    // x · c / 6
    const mul = only(clipped, 'Mul')
    if (mul && other(mul, clipped) === gated) {
      const s = sixth(mul.output[0])
      if (s) chain = [mul, s]
    }
    // x · (c / 6)
    if (!chain) {
      const s = sixth(clipped)
      const m2 = s && only(s.output[0], 'Mul')
      if (s && m2 && other(m2, s.output[0]) === gated) chain = [s, m2]
    }
    if (!chain) continue
    const last = chain[chain.length - 1]
    for (const n of [add, clip, ...chain]) dead.add(n)
    added.push(makeNode('HardSwish', [gated], [last.output[0]], ''))
  }
  if (!added.length) return 0
  graph.node = [...graph.node.filter((n) => !dead.has(n)), ...added]
  topoSort(graph)
  removeDeadConstants(model)
  const v = Number(model.opset_import.find((o) => (o.domain ?? '') === '')?.version ?? 0)
  if (v < HARDSWISH_OPSET) setOpset(model, '', HARDSWISH_OPSET)
  return added.length
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
  let scope = new Scope(graph, null)
  let consumers = new Map<string, NodeProto[]>()
  const index = () => {
    scope = new Scope(graph, null)
    consumers = new Map()
    for (const n of graph.node) for (const i of n.input) consumers.set(i, [...(consumers.get(i) ?? []), n])
  }
  index()
  const outputs = new Set(graph.output.map((o) => o.name ?? ''))
  const only = (t: string, op: string): NodeProto | undefined => {
    const c = consumers.get(t)
    return c?.length === 1 && !outputs.has(t) && c[0].op_type === op && (c[0].domain ?? '') === '' ? c[0] : undefined
  }
  const otherInput = (n: NodeProto, t: string) =>
    n.input[0] === t ? n.input[1] : n.input[1] === t ? n.input[0] : undefined
  const names = new Set<string>()
  for (const n of graph.node) for (const x of [...n.input, ...n.output]) names.add(x)
  for (const t of graph.initializer) names.add(t.name ?? '')
  const fresh = (base: string) => {
    let s = base
    for (let i = 1; names.has(s); i++) s = `${base}_${i}`
    names.add(s)
    return s
  }
  const dead = new Set<NodeProto>()
  let folded = 0
  /** The Conv's weight [M, C/g, k...] and bias [M] as fresh arrays, when it owns a constant weight. */
  const convParams = (conv: NodeProto) => {
    if (conv.op_type !== 'Conv' || (conv.domain ?? '') !== '' || dead.has(conv)) return undefined
    const wref = scope.resolve(conv.input[1] ?? '')
    const convWeights = wref && floatData(wref.tensor)
    if (!convWeights || (consumers.get(conv.input[1])?.length ?? 0) !== 1) return undefined
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
  const store = (conv: NodeProto, w: Float32Array, dims: number[], bias: Float32Array) => {
    const wn = fresh(`${conv.input[1]}_folded`)
    const bn = fresh(`${conv.input[2] || conv.output[0]}_bias_folded`)
    graph.initializer.push(makeTensor(wn, DataType.FLOAT, dims, w))
    graph.initializer.push(makeTensor(bn, DataType.FLOAT, [bias.length], bias))
    conv.input[1] = wn
    conv.input[2] = bn
  }
  for (const conv of graph.node) {
    // after: Conv → Mul(s) [→ Add(b)]
    const params = convParams(conv)
    if (!params) continue
    const mul = only(conv.output[0], 'Mul')
    const scales = mul && perChannelOf(scope, otherInput(mul, conv.output[0]), params.m)
    if (!mul || !scales) continue
    // The Add folds in too when its other input is a per-channel constant.
    const addNode = only(mul.output[0], 'Add')
    const addBias = addNode && perChannelOf(scope, otherInput(addNode, mul.output[0]), params.m)
    const add = addNode && addBias ? { node: addNode, b: addBias } : undefined
    const w = new Float32Array(params.w.length)
    const bias = new Float32Array(params.m)
    for (let o = 0; o < params.m; o++) {
      for (let i = 0; i < params.inner; i++) w[o * params.inner + i] = params.w[o * params.inner + i] * scales[o]
      bias[o] = params.bias[o] * scales[o] + (add ? add.b[o] : 0)
    }
    store(conv, w, params.dims, bias)
    conv.output[0] = (add ? add.node : mul).output[0]
    dead.add(mul)
    if (add) dead.add(add.node)
    folded++
  }
  // The second rule reads weights the first one may have replaced.
  graph.node = graph.node.filter((n) => !dead.has(n))
  index()
  for (const mul of graph.node) {
    // before: Mul(s) [→ Add(b)] → Conv, s scalar
    if (mul.op_type !== 'Mul' || (mul.domain ?? '') !== '' || dead.has(mul)) continue
    const right = scalarOf(scope, mul.input[1])
    const factor = right ?? scalarOf(scope, mul.input[0])
    if (factor === undefined) continue
    const scaledInput = mul.input[right !== undefined ? 0 : 1]
    if (!(factor !== 0 && Number.isFinite(factor)) || scope.isConst(scaledInput)) continue
    const add = consumers.get(mul.output[0])?.length === 1 ? only(mul.output[0], 'Add') : undefined
    const bv = add ? scalarOf(scope, otherInput(add, mul.output[0])) : undefined
    const feed = add && bv !== undefined ? add.output[0] : mul.output[0]
    const conv = only(feed, 'Conv')
    const params = conv?.input[0] === feed ? convParams(conv) : undefined
    if (!conv || !params) continue
    const pads = conv.attribute.find((a) => a.name === 'pads')?.ints?.map(Number) ?? []
    const autoPad = conv.attribute.find((a) => a.name === 'auto_pad')?.s
    const unpadded =
      pads.every((v) => v === 0) && (!autoPad || ['NOTSET', 'VALID'].includes(Buffer.from(autoPad).toString('utf8')))
    const scaledWeights = params.w.map((v) => v * factor)
    const bias = Float32Array.from(params.bias)
    if (add && bv !== undefined && unpadded) {
      for (let o = 0; o < params.m; o++) {
        let sum = 0
        for (let i = 0; i < params.inner; i++) sum += params.w[o * params.inner + i]
        bias[o] += bv * sum
      }
      conv.input[0] = scaledInput
      dead.add(add)
    } else if (add && bv !== undefined) {
      // Keep Add(b/s) in front: Conv_{sW}(x + b/s) = Conv_W(s·x + b).
      const bn = fresh(`${add.output[0]}_shift`)
      graph.initializer.push(makeTensor(bn, DataType.FLOAT, [], Float32Array.of(bv / factor)))
      add.input = [scaledInput, bn]
    } else conv.input[0] = scaledInput
    store(conv, scaledWeights, params.dims, bias)
    dead.add(mul)
    folded++
  }
  if (!folded) return 0
  graph.node = graph.node.filter((n) => !dead.has(n))
  topoSort(graph)
  removeDeadConstants(model)
  return folded
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
