// Tensor-aligned chunking of ONNX artifacts [EF-4.2]. Chunk boundaries fall
// exactly at the start and end of every tensor's data (initializers, Constant
// node values, tensors inside If/Loop/Scan bodies), so a new version in which
// only some tensors changed shares every other chunk with the old one and an
// update moves about only the changed tensors' bytes. Large tensors are split
// at fixed offsets from their own start; the protobuf framing between tensors
// forms its own (small) chunks. The walk reads the protobuf wire format
// directly: it needs offsets, which a decoder does not give.
import { DEFAULT_CHUNK_SIZE } from '@edgefleet/shared'

type Kind = 'model' | 'graph' | 'node' | 'attr' | 'tensor' | 'sparse'

/** Length-delimited fields worth descending into, per message kind (onnx.proto field numbers). */
const CHILDREN: Record<Exclude<Kind, 'tensor'>, Record<number, Kind>> = {
  model: { 7: 'graph' },
  graph: { 1: 'node', 5: 'tensor', 15: 'sparse' },
  node: { 5: 'attr' },
  attr: { 5: 'tensor', 6: 'graph', 10: 'tensor', 11: 'graph', 22: 'sparse', 23: 'sparse' },
  sparse: { 1: 'tensor', 2: 'tensor' },
}
/** TensorProto fields holding element data (packed repeated or raw bytes). */
const TENSOR_DATA = new Set([4, 5, 7, 9, 10, 11])

/** Tensors smaller than this stay inside the framing chunk around them (shape constants and the like). */
export const MIN_TENSOR_CHUNK = 64

class Reader {
  constructor(readonly b: Uint8Array) {}
  varint(pos: number): [number, number] {
    let v = 0
    let mul = 1
    for (let i = 0; i < 10; i++) {
      const byte = this.b[pos++]
      if (byte === undefined) throw new RangeError('truncated varint')
      v += (byte & 0x7f) * mul
      if ((byte & 0x80) === 0) return [v, pos]
      mul *= 128
    }
    throw new RangeError('varint too long')
  }
}

function walk(
  reader: Reader,
  start: number,
  end: number,
  kind: Kind,
  regions: [number, number][],
  depth: number,
): void {
  if (depth > 64) throw new RangeError('nesting too deep')
  let pos = start
  while (pos < end) {
    const [key, p1] = reader.varint(pos)
    const field = Math.floor(key / 8)
    const wire = key & 7
    pos = p1
    if (wire === 0) pos = reader.varint(pos)[1]
    else if (wire === 1) pos += 8
    else if (wire === 5) pos += 4
    else if (wire === 2) {
      const [len, p2] = reader.varint(pos)
      const fieldStart = p2
      const fieldEnd = p2 + len
      if (fieldEnd > end) throw new RangeError('field overruns its message')
      if (kind === 'tensor') {
        if (TENSOR_DATA.has(field) && len >= MIN_TENSOR_CHUNK) regions.push([fieldStart, fieldEnd])
      } else {
        const child = CHILDREN[kind][field]
        if (child) walk(reader, fieldStart, fieldEnd, child, regions, depth + 1)
      }
      pos = fieldEnd
    } else throw new RangeError(`unsupported wire type ${wire}`)
  }
  if (pos !== end) throw new RangeError('message overruns its bounds')
}

/**
 * Cut offsets for `chunkArtifact`: every tensor data region is its own chunk
 * (split every `chunkSize` bytes from its start), framing in between is cut
 * every `chunkSize` bytes. Not an ONNX model: fixed-size cuts.
 */
export function tensorAlignedBoundaries(bytes: Uint8Array, chunkSize = DEFAULT_CHUNK_SIZE): number[] {
  const regions: [number, number][] = []
  try {
    walk(new Reader(bytes), 0, bytes.length, 'model', regions, 0)
  } catch {
    regions.length = 0
  }
  regions.sort((a, b) => a[0] - b[0])
  const cuts: number[] = []
  const fill = (from: number, to: number) => {
    for (let off = from + chunkSize; off < to; off += chunkSize) cuts.push(off)
  }
  let pos = 0
  for (const [s, e] of regions) {
    if (s < pos) continue // overlapping regions cannot happen in valid protobuf; stay safe
    fill(pos, s)
    if (s > 0) cuts.push(s)
    fill(s, e)
    if (e < bytes.length) cuts.push(e)
    pos = e
  }
  fill(pos, bytes.length)
  return [...new Set(cuts)].filter((c) => c > 0 && c < bytes.length).sort((a, b) => a - b)
}
