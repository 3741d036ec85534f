// The hub's only door to onnxruntime-node (CONVENTIONS: native modules behind
// one door). The compiler, validation and health-vector generation go through it.
import * as ort from 'onnxruntime-node'
import { EdgeFleetError, type TensorSpec, type TensorType, type TypedData } from '@edgefleet/shared'

export type Session = ort.InferenceSession
export interface NamedTensor {
  type: TensorType
  dims: number[]
  data: TypedData
}

export interface SessionOptions {
  /** intra-op threads; 0 lets ORT decide. */
  threads?: number
  graphOptimizationLevel?: 'disabled' | 'basic' | 'extended' | 'all'
  /** Write ORT's optimized graph here (offline optimization). */
  optimizedModelFilePath?: string
}

export async function openSession(model: Uint8Array | string, opts: SessionOptions = {}): Promise<Session> {
  try {
    const options: ort.InferenceSession.SessionOptions = {
      executionProviders: ['cpu'],
      intraOpNumThreads: opts.threads ?? 1,
      interOpNumThreads: 1,
      graphOptimizationLevel: opts.graphOptimizationLevel ?? 'all',
      ...(opts.optimizedModelFilePath ? { optimizedModelFilePath: opts.optimizedModelFilePath } : {}),
    }
    return typeof model === 'string'
      ? await ort.InferenceSession.create(model, options)
      : await ort.InferenceSession.create(model, options)
  } catch (err) {
    throw new EdgeFleetError(
      'EF_ERR_MODEL_INVALID',
      `ONNX Runtime cannot load it: ${(err as Error).message.split('\n')[0]}`,
      { cause: err },
    )
  }
}

function specOf(m: ort.InferenceSession.ValueMetadata): TensorSpec {
  if (!m.isTensor) return { name: m.name, type: 'non-tensor', dims: [] }
  return { name: m.name, type: m.type, dims: [...m.shape] }
}

export function sessionSignature(s: Session): { inputs: TensorSpec[]; outputs: TensorSpec[] } {
  return { inputs: s.inputMetadata.map(specOf), outputs: s.outputMetadata.map(specOf) }
}

export async function run(s: Session, inputs: Record<string, NamedTensor>): Promise<Record<string, NamedTensor>> {
  const feeds: Record<string, ort.Tensor> = {}
  for (const [name, t] of Object.entries(inputs)) {
    feeds[name] = new ort.Tensor(t.type, t.data as ort.Tensor.DataType, t.dims)
  }
  const out = await s.run(feeds)
  const result: Record<string, NamedTensor> = {}
  for (const [name, t] of Object.entries(out)) {
    result[name] = { type: t.type as TensorType, dims: [...t.dims], data: t.data as TypedData }
  }
  return result
}
