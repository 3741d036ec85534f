// Building blocks shared by several messages.
import { Type, type Static } from '@sinclair/typebox'

/** The wire format's version: every JSON message carries it as `v` [EF-2.10]. */
export const PROTOCOL_VERSION = 1 as const
/** Schema of the `v` member: exactly this protocol version. */
export const ProtocolVersion = Type.Literal(PROTOCOL_VERSION)

export const Id = Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$' })
export const Digest = Type.String({ pattern: '^[0-9a-f]{64}$' })
export const Version = Type.String({ pattern: '^\\d{1,9}(\\.\\d{1,9}){0,3}$' })
export const Timestamp = Type.Integer({ minimum: 0, description: 'milliseconds since the Unix epoch' })
export const Signature = Type.String({ pattern: '^[A-Za-z0-9_-]{86}$', description: 'base64url ed25519 signature' })
export const ErrorCodeField = Type.String({ pattern: '^EF_ERR_[A-Z0-9_]+$' })

export const TensorType = Type.Union([
  Type.Literal('float32'),
  Type.Literal('float16'),
  Type.Literal('float64'),
  Type.Literal('int8'),
  Type.Literal('uint8'),
  Type.Literal('int16'),
  Type.Literal('uint16'),
  Type.Literal('int32'),
  Type.Literal('uint32'),
  Type.Literal('int64'),
  Type.Literal('uint64'),
  Type.Literal('bool'),
])
export type TensorType = Static<typeof TensorType>

/** Declared shape of a model input or output; symbolic dimensions are strings or -1. */
export const TensorSpec = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 256 }),
    type: Type.String({ maxLength: 32 }),
    dims: Type.Array(Type.Union([Type.Integer(), Type.String({ maxLength: 64 })]), { maxItems: 16 }),
  },
  { additionalProperties: false },
)
export type TensorSpec = Static<typeof TensorSpec>

/**
 * A tensor value: either `data` (JSON numbers, or decimal strings for 64-bit
 * integers) or `b64` (raw little-endian bytes, base64) [EF-2.5].
 */
export const TensorValue = Type.Object(
  {
    type: TensorType,
    dims: Type.Array(Type.Integer({ minimum: 0 }), { maxItems: 16 }),
    data: Type.Optional(Type.Array(Type.Union([Type.Number(), Type.String({ maxLength: 24 }), Type.Boolean()]))),
    b64: Type.Optional(Type.String()),
  },
  { additionalProperties: false },
)
export type TensorValue = Static<typeof TensorValue>
