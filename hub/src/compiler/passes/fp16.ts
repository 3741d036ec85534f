// fp16: float weights stored as IEEE half and widened by a Cast next to where
// they are defined; model inputs, outputs and every op stay fp32. On CPU
// execution providers ORT has almost no fp16 kernels (it would wrap each op in
// Casts), and it constant-folds these weight Casts at load, so this halves the
// file and keeps fp32 speed and nearly fp32 accuracy. Tensors that fp16
// cannot hold (|x| > 65504) or that are tiny (shape constants, scalars) stay fp32.
import { DataType, type ModelProto } from '../onnx/proto.js'
import { Names, intAttr, makeNode, walkGraphs, topoSort } from '../onnx/graph.js'
import { floatData, makeTensor, toFloat16Array, dimsOf } from '../onnx/tensor.js'
import { Plan } from './weights.js'

const HALF_MAX = 65504

export function fp16Pass(model: ModelProto, minElements = 16): Plan {
  const plan = new Plan()
  const names = new Names(model)
  walkGraphs(model, ({ graph, depth }) => {
    const inputs = new Set(graph.input.map((i) => i.name ?? ''))
    let touched = false
    graph.initializer = graph.initializer.map((t) => {
      const v = floatData(t)
      const name = t.name ?? ''
      if (!v || v.length < minElements || inputs.has(name) || v.some((x) => Math.abs(x) > HALF_MAX)) return t
      const half = names.fresh(`${name}_fp16`)
      graph.node.push(makeNode('Cast', [half], [name], names.fresh(`${name}_Cast`), [intAttr('to', DataType.FLOAT)]))
      plan.noteWeight({ tensor: t, graph, kind: 'initializer' }, depth)
      touched = true
      return makeTensor(half, DataType.FLOAT16, dimsOf(t), toFloat16Array(v))
    })
    for (const node of [...graph.node]) {
      if (node.op_type !== 'Constant' || (node.domain ?? '') !== '') continue
      const a = node.attribute.find((x) => x.name === 'value' && x.t)
      const v = a?.t && floatData(a.t)
      if (!a?.t || !v || v.length < minElements || v.some((x) => Math.abs(x) > HALF_MAX)) continue
      const out = node.output[0]
      const half = names.fresh(`${out}_fp16`)
      a.t = makeTensor(a.t.name ?? '', DataType.FLOAT16, dimsOf(a.t), toFloat16Array(v))
      node.output[0] = half
      graph.node.push(makeNode('Cast', [half], [out], names.fresh(`${out}_Cast`), [intAttr('to', DataType.FLOAT)]))
      plan.noteWeight({ tensor: a.t, graph, kind: 'constant-node', node }, depth)
      touched = true
    }
    if (touched) topoSort(graph)
  })
  plan.count('weights', 'fp16 storage')
  return plan
}
