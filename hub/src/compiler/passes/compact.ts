// Storage compaction for the size-minimising build (int8-weight): after the
// int8 pass, what is left of a small conv net's file is mostly not weights but
// per-channel scales, fp32 biases and the protobuf framing of many small
// tensors (PP-OCR cls: 124 KB of int8 weights, 26 KB of fp32 scales and
// biases in ~100 tensors, ~30 KB of graph). This pass
//  - packs every rank-1 fp32 initializer of the main graph (biases, weight
//    scales, per-channel constants) into ONE fp16 blob that a Cast and a Split
//    unpack under the original names: half the bytes and one tensor header
//    instead of a hundred. ORT constant-folds Cast and Split at load, so the
//    running graph and its speed are those of the unpacked model; fp16 keeps
//    11 significant bits (round to nearest: relative error ≤ 2.4e-4 per scale or
//    bias, far below int8's 1/254 step). Quantizing against fp16-rounded-up scales
//    instead was measurably worse on cls (cosine 0.991 vs 0.995), so the weights are
//    quantized in fp32 and only the stored scale is rounded.
//  - drops Conv attributes that only restate the default (auto_pad NOTSET,
//    dilations 1, strides 1, group 1).
//  - with `shortNames`, renames every internal value and initializer of the main
//    graph to a short base-36 id (graph inputs and outputs keep their names, so
//    callers see the same signature) and drops node names. Exporter names
//    ("ConvBnFusion_BN_B_batch_norm_12.b_0", "p2o.Conv.12") are ~10% of a small
//    int8 conv net; they only serve debugging, which happens on the hub's float
//    model. Renaming is positional and deterministic, so two versions with the
//    same graph get the same names (tensor-aligned chunking still finds equal
//    chunks). Skipped when the model has subgraphs (they may read outer names).
// Tensors fp16 cannot hold (|x| > 65504, or a non-zero below fp16's normal range)
// stay fp32, as do graph inputs and anything a subgraph reads.
import { AttrType, DataType, toNumber, type ModelProto, type NodeProto } from '../onnx/proto.js'
import { Names, intAttr, mainGraph, makeNode, topoSort, walkGraphs } from '../onnx/graph.js'
import { floatData, makeTensor, toFloat16Array, i64 } from '../onnx/tensor.js'

const HALF_MAX = 65504
const HALF_MIN_NORMAL = 6.104e-5

export interface CompactStats {
  packedTensors: number
  packedElements: number
  droppedAttributes: number
  renamed: number
}

/** Base-36 ids for every internal name of the main graph; returns how many were renamed (0 with subgraphs). */
function shortenNames(model: ModelProto): number {
  const graph = mainGraph(model)
  let nested = false
  walkGraphs(model, ({ depth }) => (nested ||= depth > 0))
  if (nested) return 0
  const keep = new Set([...graph.input, ...graph.output].map((v) => v.name ?? ''))
  const map = new Map<string, string>()
  let next = 0
  const id = (name: string): string => {
    if (!name || keep.has(name)) return name
    let short = map.get(name)
    if (short === undefined) {
      do short = (next++).toString(36)
      while (keep.has(short))
      map.set(name, short)
    }
    return short
  }
  for (const t of graph.initializer) t.name = id(t.name ?? '')
  for (const n of graph.node) {
    n.input = n.input.map(id)
    n.output = n.output.map(id)
    delete n.name
  }
  for (const v of graph.value_info) v.name = id(v.name ?? '')
  return map.size
}

function halfSafe(v: Float32Array): boolean {
  for (const x of v) {
    const a = Math.abs(x)
    if (!Number.isFinite(x) || a > HALF_MAX || (a !== 0 && a < HALF_MIN_NORMAL)) return false
  }
  return true
}

/** Reads of each name from nested graphs (they must keep a real initializer in scope). */
function subgraphReads(model: ModelProto): Set<string> {
  const reads = new Set<string>()
  walkGraphs(model, ({ graph, depth }) => {
    if (depth > 0) for (const n of graph.node) for (const x of n.input) reads.add(x)
  })
  return reads
}

function dropDefaultConvAttributes(node: NodeProto): number {
  if (node.op_type !== 'Conv' || (node.domain ?? '') !== '') return 0
  const before = node.attribute.length
  node.attribute = node.attribute.filter((a) => {
    const ints = a.ints?.map((v) => toNumber(v))
    if (a.name === 'auto_pad') return a.s ? Buffer.from(a.s).toString('utf8') !== 'NOTSET' : false
    if (a.name === 'dilations' || a.name === 'strides') return !(ints?.length && ints.every((v) => v === 1))
    if (a.name === 'group') return !(a.i !== undefined && a.i !== null && toNumber(a.i) === 1)
    return true
  })
  return before - node.attribute.length
}

export function compactPass(
  model: ModelProto,
  opset: number,
  opts: { minElements?: number; shortNames?: boolean; pack?: boolean } = {},
): CompactStats {
  const minElements = opts.minElements ?? 2
  const graph = mainGraph(model)
  const stats: CompactStats = { packedTensors: 0, packedElements: 0, droppedAttributes: 0, renamed: 0 }
  if (opts.shortNames) stats.renamed = shortenNames(model)
  for (const n of graph.node) stats.droppedAttributes += dropDefaultConvAttributes(n)
  if (opts.pack === false) return stats
  const names = new Names(model)
  const inputs = new Set(graph.input.map((i) => i.name ?? ''))
  const nested = subgraphReads(model)
  const packed: { name: string; data: Float32Array }[] = []
  graph.initializer = graph.initializer.filter((t) => {
    const name = t.name ?? ''
    if (t.dims.length !== 1 || inputs.has(name) || nested.has(name)) return true
    const v = floatData(t)
    if (!v || v.length < minElements || !halfSafe(v)) return true
    packed.push({ name, data: v })
    return false
  })
  if (packed.length < 2) {
    // Not worth a Cast + Split: put a lone candidate back.
    for (const p of packed) graph.initializer.push(makeTensor(p.name, DataType.FLOAT, [p.data.length], p.data))
    return stats
  }
  const all = new Float32Array(packed.reduce((s, p) => s + p.data.length, 0))
  let at = 0
  for (const p of packed) {
    all.set(p.data, at)
    at += p.data.length
  }
  const blob = names.fresh('packed_fp16')
  const wide = names.fresh('packed')
  graph.initializer.push(makeTensor(blob, DataType.FLOAT16, [all.length], toFloat16Array(all)))
  const sizes = packed.map((p) => p.data.length)
  const outs = packed.map((p) => p.name)
  graph.node.push(makeNode('Cast', [blob], [wide], '', [intAttr('to', DataType.FLOAT)]))
  if (opset >= 13) {
    const split = names.fresh('packed_split')
    graph.initializer.push(i64(split, [sizes.length], sizes))
    graph.node.push(makeNode('Split', [wide, split], outs, '', [intAttr('axis', 0)]))
  } else {
    graph.node.push(
      makeNode('Split', [wide], outs, '', [intAttr('axis', 0), { name: 'split', type: AttrType.INTS, ints: sizes }]),
    )
  }
  stats.packedTensors = packed.length
  stats.packedElements = all.length
  topoSort(graph)
  return stats
}
