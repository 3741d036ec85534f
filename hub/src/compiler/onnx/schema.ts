// The ONNX protobuf schema (onnx/onnx.proto, IR version 10 plus the IR 11
// device-configuration messages) as a protobufjs JSON descriptor, written from
// the ONNX specification. It is a TS module rather than a .proto file so that
// dist/ carries it without a copy step.
//
// The file is proto2: repeated scalars are unpacked unless the spec marks them
// `[packed = true]` (TensorProto's *_data fields). Getting this right is what
// makes our writer reproduce the bytes protobuf-C++ wrote.

interface Field {
  type: string
  id: number
  rule?: 'repeated'
  options?: { packed: boolean }
}
interface Msg {
  fields: Record<string, Field>
  nested?: Record<string, Msg | Enum>
  oneofs?: Record<string, { oneof: string[] }>
}
interface Enum {
  values: Record<string, number>
}

const opt = (type: string, id: number): Field => ({ type, id })
const scalars = new Set(['float', 'double', 'int32', 'int64', 'uint32', 'uint64', 'sint32', 'sint64', 'bool'])
// proto2 default, spelled out: protobufjs otherwise packs repeated scalars.
const rep = (type: string, id: number): Field =>
  scalars.has(type) ? { type, id, rule: 'repeated', options: { packed: false } } : { type, id, rule: 'repeated' }
const packed = (type: string, id: number): Field => ({ type, id, rule: 'repeated', options: { packed: true } })

