// The binary tensor format of the local API [EF-7.1], for inputs too large to
// send as JSON numbers: u32 LE header length H, H bytes of UTF-8 JSON
// {"inputs": {name: {type, dims, offset, length}}} (offsets from the end of the
// header), then raw little-endian tensor bytes. Answers use the same layout
// with "outputs" (plus model, version, latencyMs in the header).
import {
  EdgeFleetError,
  bytesPerElement,
  describeType,
  elementCount,
  isTensorType,
  typedView,
  type TensorType,
} from '@edgefleet/shared'
import type { Tensor } from '../runtime/session.js'

export const BINARY_CONTENT_TYPE = 'application/x-edgefleet-tensors'

interface Entry {
  type: TensorType
  dims: number[]
  offset: number
  length: number
}

const bad = (detail: string) => new EdgeFleetError('EF_ERR_INFER_BAD_TENSOR', detail)

export function decodeBinary(body: Buffer): Record<string, Tensor> {
  if (body.length < 4) throw bad('binary body shorter than its 4-byte header length')
  const headerLength = body.readUInt32LE(0)
  if (4 + headerLength > body.length)
    throw bad(`header length ${headerLength} past the end of a ${body.length}-byte body`)
  let header: { inputs?: Record<string, Entry> }
  try {
    header = JSON.parse(body.subarray(4, 4 + headerLength).toString('utf8')) as typeof header
  } catch (err) {
    throw new EdgeFleetError('EF_ERR_MSG_JSON', `binary header: ${(err as Error).message}`)
  }
  if (!header || typeof header.inputs !== 'object' || header.inputs === null || Array.isArray(header.inputs))
    throw bad('binary header must be {"inputs": {...}}')
  const data = body.subarray(4 + headerLength)
  const out: Record<string, Tensor> = {}
  for (const [name, entry] of Object.entries(header.inputs)) {
    if (!entry || typeof entry !== 'object' || !isTensorType(entry.type))
      throw bad(`${name}: unknown type ${describeType((entry as Partial<Entry> | null)?.type)}`)
    if (
      !Array.isArray(entry.dims) ||
      entry.dims.length > 16 ||
      !entry.dims.every((d) => Number.isSafeInteger(d) && d >= 0)
    )
      throw bad(`${name}: dims must be non-negative integers`)
    if (
      !Number.isSafeInteger(entry.offset) ||
      !Number.isSafeInteger(entry.length) ||
      entry.offset < 0 ||
      entry.length < 0 ||
      entry.offset + entry.length > data.length
    )
      throw bad(`${name}: offset/length outside the body`)
    const want = elementCount(entry.dims) * bytesPerElement(entry.type)
    if (want !== entry.length)
      throw bad(`${name}: ${entry.length} bytes for dims [${entry.dims.join(',')}] of ${entry.type} (expected ${want})`)
    // Copy into an aligned buffer: typed arrays need offsets that are multiples of their element size.
    const copy = new ArrayBuffer(entry.length)
    new Uint8Array(copy).set(data.subarray(entry.offset, entry.offset + entry.length))
    out[name] = {
      type: entry.type,
      dims: [...entry.dims],
      data: typedView(entry.type, copy, 0, elementCount(entry.dims)),
    }
  }
  return out
}

export function encodeBinary(meta: Record<string, unknown>, outputs: Record<string, Tensor>): Buffer {
  const entries: Record<string, Entry> = {}
  const parts: Buffer[] = []
  let offset = 0
  for (const [name, t] of Object.entries(outputs)) {
    const b = Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength)
    entries[name] = { type: t.type, dims: t.dims, offset, length: b.length }
    parts.push(b)
    offset += b.length
  }
  const header = Buffer.from(JSON.stringify({ ...meta, outputs: entries }))
  const len = Buffer.alloc(4)
  len.writeUInt32LE(header.length, 0)
  return Buffer.concat([len, header, ...parts])
}

/** Builds a binary request body (for clients and tests). */
export function encodeBinaryRequest(inputs: Record<string, Tensor>): Buffer {
  const b = encodeBinary({}, inputs)
  // Same layout; the request header says "inputs".
  const h = b.readUInt32LE(0)
  const header = JSON.parse(b.subarray(4, 4 + h).toString('utf8')) as { outputs: unknown }
  const nh = Buffer.from(JSON.stringify({ inputs: header.outputs }))
  const len = Buffer.alloc(4)
  len.writeUInt32LE(nh.length, 0)
  return Buffer.concat([len, nh, b.subarray(4 + h)])
}

export function decodeBinaryResponse(body: Buffer): { meta: Record<string, unknown>; outputs: Record<string, Tensor> } {
  const headerLength = body.readUInt32LE(0)
  const header = JSON.parse(body.subarray(4, 4 + headerLength).toString('utf8')) as Record<string, unknown> & {
    outputs: Record<string, Entry>
  }
  const { outputs, ...meta } = header
  const swapped = Buffer.concat([
    Buffer.alloc(4),
    Buffer.from(JSON.stringify({ inputs: outputs })),
    body.subarray(4 + headerLength),
  ])
  swapped.writeUInt32LE(swapped.length - 4 - (body.length - 4 - headerLength), 0)
  return { meta, outputs: decodeBinary(swapped) }
}
