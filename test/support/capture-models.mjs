// A small multi-input ONNX model for capture privacy tests, written with the
// hub's own protobuf writer (built dist): an NCHW image [1,3,8,8] scored by
// Flatten → MatMul → y[1,2], plus a user id [1,4] and an audio clip [1,16]
// passed through, so a capture carries an image, an identifier and audio.
import { join } from 'node:path'
import { ROOT } from './fleet.mjs'

export const IMAGE_DIMS = [1, 3, 8, 8]

export async function imageModel(seed = 1) {
  const { encodeModel } = await import(join(ROOT, 'hub', 'dist', 'compiler', 'onnx', 'proto.js'))
  const { makeTensor } = await import(join(ROOT, 'hub', 'dist', 'compiler', 'onnx', 'tensor.js'))
  const weights = new Float32Array(192 * 2)
  let state = seed >>> 0
  for (let i = 0; i < weights.length; i++) {
    state = (state * 1664525 + 1013904223) >>> 0
    weights[i] = (state / 4294967296 - 0.5) * 0.2
  }
  const valueInfo = (name, dims) => ({
    name,
    type: { tensor_type: { elem_type: 1, shape: { dim: dims.map((d) => ({ dim_value: d })) } } },
  })
  const op = (op_type, input, output) => ({ op_type, input, output, name: output[0], attribute: [] })
  return encodeModel({
    ir_version: 8,
    opset_import: [{ domain: '', version: 13 }],
    producer_name: 'edgefleet-tests',
    graph: {
      name: 'cam',
      node: [
        op('Flatten', ['image'], ['flat']),
        op('MatMul', ['flat', 'w'], ['y']),
        op('Identity', ['user_id'], ['user_echo']),
        op('Identity', ['audio_pcm'], ['audio_echo']),
      ],
      input: [valueInfo('image', IMAGE_DIMS), valueInfo('user_id', [1, 4]), valueInfo('audio_pcm', [1, 16])],
      output: [valueInfo('y', [1, 2]), valueInfo('user_echo', [1, 4]), valueInfo('audio_echo', [1, 16])],
      initializer: [makeTensor('w', 1, [192, 2], weights)],
      value_info: [],
    },
  })
}

/** A request for the agent's local API: every image element 0.5, a user id, and an audio ramp. */
export function camRequest(userId = [7, 8, 9, 10]) {
  return {
    inputs: {
      image: { type: 'float32', dims: IMAGE_DIMS, data: new Array(192).fill(0.5) },
      user_id: { type: 'float32', dims: [1, 4], data: userId },
      audio_pcm: { type: 'float32', dims: [1, 16], data: Array.from({ length: 16 }, (_, i) => i / 16) },
    },
  }
}
