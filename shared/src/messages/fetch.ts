// Chunk requests (ef/v1/dev/{id}/fetch) [EF-2.7]. `join`: the agent has
// subscribed to the artifact's chunk topics and lists what it misses; the hub
// broadcasts each chunk once to all joined agents. `repair`: chunks the agent
// still misses, sent to it alone. `ack`: the last broadcast chunk it received,
// which paces the broadcast to the slowest live receiver (flow control on
// delivery, not on the broker's PUBACK). `done`: it holds the whole artifact.
import { Type, type Static } from '@sinclair/typebox'
import { codec } from '../schema.js'
import { Digest, Id, ProtocolVersion } from './common.js'

export const FetchOp = Type.Union([
  Type.Literal('join'),
  Type.Literal('repair'),
  Type.Literal('ack'),
  Type.Literal('done'),
])
export type FetchOp = Static<typeof FetchOp>

/** Indexes per request; larger sets are split over several requests. */
export const MAX_FETCH_CHUNKS = 4096

export const FetchRequest = Type.Object(
  {
    v: ProtocolVersion,
    deviceId: Id,
    artifact: Digest,
    /** Defaults to 'join' (the first request for an artifact). */
    op: Type.Optional(FetchOp),
    /** Missing chunk indexes (join, repair). */
    chunks: Type.Optional(Type.Array(Type.Integer({ minimum: 0 }), { maxItems: MAX_FETCH_CHUNKS })),
    /**
     * join: the agent starts this download now (a new command or a restarted
     * process), so nothing broadcast earlier is on its way to it: the hub
     * repairs such chunks at once instead of waiting for them [EF-2.7].
     * Absent: a re-join after a reconnect, which keeps its position.
     */
    fresh: Type.Optional(Type.Boolean()),
    /** ack: index of the last broadcast chunk the agent received. */
    last: Type.Optional(Type.Integer({ minimum: 0 })),
  },
  { additionalProperties: false },
)
export type FetchRequest = Static<typeof FetchRequest>

export const fetchCodec = codec(FetchRequest, 48 * 1024)
