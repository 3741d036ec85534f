// Progress and results of commands (ef/v1/dev/{id}/events) [EF-2.4].
import { Type, type Static } from '@sinclair/typebox'
import { codec } from '../schema.js'
import { Digest, ErrorCodeField, Id, ProtocolVersion, Timestamp, Version } from './common.js'

export const EVENT_KINDS = [
  'received',
  'downloading',
  'downloaded',
  'verified',
  'staged',
  'activated',
  'rejected',
  'health_failed',
  'failed',
  'rolled_back',
  /** A chunk failed its hash check and was fetched again (not a result). */
  'chunk_rejected',
  /** A model version was activated on a later execution provider than the profile's first: `message` says why [EF-5.7]. */
  'provider_fallback',
  /** The command could not go on for a transient reason (`code`: storage full, connection lost); the agent retries by itself (not a result) [EF-2.4.1]. */
  'deferred',
  /** The agent runs a new version after a self-update and confirmed it (`version`: the agent's) [EF-11.6]. */
  'agent_updated',
  /** A new agent did not confirm in time; the previous one runs again (`code`: EF_ERR_AGENT_ROLLED_BACK) [EF-11.7]. */
  'agent_rolled_back',
  /** The agent's event loop did not turn for longer than its threshold (`message`: how long); not a result [EF-11.10]. */
  'loop_blocked',
] as const

export const DeviceEvent = Type.Object(
  {
    v: ProtocolVersion,
    deviceId: Id,
    ts: Timestamp,
    kind: Type.Union(EVENT_KINDS.map((k) => Type.Literal(k))),
    cmdId: Type.Optional(Type.String({ maxLength: 64 })),
    deploymentId: Type.Optional(Type.String({ maxLength: 64 })),
    model: Type.Optional(Id),
    version: Type.Optional(Version),
    artifact: Type.Optional(Digest),
    /** Set on rejected / health_failed / failed. */
    code: Type.Optional(ErrorCodeField),
    message: Type.Optional(Type.String({ maxLength: 2048 })),
    /** Download progress in bytes (received, total). */
    bytes: Type.Optional(Type.Integer({ minimum: 0 })),
    totalBytes: Type.Optional(Type.Integer({ minimum: 0 })),
    /** On `downloaded`: chunk bytes that crossed the network for this download, duplicates included. */
    receivedBytes: Type.Optional(Type.Integer({ minimum: 0 })),
  },
  { additionalProperties: false },
)
export type DeviceEvent = Static<typeof DeviceEvent>
export type EventKind = (typeof EVENT_KINDS)[number]

export const eventCodec = codec(DeviceEvent, 16 * 1024)