const onnx: Record<string, Msg | Enum> = {
  Version: {
    values: {
      _START_VERSION: 0,
      IR_VERSION_2017_10_10: 1,
      IR_VERSION_2017_10_30: 2,
      IR_VERSION_2017_11_3: 3,
      IR_VERSION_2019_1_22: 4,
      IR_VERSION_2019_3_18: 5,
      IR_VERSION_2019_9_19: 6,
      IR_VERSION_2020_5_8: 7,
      IR_VERSION_2021_7_30: 8,
      IR_VERSION_2023_5_5: 9,
      IR_VERSION_2024_3_25: 10,
      IR_VERSION: 11,
    },
  },
  AttributeProto: {
    fields: {
      name: opt('string', 1),
      ref_attr_name: opt('string', 21),
      doc_string: opt('string', 13),
      type: opt('AttributeType', 20),
      f: opt('float', 2),
      i: opt('int64', 3),
      s: opt('bytes', 4),
      t: opt('TensorProto', 5),
      g: opt('GraphProto', 6),
      sparse_tensor: opt('SparseTensorProto', 22),
      tp: opt('TypeProto', 14),
      floats: rep('float', 7),
      ints: rep('int64', 8),
      strings: rep('bytes', 9),
      tensors: rep('TensorProto', 10),
      graphs: rep('GraphProto', 11),
      sparse_tensors: rep('SparseTensorProto', 23),
      type_protos: rep('TypeProto', 15),
    },
    nested: {
      AttributeType: {
        values: {
          UNDEFINED: 0,
          FLOAT: 1,
          INT: 2,
          STRING: 3,
          TENSOR: 4,
          GRAPH: 5,
          SPARSE_TENSOR: 11,
          TYPE_PROTO: 13,
          FLOATS: 6,
          INTS: 7,
          STRINGS: 8,
          TENSORS: 9,
          GRAPHS: 10,
          SPARSE_TENSORS: 12,
          TYPE_PROTOS: 14,
        },
      },
    },
  },
  ValueInfoProto: {
    fields: {
      name: opt('string', 1),
      type: opt('TypeProto', 2),
      doc_string: opt('string', 3),
      metadata_props: rep('StringStringEntryProto', 4),
    },
  },
  NodeProto: {
    fields: {
      input: rep('string', 1),
      output: rep('string', 2),
      name: opt('string', 3),
      op_type: opt('string', 4),
      domain: opt('string', 7),
      overload: opt('string', 8),
      attribute: rep('AttributeProto', 5),
      doc_string: opt('string', 6),
      metadata_props: rep('StringStringEntryProto', 9),
      device_configurations: rep('NodeDeviceConfigurationProto', 10),
    },
  },
  IntIntListEntryProto: { fields: { key: opt('int64', 1), value: rep('int64', 2) } },
  NodeDeviceConfigurationProto: {
    fields: {
      configuration_id: opt('string', 1),
      sharding_spec: rep('ShardingSpecProto', 2),
      pipeline_stage: opt('int32', 3),
    },
  },
  ShardingSpecProto: {
    fields: {
      tensor_name: opt('string', 1),
      device: rep('int64', 2),
      index_to_device_group_map: rep('IntIntListEntryProto', 3),
      sharded_dim: rep('ShardedDimProto', 4),
    },
  },
  ShardedDimProto: { fields: { axis: opt('int64', 1), simple_sharding: rep('SimpleShardedDimProto', 2) } },
  SimpleShardedDimProto: {
    fields: { dim_value: opt('int64', 1), dim_param: opt('string', 2), num_shards: opt('int64', 3) },
    oneofs: { dim: { oneof: ['dim_value', 'dim_param'] } },
  },
  TrainingInfoProto: {
    fields: {
      initialization: opt('GraphProto', 1),
      algorithm: opt('GraphProto', 2),
      initialization_binding: rep('StringStringEntryProto', 3),
      update_binding: rep('StringStringEntryProto', 4),
    },
  },
  ModelProto: {
    fields: {
      ir_version: opt('int64', 1),
      opset_import: rep('OperatorSetIdProto', 8),
      producer_name: opt('string', 2),
      producer_version: opt('string', 3),
      domain: opt('string', 4),
      model_version: opt('int64', 5),
      doc_string: opt('string', 6),
      graph: opt('GraphProto', 7),
      metadata_props: rep('StringStringEntryProto', 14),
      training_info: rep('TrainingInfoProto', 20),
      functions: rep('FunctionProto', 25),
      configuration: rep('DeviceConfigurationProto', 26),
    },
  },
  DeviceConfigurationProto: {
    fields: { name: opt('string', 1), num_devices: opt('int32', 2), device: rep('string', 3) },
  },
  StringStringEntryProto: { fields: { key: opt('string', 1), value: opt('string', 2) } },
  TensorAnnotation: {
    fields: { tensor_name: opt('string', 1), quant_parameter_tensor_names: rep('StringStringEntryProto', 2) },
  },
  GraphProto: {
    fields: {
      node: rep('NodeProto', 1),
      name: opt('string', 2),
      initializer: rep('TensorProto', 5),
      sparse_initializer: rep('SparseTensorProto', 15),
      doc_string: opt('string', 10),
      input: rep('ValueInfoProto', 11),
      output: rep('ValueInfoProto', 12),
      value_info: rep('ValueInfoProto', 13),
      quantization_annotation: rep('TensorAnnotation', 14),
      metadata_props: rep('StringStringEntryProto', 16),
    },
  },
  TensorProto: {
    fields: {
      dims: rep('int64', 1),
      data_type: opt('int32', 2),
      segment: opt('Segment', 3),
      float_data: packed('float', 4),
      int32_data: packed('int32', 5),
      string_data: rep('bytes', 6),
      int64_data: packed('int64', 7),
      name: opt('string', 8),
      doc_string: opt('string', 12),
      raw_data: opt('bytes', 9),
      external_data: rep('StringStringEntryProto', 13),
      data_location: opt('DataLocation', 14),
      double_data: packed('double', 10),
      uint64_data: packed('uint64', 11),
      metadata_props: rep('StringStringEntryProto', 16),
    },
    nested: {
      DataType: {
        values: {
          UNDEFINED: 0,
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
          COMPLEX64: 14,
          COMPLEX128: 15,
          BFLOAT16: 16,
          FLOAT8E4M3FN: 17,
          FLOAT8E4M3FNUZ: 18,
          FLOAT8E5M2: 19,
          FLOAT8E5M2FNUZ: 20,
          UINT4: 21,
          INT4: 22,
          FLOAT4E2M1: 23,
        },
      },
      Segment: { fields: { begin: opt('int64', 1), end: opt('int64', 2) } },
      DataLocation: { values: { DEFAULT: 0, EXTERNAL: 1 } },
    },
  },
  SparseTensorProto: {
    fields: { values: opt('TensorProto', 1), indices: opt('TensorProto', 2), dims: rep('int64', 3) },
  },
  TensorShapeProto: {
    fields: { dim: rep('Dimension', 1) },
    nested: {
      Dimension: {
        fields: { dim_value: opt('int64', 1), dim_param: opt('string', 2), denotation: opt('string', 3) },
        oneofs: { value: { oneof: ['dim_value', 'dim_param'] } },
      },
    },
  },
  TypeProto: {
    fields: {
      tensor_type: opt('Tensor', 1),
      sequence_type: opt('Sequence', 4),
      map_type: opt('Map', 5),
      optional_type: opt('Optional', 9),
      sparse_tensor_type: opt('SparseTensor', 8),
      denotation: opt('string', 6),
    },
    oneofs: { value: { oneof: ['tensor_type', 'sequence_type', 'map_type', 'optional_type', 'sparse_tensor_type'] } },
    nested: {
      Tensor: { fields: { elem_type: opt('int32', 1), shape: opt('TensorShapeProto', 2) } },
      Sequence: { fields: { elem_type: opt('TypeProto', 1) } },
      Map: { fields: { key_type: opt('int32', 1), value_type: opt('TypeProto', 2) } },
      Optional: { fields: { elem_type: opt('TypeProto', 1) } },
      SparseTensor: { fields: { elem_type: opt('int32', 1), shape: opt('TensorShapeProto', 2) } },
    },
  },
  OperatorSetIdProto: { fields: { domain: opt('string', 1), version: opt('int64', 2) } },
  OperatorStatus: { values: { EXPERIMENTAL: 0, STABLE: 1 } },
  FunctionProto: {
    fields: {
      name: opt('string', 1),
      input: rep('string', 4),
      output: rep('string', 5),
      attribute: rep('string', 6),
      attribute_proto: rep('AttributeProto', 11),
      node: rep('NodeProto', 7),
      doc_string: opt('string', 8),
      opset_import: rep('OperatorSetIdProto', 9),
      domain: opt('string', 10),
      overload: opt('string', 13),
      value_info: rep('ValueInfoProto', 12),
      metadata_props: rep('StringStringEntryProto', 14),
    },
  },
}

/** protobufjs `Root.fromJSON` input; package `onnx`. */
export const onnxDescriptor = { nested: { onnx: { nested: onnx } } }
