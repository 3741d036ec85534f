// Graph plumbing shared by the passes: walking the main graph and every
// subgraph (If/Loop/Scan bodies), resolving constants through scopes (an
// initializer or a Constant node, here or in an enclosing graph), attributes,
// fresh names and dead-constant cleanup.
import {
  AttrType,
  type AttributeProto,
  type GraphProto,
  type ModelProto,
  type NodeProto,
  type TensorProto,
  toNumber,
} from './proto.js'
import { EdgeFleetError } from '@edgefleet/shared'

export interface GraphVisit {
  graph: GraphProto
  /** 0 for the main graph. */
  depth: number
  /** Scope chain: this graph first, then its enclosing graphs. */
  scope: Scope
}

/** The main graph: decodeModel refuses a model without one, so a pass can count on it. */
export function mainGraph(model: ModelProto): GraphProto {
  if (!model.graph) throw new EdgeFleetError('EF_ERR_MODEL_INVALID', 'not an ONNX model: no graph')
  return model.graph
}

/** Calls fn for the main graph and every nested subgraph, parents before children. */
export function walkGraphs(model: ModelProto, fn: (v: GraphVisit) => void): void {
  const visit = (graph: GraphProto, depth: number, parent: Scope | null) => {
    const scope = new Scope(graph, parent)
    fn({ graph, depth, scope })
    for (const node of [...graph.node]) for (const sub of subgraphsOf(node)) visit(sub, depth + 1, scope)
  }
  if (model.graph) visit(model.graph, 0, null)
}

function subgraphsOf(node: NodeProto): GraphProto[] {
  const out: GraphProto[] = []
  for (const a of node.attribute) {
    if (a.g) out.push(a.g)
    if (a.graphs) out.push(...a.graphs)
  }
  return out
}

/** Where a constant comes from: an initializer or a Constant node's `value`. */
export interface ConstRef {
  tensor: TensorProto
  graph: GraphProto
  kind: 'initializer' | 'constant-node'
  node?: NodeProto
}

export class Scope {
  private readonly consts = new Map<string, ConstRef>()
  /** Names produced by nodes or declared as inputs here: they shadow outer constants. */
  private readonly locals = new Set<string>()

  constructor(
    readonly graph: GraphProto,
    readonly parent: Scope | null,
  ) {
    const inputs = new Set(graph.input.map((i) => i.name ?? ''))
    for (const t of graph.initializer) {
      // IR < 4 lists initializers as inputs too; an input fed at run time may override them, but no exporter relies on that.
      this.consts.set(t.name ?? '', { tensor: t, graph, kind: 'initializer' })
      inputs.delete(t.name ?? '')
    }
    for (const n of inputs) this.locals.add(n)
    for (const node of graph.node) {
      const value =
        node.op_type === 'Constant' && (node.domain ?? '') === ''
          ? node.attribute.find((a) => a.name === 'value' && a.t)
          : undefined
      if (value?.t && node.output[0])
        this.consts.set(node.output[0], { tensor: value.t, graph, kind: 'constant-node', node })
      else for (const o of node.output) this.locals.add(o)
    }
  }

  /** The constant behind `name`, looking outward through enclosing graphs. */
  resolve(name: string): ConstRef | undefined {
    const here = this.consts.get(name)
    if (here) return here
    if (this.locals.has(name)) return undefined
    return this.parent?.resolve(name)
  }

  isConst(name: string): boolean {
    return this.resolve(name) !== undefined
  }
}

export function attr(node: NodeProto, name: string): AttributeProto | undefined {
  return node.attribute.find((a) => a.name === name)
}
export function attrInt(node: NodeProto, name: string, fallback: number): number {
  const a = attr(node, name)
  return a?.i !== undefined && a.i !== null ? toNumber(a.i) : fallback
}
export function attrFloat(node: NodeProto, name: string, fallback: number): number {
  const a = attr(node, name)
  return a?.f ?? fallback
}
export function attrInts(node: NodeProto, name: string): number[] | undefined {
  const a = attr(node, name)
  return a?.ints ? a.ints.map((v) => toNumber(v)) : undefined
}
export function attrString(node: NodeProto, name: string): string | undefined {
  const a = attr(node, name)
  return a?.s ? Buffer.from(a.s).toString('utf8') : undefined
}
export function removeAttr(node: NodeProto, name: string): void {
  node.attribute = node.attribute.filter((a) => a.name !== name)
}
export const intAttr = (name: string, i: number): AttributeProto => ({ name, type: AttrType.INT, i })
export const stringAttr = (name: string, s: string): AttributeProto => ({
  name,
  type: AttrType.STRING,
  s: Buffer.from(s, 'utf8'),
})

