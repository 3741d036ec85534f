// Request body limits of the local inference API [EF-7.1.1]: sized by the
// model named in the URL, so a request can never buffer much more than that
// model's inputs. A JSON body may hold up to JSON_CHARS_PER_ELEMENT characters
// per input element (a float written in full is ~24: generous on purpose), a
// binary body the input bytes; both plus a little slack for names and framing,
// and never more than the configured ceilings. Inputs with symbolic dims have
// no fixed size and get the ceiling.
import { bytesPerElement, isTensorType, type Manifest } from '@edgefleet/shared'

/** JSON text allowed per input element (digits, sign, exponent, separators). */
export const JSON_CHARS_PER_ELEMENT = 32
/** Room for tensor names, types, dims and the binary header. */
export const BODY_SLACK_BYTES = 64 * 1024

export interface BodyCeilings {
  /** Largest JSON body whatever the model (bytes). */
  maxJsonBodyBytes: number
  /** Largest binary body whatever the model (bytes). */
  maxBodyBytes: number
}

/** Elements and bytes of one request's inputs, or undefined when a dim is symbolic or a type unknown. */
export function inputSize(manifest: Manifest): { elements: number; bytes: number } | undefined {
  let elements = 0
  let bytes = 0
  for (const spec of manifest.inputs) {
    if (!isTensorType(spec.type)) return undefined
    let n = 1
    for (const d of spec.dims) {
      if (typeof d !== 'number' || d < 0) return undefined
      n *= d
    }
    elements += n
    bytes += n * bytesPerElement(spec.type)
  }
  return { elements, bytes }
}

/** Body limit for a request to a model (undefined manifest: the model is not loaded). */
export function bodyLimit(manifest: Manifest | undefined, binary: boolean, c: BodyCeilings): number {
  const ceiling = binary ? c.maxBodyBytes : c.maxJsonBodyBytes
  if (!manifest) return Math.min(ceiling, BODY_SLACK_BYTES) // answered 404 anyway
  const size = inputSize(manifest)
  if (!size) return ceiling
  // JSON carries numbers as text, or the bytes as base64 (4/3).
  const need = binary ? size.bytes : Math.max(size.elements * JSON_CHARS_PER_ELEMENT, Math.ceil((size.bytes * 4) / 3))
  return Math.min(ceiling, need + BODY_SLACK_BYTES)
}
