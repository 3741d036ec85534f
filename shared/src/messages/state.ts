// Device state (ef/v1/dev/{id}/state), retained; the agent's last will
// publishes {online:false} on the same topic [EF-2.1].
import { Type, type Static } from '@sinclair/typebox'
import { codec } from '../schema.js'
import { Digest, ErrorCodeField, Id, ProtocolVersion, Timestamp, Version } from './common.js'
import { Precision } from './manifest.js'

export const LoadedModel = Type.Object(
  {
    name: Id,
    version: Version,
    precision: Precision,
    artifact: Digest,
    slot: Type.Union([Type.Literal('a'), Type.Literal('b')]),
    /** Previous verified version kept in the other slot, if any. */
    previous: Type.Optional(Version),
    /** The execution provider the version's session runs on (`cpu`, `cuda`, `wasm`, …) [EF-5.7]. */
    provider: Type.Optional(Type.String({ minLength: 1, maxLength: 32 })),
  },
  { additionalProperties: false },
)
export type LoadedModel = Static<typeof LoadedModel>

/** A deployment outcome the agent knows, so the hub can repair a lost event from the state [EF-2.1.4]. */
export const KnownOutcome = Type.Object(
  {
    deploymentId: Type.String({ maxLength: 64 }),
    kind: Type.Union([
      Type.Literal('activated'),
      Type.Literal('rejected'),
      Type.Literal('health_failed'),
      Type.Literal('failed'),
      Type.Literal('rolled_back'),
    ]),
    code: Type.Optional(ErrorCodeField),
  },
  { additionalProperties: false },
)
export type KnownOutcome = Static<typeof KnownOutcome>

export const DeviceState = Type.Object(
  {
    v: ProtocolVersion,
    deviceId: Id,
    online: Type.Boolean(),
    ts: Timestamp,
    profile: Type.Optional(Id),
    agentVersion: Type.Optional(Type.String({ maxLength: 32 })),
    /** This agent receives agent packages by chunk broadcast: the hub sends it releases with their chunk list [EF-11.4]. */
    agentChunks: Type.Optional(Type.Boolean()),
    models: Type.Optional(Type.Array(LoadedModel, { maxItems: 64 })),
    freeStorageBytes: Type.Optional(Type.Integer({ minimum: 0 })),
    network: Type.Optional(Type.Union([Type.Literal('metered'), Type.Literal('unmetered'), Type.Literal('unknown')])),
    /** Power source where the OS shows it (or simulated from config) [EF-2.1.2]. */
    power: Type.Optional(Type.Union([Type.Literal('charging'), Type.Literal('battery'), Type.Literal('unknown')])),
    /** Whether the device is idle (low CPU load, or simulated) [EF-2.1.2]. */
    idle: Type.Optional(Type.Boolean()),
    /** The hub public key the agent trusts now; the hub re-announces a rotation to an agent still on an older one [EF-3.6]. */
    hubKey: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9_-]{43}$' })),
    /** Final outcomes of the device's latest deployments, newest last (at most 32) [EF-2.1.4]. */
    outcomes: Type.Optional(Type.Array(KnownOutcome, { maxItems: 32 })),
    /** Port of the local inference API on the device's loopback. */
    apiPort: Type.Optional(Type.Integer({ minimum: 0, maximum: 65535 })),
  },
  { additionalProperties: false },
)
export type DeviceState = Static<typeof DeviceState>

export const stateCodec = codec(DeviceState, 64 * 1024)
