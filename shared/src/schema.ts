// One definition per message: a TypeBox schema is both the TypeScript type
// (Static<>) and the runtime validator (compiled once), and fastify routes use
// the very same JSON Schema objects.
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler'
import type { ValueError } from '@sinclair/typebox/errors'
import type { Static, TSchema } from '@sinclair/typebox'
import { EdgeFleetError } from './errors.js'

export interface MessageCodec<T extends TSchema> {
  readonly schema: T
  /** Largest accepted payload in bytes [EF-2.2]. */
  readonly maxBytes: number
  /** Parses and validates a wire payload; throws EdgeFleetError with EF_ERR_MSG_* codes. */
  decode(payload: Uint8Array | string): Static<T>
  /** Validates an object already in memory (same errors as decode). */
  check(value: unknown): Static<T>
  encode(value: Static<T>): Buffer
}

/**
 * Path and message of a validation error. A union (e.g. the command variants)
 * reports only "Expected union value" at its root; descend into the variant
 * that came closest (fewest errors) so the detail names the real problem.
 */
function where(error: ValueError): string {
  let deepest = error
  for (let depth = 0; depth < 8 && deepest.errors.length > 0; depth++) {
    let best: ValueError | undefined
    let bestCount = Number.POSITIVE_INFINITY
    for (const variant of deepest.errors) {
      let count = 0
      let firstOfVariant: ValueError | undefined
      for (const ve of variant) {
        firstOfVariant ??= ve
        if (++count >= 64) break // bound the work on large invalid payloads
      }
      if (firstOfVariant && count < bestCount) {
        best = firstOfVariant
        bestCount = count
      }
    }
    if (!best) break
    deepest = best
  }
  return `${deepest.path || '/'} ${deepest.message}`
}

export function codec<T extends TSchema>(schema: T, maxBytes: number): MessageCodec<T> {
  let compiled: TypeCheck<T> | undefined
  const checker = () => (compiled ??= TypeCompiler.Compile(schema))
  const check = (value: unknown): Static<T> => {
    const c = checker()
    if (!c.Check(value)) {
      const first = c.Errors(value).First()
      throw new EdgeFleetError('EF_ERR_MSG_SCHEMA', first ? where(first) : 'invalid')
    }
    return value
  }
  return {
    schema,
    maxBytes,
    check,
    decode(payload) {
      const size = typeof payload === 'string' ? Buffer.byteLength(payload) : payload.byteLength
      if (size > maxBytes) throw new EdgeFleetError('EF_ERR_MSG_TOO_LARGE', `${size} bytes > ${maxBytes}`)
      let value: unknown
      try {
        value = JSON.parse(
          typeof payload === 'string'
            ? payload
            : Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString('utf8'),
        )
      } catch (err) {
        throw new EdgeFleetError('EF_ERR_MSG_JSON', (err as Error).message)
      }
      return check(value)
    },
    encode(value) {
      return Buffer.from(JSON.stringify(value))
    },
  }
}
