// Element types of every value in a model's main graph, as ONNX Runtime infers
// them: the graph is reopened with each node output declared as an untyped
// graph output, and ORT's own type inference fills in what each one is. We
// have no ONNX shape inference of our own, and ORT's is the one the device runs.
import { decodeModel, encodeModel, DataType } from './onnx/proto.js'
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
export async function inferTensorTypes(modelBytes: Uint8Array): Promise<Map<string, number>> {
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
