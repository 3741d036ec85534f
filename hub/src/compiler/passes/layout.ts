// Artifact layout for small deltas [EF-4.2, EF-5.3]: the hub cuts an artifact
// at every tensor of ≥ 64 bytes (distribution/tensor-chunks.ts); a smaller
// tensor rides in the framing chunk around it. A retrained head changes its
// weight (its own chunk) and its bias or scales (small): those sit after the
// last large tensor, in the tail chunk with the graph's inputs, outputs and
// the model's opset list, and a device downloads that whole chunk again.
// ORT's optimizer writes all nine of its opset domains into every model it
// saves; dropping the ones no node uses shrinks that tail (a wake-word head's
// int8-dynamic update: 1,865 B moved for 1,572 B changed before, within 1.1×
// after). Reordering initializers by first reader was tried and dropped: it
// helped a fp16 head (1.23 → 1.12 of changed bytes) but moved an int8 head's
// small weight in front of the first large tensor, into the chunk holding
// every node (2.0×). The opset list means nothing to ONNX beyond used domains.
import type { ModelProto } from '../onnx/proto.js'
import { walkGraphs } from '../onnx/graph.js'

/** Drops opset imports of domains no node of any graph uses (the default domain always stays). */
export function dropUnusedOpsets(model: ModelProto): void {
  const used = new Set([''])
  walkGraphs(model, ({ graph }) => graph.node.forEach((n) => used.add(n.domain ?? '')))
  model.opset_import = model.opset_import.filter((o) => used.has(o.domain ?? '') || o.domain === 'ai.onnx')
}
