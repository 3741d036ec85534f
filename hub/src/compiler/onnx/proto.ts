// Reading and writing ONNX ModelProto bytes with protobufjs. Everything a pass
// does not touch survives: metadata, opset imports, value info, doc strings,
// subgraphs, functions. int64 fields decode as Long (exact, never rounded);
// bytes fields (raw_data) decode as views into the input buffer, so a 200 MB
// model is not copied on read.
import protobuf from 'protobufjs/light.js'
import { EdgeFleetError } from '@edgefleet/shared'
import { onnxDescriptor } from './schema.js'

// `long` is protobufjs's own dependency (not ours): use the class it resolved.
const Long = protobuf.util.Long
if (!Long) throw new Error('protobufjs was installed without its `long` dependency; int64 fields would lose precision')
interface Long {
  toNumber(): number
  toString(): string
  low: number
  high: number
  unsigned: boolean
}
export type Int64 = number | Long

interface StringStringEntry {
  key?: string
  value?: string
}
interface OperatorSetId {
  domain?: string
  version?: Int64
}
interface Dimension {
  dim_value?: Int64
  dim_param?: string
  denotation?: string
}
interface TypeProto {
  tensor_type?: { elem_type?: number; shape?: { dim: Dimension[] } }
  sequence_type?: unknown
  map_type?: unknown
  optional_type?: unknown
  sparse_tensor_type?: unknown
  denotation?: string
}
export interface ValueInfo {
  name?: string
  type?: TypeProto
  doc_string?: string
}
export interface TensorProto {
  dims: Int64[]
  data_type?: number
  float_data?: number[]
  int32_data?: number[]
  int64_data?: Int64[]
  double_data?: number[]
  uint64_data?: Int64[]
  string_data?: Uint8Array[]
  name?: string
  raw_data?: Uint8Array
  data_location?: number
  external_data?: StringStringEntry[]
  doc_string?: string
}
export interface AttributeProto {
  name?: string
  type?: number
  f?: number
  i?: Int64
  s?: Uint8Array
  t?: TensorProto
  g?: GraphProto
  floats?: number[]
  ints?: Int64[]
  strings?: Uint8Array[]
  tensors?: TensorProto[]
  graphs?: GraphProto[]
  ref_attr_name?: string
}
export interface NodeProto {
  input: string[]
  output: string[]
  name?: string
  op_type?: string
  domain?: string
  attribute: AttributeProto[]
  doc_string?: string
}
export interface GraphProto {
  node: NodeProto[]
  name?: string
  initializer: TensorProto[]
  sparse_initializer?: unknown[]
  doc_string?: string
  input: ValueInfo[]
  output: ValueInfo[]
  value_info: ValueInfo[]
}
export interface ModelProto {
  ir_version?: Int64
  opset_import: OperatorSetId[]
  producer_name?: string
  producer_version?: string
  domain?: string
  model_version?: Int64
  doc_string?: string
  graph?: GraphProto
  metadata_props: StringStringEntry[]
  functions?: unknown[]
}

/** ONNX TensorProto.DataType values used by the compiler. */
export const DataType = {
  FLOAT: 1,
  UINT8: 2,
  INT8: 3,
  UINT16: 4,
  INT16: 5,
  INT32: 6,
  INT64: 7,
  STRING: 8,
  BOOL: 9,
  FLOAT16: 10,
  DOUBLE: 11,
  UINT32: 12,
  UINT64: 13,
} as const

/** AttributeProto.AttributeType values. */
export const AttrType = {
  FLOAT: 1,
  INT: 2,
  STRING: 3,
  TENSOR: 4,
  GRAPH: 5,
  FLOATS: 6,
  INTS: 7,
  STRINGS: 8,
  TENSORS: 9,
  GRAPHS: 10,
} as const

const root = protobuf.Root.fromJSON(onnxDescriptor)
const ModelType = root.lookupType('onnx.ModelProto')

/** int64 field → JS number; throws when the value is not exactly representable (never silently rounds). */
export function toNumber(v: Int64 | undefined | null, fallback = 0): number {
  if (v === undefined || v === null) return fallback
  if (typeof v === 'number') return v
  const n = v.toNumber()
  if (!Number.isSafeInteger(n)) throw new RangeError(`int64 ${v.toString()} does not fit a JS number`)
  return n
}

/** Decodes ModelProto bytes. EF_ERR_MODEL_INVALID when the bytes are not a (complete) ONNX model. */
export function decodeModel(bytes: Uint8Array): ModelProto {
  let decodedModel: ModelProto
  try {
    decodedModel = ModelType.decode(bytes) as unknown as ModelProto
  } catch (err) {
    throw new EdgeFleetError('EF_ERR_MODEL_INVALID', `not an ONNX protobuf or truncated (${(err as Error).message})`, {
      cause: err,
    })
  }
  // Arbitrary bytes sometimes parse as some protobuf; a model needs at least these.
  if (
    !decodedModel.graph ||
    decodedModel.ir_version === undefined ||
    decodedModel.ir_version === null ||
    decodedModel.opset_import.length === 0
  ) {
    throw new EdgeFleetError('EF_ERR_MODEL_INVALID', 'not an ONNX model: no graph, IR version or opset import')
  }
  return decodedModel
}

/** Encodes a ModelProto (decoded, modified or built from plain objects). */
export function encodeModel(model: ModelProto): Uint8Array {
  return ModelType.encode(model).finish()
}

/** Opset version of a domain ('' = the default ai.onnx domain), or undefined when not imported. */
export function opsetOf(model: ModelProto, domain = ''): number | undefined {
  const entry = model.opset_import.find((o) => (o.domain ?? '') === domain || (domain === '' && o.domain === 'ai.onnx'))
  return entry ? toNumber(entry.version) : undefined
}

export function setOpset(model: ModelProto, domain: string, version: number): void {
  const entry = model.opset_import.find((o) => (o.domain ?? '') === domain || (domain === '' && o.domain === 'ai.onnx'))
  if (entry) entry.version = version
  else model.opset_import.push({ domain, version })
}