export function makeNode(
  opType: string,
  inputs: string[],
  outputs: string[],
  name: string,
  attrs: AttributeProto[] = [],
  domain?: string,
): NodeProto {
  const n: NodeProto = { input: inputs, output: outputs, op_type: opType, attribute: attrs }
  if (name) n.name = name // node names are optional; '' leaves the field out of the file
  if (domain) n.domain = domain
  return n
}

/** Every name used anywhere in the model (node inputs/outputs, graph I/O, initializers), for fresh-name generation. */
export class Names {
  private readonly used = new Set<string>()
  constructor(model: ModelProto) {
    walkGraphs(model, ({ graph }) => {
      for (const t of graph.initializer) this.used.add(t.name ?? '')
      for (const v of [...graph.input, ...graph.output, ...graph.value_info]) this.used.add(v.name ?? '')
      for (const n of graph.node) {
        for (const x of [...n.input, ...n.output]) this.used.add(x)
        if (n.name) this.used.add(n.name)
      }
    })
  }
  fresh(base: string): string {
    let name = base
    for (let i = 1; this.used.has(name); i++) name = `${base}_${i}`
    this.used.add(name)
    return name
  }
}

/** Names read anywhere: node inputs in every graph and every graph's outputs. */
function usedNames(model: ModelProto): Set<string> {
  const used = new Set<string>()
  walkGraphs(model, ({ graph }) => {
    for (const n of graph.node) for (const x of n.input) used.add(x)
    for (const o of graph.output) used.add(o.name ?? '')
  })
  return used
}

/**
 * Drops initializers and Constant nodes nobody reads any more (a pass replaced
 * their consumers). Name-based over the whole model, so it never removes a
 * constant a subgraph still reads from an outer scope.
 */
export function removeDeadConstants(model: ModelProto): number {
  let removed = 0
  for (;;) {
    const used = usedNames(model)
    let changed = 0
    walkGraphs(model, ({ graph }) => {
      const before = graph.initializer.length + graph.node.length + graph.input.length
      const dropped = new Set(graph.initializer.filter((t) => !used.has(t.name ?? '')).map((t) => t.name ?? ''))
      graph.initializer = graph.initializer.filter((t) => !dropped.has(t.name ?? ''))
      // IR < 4 also lists initializers as graph inputs: an input backed by a dropped initializer goes with it.
      graph.input = graph.input.filter((i) => !dropped.has(i.name ?? ''))
      graph.node = graph.node.filter(
        (n) => !(n.op_type === 'Constant' && (n.domain ?? '') === '' && n.output.every((o) => !used.has(o))),
      )
      changed += before - graph.initializer.length - graph.node.length - graph.input.length
    })
    removed += changed
    if (!changed) return removed
  }
}

/**
 * Restores topological order after passes inserted nodes anywhere (stable:
 * ties keep the original order). Names not produced in this graph (inputs,
 * initializers, outer scope) count as available.
 */
export function topoSort(graph: GraphProto): void {
  const producer = new Map<string, number>()
  graph.node.forEach((n, i) => n.output.forEach((o) => o && producer.set(o, i)))
  const deps = graph.node.map((graphNode) => {
    const producers = new Set<number>()
    const reads = [...graphNode.input]
    // A subgraph may read values of this graph: those are dependencies too.
    const collect = (g: GraphProto) => {
      for (const m of g.node) {
        reads.push(...m.input)
        for (const s of subgraphsOf(m)) collect(s)
      }
      for (const o of g.output) reads.push(o.name ?? '')
    }
    for (const s of subgraphsOf(graphNode)) collect(s)
    for (const x of reads) {
      const p = producer.get(x)
      if (p !== undefined && graph.node[p] !== graphNode) producers.add(p)
    }
    return producers
  })
  const done = new Array<boolean>(graph.node.length).fill(false)
  const order: NodeProto[] = []
  let progress = true
  while (order.length < graph.node.length && progress) {
    progress = false
    for (let index = 0; index < graph.node.length; index++) {
      if (done[index]) continue
      let ready = true
      for (const d of deps[index])
        if (!done[d]) {
          ready = false
          break
        }
      if (ready) {
        done[index] = true
        order.push(graph.node[index])
        progress = true
      }
    }
  }
  if (order.length < graph.node.length) throw new Error('graph has a cycle after rewriting')
  graph.node = order
}
