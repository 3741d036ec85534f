// One definition per message: a TypeBox schema is both the TypeScript type
// (Static<>) and the runtime validator (compiled once), and fastify routes use
// the very same JSON Schema objects.
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler'
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

export function codec<T extends TSchema>(schema: T, maxBytes: number): MessageCodec<T> {
  let compiled: TypeCheck<T> | undefined
  const checker = () => (compiled ??= TypeCompiler.Compile(schema))
  const check = (value: unknown): Static<T> => {
    const c = checker()
    if (!c.Check(value)) {
      const first = c.Errors(value).First()
      const where = first ? `${first.path || '/'} ${first.message}` : 'invalid'
      throw new EdgeFleetError('EF_ERR_MSG_SCHEMA', where)
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
        value = JSON.parse(typeof payload === 'string' ? payload : Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString('utf8'))
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
