// int8-weight: weights stored as int8 and expanded by DequantizeLinear at run
// time; activations stay float. Works on every op with a weight input, in
// every graph, wherever the weight is held (initializer, Constant node, outer scope).
import type { ModelProto, NodeProto } from '../onnx/proto.js'
import { walkGraphs, removeDeadConstants, topoSort, type Scope } from '../onnx/graph.js'
import { dimsOf, elementCount } from '../onnx/tensor.js'
import { QuantContext, weightInputs } from './weights.js'

export interface WeightOnlyOptions {
  /** Weights with fewer elements stay float (scales would cost more than they save). */
  minElements?: number
  /** Op types to leave alone entirely. */
  skipOps?: ReadonlySet<string>
  /** Nodes another pass already handled. */
  skipNodes?: ReadonlySet<NodeProto>
}

function rankResolver(scope: Scope): (name: string) => number | undefined {
  return (name) => {
    const ref = scope.resolve(name)
    return ref ? ref.tensor.dims.length : undefined
  }
}

/** Applies weight-only int8 to every eligible weight; returns the context (plan + counts). */
export function weightOnlyPass(model: ModelProto, ctx: QuantContext, opts: WeightOnlyOptions = {}): QuantContext {
  const minElements = opts.minElements ?? 64
  walkGraphs(model, ({ graph, scope, depth }) => {
    let touched = false
    for (const node of [...graph.node]) {
      if (opts.skipNodes?.has(node) || opts.skipOps?.has(node.op_type ?? '')) continue
      const inputs = weightInputs(node, rankResolver(scope))
      let any = false
      for (const [idx, axis] of inputs) {
        const name = node.input[idx]
        if (!name) continue
        const ref = scope.resolve(name)
        if (!ref || elementCount(dimsOf(ref.tensor)) < minElements) continue
        if (ctx.dequantizedWeight(graph, scope, depth, node, idx, axis)) any = true
      }
      if (inputs.length) ctx.plan.count(node.op_type ?? '', any ? 'int8-weight' : 'fp32')
      touched ||= any
    }
    if (touched) topoSort(graph)
  })
  removeDeadConstants(model)
  return ctx
}
