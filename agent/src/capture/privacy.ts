// The capture privacy filter [EF-2.9.5]: runs on the device, on a copy of a
// request's inputs and outputs, before a sample is encoded, queued or sent. It
// drops named inputs and outputs and audio ones (unless the policy allows
// audio), replaces hashed
// inputs by a keyed hash, and blanks rectangles of image tensors. It fails
// closed: an input a region cannot be applied to is dropped, never sent raw.
import { createHmac } from 'node:crypto'
import type { CapturePrivacy, CaptureRegion, Sample } from '@edgefleet/shared'
import type { Tensor } from '../runtime/session.js'

/** Input names that say they carry audio; the policy's `audioInputs` adds to them. */
const AUDIO_NAME = /(^|[^a-z])(audio|wav|wave|waveform|pcm|speech|mic)([^a-z]|$)/i

interface FilteredInputs {
  /** What may leave the device. */
  inputs: Record<string, Tensor>
  /** What the filter did, carried in the sample (absent when it did nothing). */
  report?: NonNullable<Sample['privacy']>
}

function isAudioInput(name: string, privacy: CapturePrivacy | undefined): boolean {
  return AUDIO_NAME.test(name) || (privacy?.audioInputs?.includes(name) ?? false)
}

/** Inputs that leave the device as tensors (not dropped, not hashed): the floor of a sample's size. */
export function keptInputNames(names: string[], privacy: CapturePrivacy | undefined): string[] {
  if (!privacy) return names.filter((n) => !isAudioInput(n, privacy))
  return names.filter(
    (n) =>
      !privacy.dropInputs?.includes(n) &&
      !privacy.hashInputs?.includes(n) &&
      (privacy.allowAudio === true || !isAudioInput(n, privacy)),
  )
}

/** Keyed hash of a tensor: type and dims are part of it, so a reshaped input hashes differently. */
function hashTensor(t: Tensor, key: string): string {
  const bytes = Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength)
  return createHmac('sha256', Buffer.from(key, 'hex'))
    .update(`${t.type}[${t.dims.join(',')}]\u0000`)
    .update(bytes)
    .digest('hex')
}

/** Height and width axes of a 4-d tensor in this layout; undefined when the tensor is not 4-d. */
function imageAxes(t: Tensor, layout: CaptureRegion['layout']): { h: number; w: number } | undefined {
  if (t.dims.length !== 4) return undefined
  return layout === 'NCHW' ? { h: 2, w: 3 } : { h: 1, w: 2 }
}

/** Sets every element inside the rectangle (clipped to the image) to zero, on all batches and channels. */
function blank(image: Tensor, region: CaptureRegion): boolean {
  const axes = imageAxes(image, region.layout)
  if (!axes) return false
  const [d0, d1, d2, d3] = image.dims
  const height = image.dims[axes.h]
  const width = image.dims[axes.w]
  const y1 = Math.min(height, region.y + region.height)
  const x1 = Math.min(width, region.x + region.width)
  const zero = (i: number) => {
    if (image.data instanceof BigInt64Array || image.data instanceof BigUint64Array) image.data[i] = 0n
    else image.data[i] = 0
  }
  // Index of element (a, b, c, d) in a row-major 4-d tensor.
  const at = (a: number, b: number, c: number, d: number) => ((a * d1 + b) * d2 + c) * d3 + d
  for (let n = 0; n < d0; n++)
    for (let row = region.y; row < y1; row++)
      for (let col = region.x; col < x1; col++)
        if (region.layout === 'NCHW') for (let ch = 0; ch < d1; ch++) zero(at(n, ch, row, col))
        else for (let ch = 0; ch < d3; ch++) zero(at(n, row, col, ch))
  return true
}

const copyOf = (t: Tensor): Tensor => ({ type: t.type, dims: [...t.dims], data: t.data.slice() })

/**
 * Applies the policy's privacy filter to a request's inputs. The live
 * tensors are never modified (the shadow worker may still read them): a
 * blanked input is a copy.
 */
export function filterInputs(inputs: Record<string, Tensor>, privacy: CapturePrivacy | undefined): FilteredInputs {
  const dropped: string[] = []
  const hashed: Record<string, string> = {}
  const blanked: string[] = []
  const out: Record<string, Tensor> = {}
  for (const [name, tensor] of Object.entries(inputs)) {
    if (privacy?.dropInputs?.includes(name) || (privacy?.allowAudio !== true && isAudioInput(name, privacy))) {
      dropped.push(name)
      continue
    }
    if (privacy?.hashInputs?.includes(name)) {
      hashed[name] = hashTensor(tensor, privacy.hashKey ?? '')
      continue
    }
    const regions = privacy?.blankRegions?.filter((r) => r.input === name) ?? []
    if (regions.length === 0) {
      out[name] = tensor
      continue
    }
    const copy = copyOf(tensor)
    if (regions.every((r) => blank(copy, r))) {
      out[name] = copy
      blanked.push(name)
    } else dropped.push(name) // a region that cannot be applied must not let the raw image out
  }
  const report: NonNullable<Sample['privacy']> = {
    ...(dropped.length ? { dropped } : {}),
    ...(Object.keys(hashed).length ? { hashed } : {}),
    ...(blanked.length ? { blanked } : {}),
  }
  return Object.keys(report).length ? { inputs: out, report } : { inputs: out }
}

/** Outputs that may leave: not named by `dropOutputs`, not audio unless allowed. */
export function filterOutputs(
  outputs: Record<string, Tensor>,
  privacy: CapturePrivacy | undefined,
): { outputs: Record<string, Tensor>; dropped: string[] } {
  const kept: Record<string, Tensor> = {}
  const dropped: string[] = []
  for (const [name, tensor] of Object.entries(outputs)) {
    if (privacy?.dropOutputs?.includes(name) || (privacy?.allowAudio !== true && AUDIO_NAME.test(name)))
      dropped.push(name)
    else kept[name] = tensor
  }
  return { outputs: kept, dropped }
}
