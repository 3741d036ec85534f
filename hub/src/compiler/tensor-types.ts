// Element types of every value in a model's main graph, as ONNX Runtime infers
// them: the graph is reopened with each node output declared as an untyped
// graph output, and ORT's own type inference fills in what each one is. We
// have no ONNX shape inference of our own, and ORT's is the one the device runs.
// Subgraph bodies (If/Loop/Scan) are typed the same way, each opened as a
// model of its own whose inputs are the outer values it reads.
import { decodeModel, encodeModel, DataType, type GraphProto, type ModelProto } from './onnx/proto.js'
import { mainGraph } from './onnx/graph.js'
import { openSession } from './ort.js'

/** ORT's type names → ONNX DataType (the ones a pass distinguishes; others map to 0). */
const ORT_TYPES: Readonly<Record<string, number>> = {
  float32: DataType.FLOAT,
  float16: DataType.FLOAT16,
  int64: DataType.INT64,
  int32: DataType.INT32,
  int8: DataType.INT8,
  uint8: DataType.UINT8,
}

/** Tensor name → DataType for graph inputs, initializers and every node output of the main graph. */
async function inferTensorTypes(modelBytes: Uint8Array): Promise<Map<string, number>> {
  const model = decodeModel(modelBytes)
  const graph = mainGraph(model)
  const types = new Map<string, number>()
  for (const t of graph.initializer) types.set(t.name ?? '', t.data_type ?? 0)
  for (const i of graph.input) types.set(i.name ?? '', i.type?.tensor_type?.elem_type ?? 0)
  const declared = new Set(graph.output.map((o) => o.name ?? ''))
  for (const node of graph.node)
    for (const o of node.output)
      if (o && !declared.has(o)) {
        graph.output.push({ name: o })
        declared.add(o)
      }
  const session = await openSession(encodeModel(model), { graphOptimizationLevel: 'disabled' })
  try {
    for (const m of session.outputMetadata) if (m.isTensor) types.set(m.name, ORT_TYPES[m.type] ?? 0)
  } finally {
    await session.release()
  }
  return types
}

/** Names a subgraph (and the bodies nested in it) reads but neither produces nor declares. */
function freeNames(graph: GraphProto): Set<string> {
  const own = new Set<string>([
    ...graph.input.map((i) => i.name ?? ''),
    ...graph.initializer.map((t) => t.name ?? ''),
    ...graph.node.flatMap((n) => n.output),
  ])
  const free = new Set<string>()
  const reads = [...graph.node.flatMap((n) => n.input), ...graph.output.map((o) => o.name ?? '')]
  for (const n of graph.node)
    for (const a of n.attribute) for (const sub of [a.g, ...(a.graphs ?? [])]) if (sub) reads.push(...freeNames(sub))
  for (const x of reads) if (x && !own.has(x)) free.add(x)
  return free
}

/**
 * Types inside one subgraph body, given its enclosing scopes' types (`outer`): the body is opened
 * in ORT as a model of its own, whose inputs are its formal inputs plus every outer value it reads
 * (typed from `outer`, shapes unknown) and whose outputs are every node output. Null when an
 * outer value's type is unknown or ORT cannot type the body alone.
 */
async function bodyTypes(model: ModelProto, graph: GraphProto, outer: ReadonlyMap<string, number>) {
  const free = [...freeNames(graph)]
  if (free.some((x) => !outer.get(x))) return null
  const outputs = [...new Set(graph.node.flatMap((n) => n.output).filter(Boolean))]
  const standalone: ModelProto = {
    ir_version: model.ir_version,
    opset_import: model.opset_import,
    metadata_props: [],
    graph: {
      name: graph.name,
      node: graph.node,
      initializer: graph.initializer,
      input: [...graph.input, ...free.map((name) => ({ name, type: { tensor_type: { elem_type: outer.get(name) } } }))],
      output: outputs.map((name) => ({ name })),
      value_info: [],
    },
  }
  const types = new Map(outer)
  for (const t of graph.initializer) types.set(t.name ?? '', t.data_type ?? 0)
  for (const i of graph.input) types.set(i.name ?? '', i.type?.tensor_type?.elem_type ?? 0)
  try {
    const session = await openSession(encodeModel(standalone), { graphOptimizationLevel: 'disabled' })
    try {
      for (const m of session.outputMetadata) if (m.isTensor) types.set(m.name, ORT_TYPES[m.type] ?? 0)
    } finally {
      await session.release()
    }
  } catch {
    return null
  }
  return types
}

/**
 * Types of every graph of the model in walkGraphs order (0: the main graph, then each subgraph
 * body after its parent): value name → DataType, a body's map including the outer values it
 * can read. Null for a body ORT could not type (a pass leaves it as it is).
 */
export async function inferGraphTypes(modelBytes: Uint8Array): Promise<(Map<string, number> | null)[]> {
  const model = decodeModel(modelBytes)
  const out: (Map<string, number> | null)[] = []
  const visit = async (graph: GraphProto, types: Map<string, number> | null) => {
    out.push(types)
    for (const node of graph.node)
      for (const a of node.attribute)
        for (const sub of [a.g, ...(a.graphs ?? [])])
          if (sub) await visit(sub, types && (await bodyTypes(model, sub, types)))
  }
  await visit(mainGraph(model), await inferTensorTypes(modelBytes))
  return out
}
