// Chunk requests (ef/v1/dev/{id}/fetch) [EF-2.7]: an agent names the artifact
// and the chunk indexes it still misses; the hub publishes them on the
// artifact's chunk topics, where every subscribed agent may use them.
import { Type, type Static } from '@sinclair/typebox'
import { codec } from '../schema.js'
import { Digest, Id } from './common.js'

export const FetchRequest = Type.Object(
  {
    v: Type.Literal(1),
    deviceId: Id,
    artifact: Digest,
    chunks: Type.Array(Type.Integer({ minimum: 0 }), { minItems: 1, maxItems: 1024 }),
  },
  { additionalProperties: false },
)
export type FetchRequest = Static<typeof FetchRequest>

export const fetchCodec = codec(FetchRequest, 16 * 1024)
