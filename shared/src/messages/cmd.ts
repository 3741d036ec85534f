// Commands from the hub to one device (ef/v1/dev/{id}/cmd) [EF-2.3]. Every
// command is signed by the hub: the agent verifies `sig` over the canonical
// JSON of the command without `sig`, with the key pinned at provisioning.
import { Type, type Static } from '@sinclair/typebox'
import { codec } from '../schema.js'
import { Id, ProtocolVersion, Signature, Timestamp, Version } from './common.js'
import { Manifest } from './manifest.js'
import { KeyRotation, MAX_KEY_CHAIN } from '../key-rotation.js'
import { AgentRelease } from './agent-release.js'

const base = {
  v: ProtocolVersion,
  /** Unique per command; agents ignore a command id they already executed [EF-2.3.2]. */
  id: Type.String({ minLength: 8, maxLength: 64 }),
  deviceId: Id,
  issuedAt: Timestamp,
  sig: Signature,
}

export const DeployCmd = Type.Object(
  {
    ...base,
    type: Type.Literal('deploy'),
    deploymentId: Type.String({ maxLength: 64 }),
    manifest: Manifest,
    manifestSig: Signature,
    /** A signed rollback may install a version older than the active one [EF-4.6]. */
    rollback: Type.Optional(Type.Boolean()),
    /** The hub's HTTP base URL, against which the manifest's artifact.url resolves [EF-4.10]. */
    httpBase: Type.Optional(Type.String({ maxLength: 512 })),
    /** An HTTP origin (CDN) serving builds at <artifactBase><artifact digest>; tried first [EF-4.13]. */
    artifactBase: Type.Optional(Type.String({ maxLength: 512 })),
  },
  { additionalProperties: false },
)

export const RollbackCmd = Type.Object(
  {
    ...base,
    type: Type.Literal('rollback'),
    model: Id,
    /** Roll back to the previous slot when omitted. */
    toVersion: Type.Optional(Version),
  },
  { additionalProperties: false },
)

/**
 * Runs a candidate build beside the live version on a sampled fraction of live
 * requests, off the hot path, and reports the comparison [EF-2.3.4].
 */
export const ShadowCmd = Type.Object(
  {
    ...base,
    type: Type.Literal('shadow'),
    manifest: Manifest,
    manifestSig: Signature,
    /** Fraction of live requests also run on the candidate (0..1). */
    fraction: Type.Number({ minimum: 0, maximum: 1 }),
  },
  { additionalProperties: false },
)

/** Makes the shadow candidate of `model` the live version (atomic switch, A/B slots) [EF-2.3.5]. */
export const PromoteCmd = Type.Object(
  { ...base, type: Type.Literal('promote'), model: Id, version: Version },
  { additionalProperties: false },
)

/** Stops shadowing `model` and deletes the candidate [EF-2.3.5]. */
export const DiscardCmd = Type.Object(
  { ...base, type: Type.Literal('discard'), model: Id, version: Type.Optional(Version) },
  { additionalProperties: false },
)

/** A rectangle of an image input blanked (set to 0) on the device before a sample leaves it [EF-2.9.5]. */
export const CaptureRegion = Type.Object(
  {
    /** Input tensor name. */
    input: Type.String({ minLength: 1, maxLength: 256 }),
    /** Where height and width sit in the 4-d tensor: NCHW (dims 2, 3) or NHWC (dims 1, 2). */
    layout: Type.Union([Type.Literal('NCHW'), Type.Literal('NHWC')]),
    /** Left column and top row, in pixels. */
    x: Type.Integer({ minimum: 0, maximum: 1_000_000 }),
    y: Type.Integer({ minimum: 0, maximum: 1_000_000 }),
    width: Type.Integer({ minimum: 1, maximum: 1_000_000 }),
    height: Type.Integer({ minimum: 1, maximum: 1_000_000 }),
  },
  { additionalProperties: false },
)
export type CaptureRegion = Static<typeof CaptureRegion>

const InputNames = Type.Array(Type.String({ minLength: 1, maxLength: 256 }), { maxItems: 64 })

/** The privacy filter the agent runs on a capture before it is queued [EF-2.9.5]. */
export const CapturePrivacy = Type.Object(
  {
    /** Inputs left out of the sample. */
    dropInputs: Type.Optional(InputNames),
    /** Outputs left out of the sample (an output can carry what an input held, e.g. an echo or an embedding). */
    dropOutputs: Type.Optional(InputNames),
    /** Inputs replaced by HMAC-SHA256(hashKey, dtype, dims, bytes) in hex. */
    hashInputs: Type.Optional(InputNames),
    /** Key of the input hashes (hex, set by the hub per policy): equal inputs hash alike within a policy. */
    hashKey: Type.Optional(Type.String({ pattern: '^[0-9a-f]{32,128}$' })),
    /** Rectangles blanked in image inputs. */
    blankRegions: Type.Optional(Type.Array(CaptureRegion, { maxItems: 32 })),
    /** Inputs that carry audio, besides those whose name says so (audio, wav, pcm, speech, waveform, mic). */
    audioInputs: Type.Optional(InputNames),
    /** Audio inputs leave the device only when true. */
    allowAudio: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
)
export type CapturePrivacy = Static<typeof CapturePrivacy>

/** What the agent captures for retraining, with hard byte caps [EF-2.9.2]. */
export const CapturePolicy = Type.Object(
  {
    /** The hub's fleet policy this came from [EF-8.15]; absent for a per-device policy. */
    policyId: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    /** Model this policy applies to; omitted = every model without its own policy. */
    model: Type.Optional(Id),
    /** Fraction of requests captured at random (0..1). */
    random: Type.Number({ minimum: 0, maximum: 1 }),
    /** Capture a request whose confidence is below this value [EF-2.6.4]. */
    confidenceBelow: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
    /** Capture a request on which the shadow candidate's top-1 disagreed with the live one. */
    disagreement: Type.Optional(Type.Boolean()),
    /** Bytes of captured samples per clock hour, across models. */
    maxBytesPerHour: Type.Integer({ minimum: 0 }),
    /** Bytes of captured samples waiting in the agent's queue at once. */
    maxBytesOnDisk: Type.Integer({ minimum: 0 }),
    /** Run on the device before a sample is stored or sent [EF-2.9.5]. */
    privacy: Type.Optional(CapturePrivacy),
  },
  { additionalProperties: false },
)
export type CapturePolicy = Static<typeof CapturePolicy>

/** Replaces the capture policies (an empty list stops capture) [EF-2.3.6]. */
export const CapturePolicyCmd = Type.Object(
  { ...base, type: Type.Literal('capture-policy'), policies: Type.Array(CapturePolicy, { maxItems: 64 }) },
  { additionalProperties: false },
)

/** Simulated device conditions for test devices; `null` returns a field to what the OS shows [EF-2.3.7]. */
export const ConditionsCmd = Type.Object(
  {
    ...base,
    type: Type.Literal('conditions'),
    network: Type.Optional(
      Type.Union([Type.Literal('metered'), Type.Literal('unmetered'), Type.Literal('unknown'), Type.Null()]),
    ),
    power: Type.Optional(
      Type.Union([Type.Literal('charging'), Type.Literal('battery'), Type.Literal('unknown'), Type.Null()]),
    ),
    idle: Type.Optional(Type.Union([Type.Boolean(), Type.Null()])),
  },
  { additionalProperties: false },
)

/**
 * Announces the hub's new signing key [EF-3.6]: the chain of every rotation,
 * which the agent walks from the key it trusts. The command itself is signed
 * with the newest key, which the walk must reach.
 */
export const HubKeyCmd = Type.Object(
  { ...base, type: Type.Literal('hub-key'), chain: Type.Array(KeyRotation, { minItems: 1, maxItems: MAX_KEY_CHAIN }) },
  { additionalProperties: false },
)

/**
 * Replaces the agent itself [EF-11.4]: the device receives the package by
 * chunk broadcast when `release` lists its chunks, else (and as the fallback)
 * downloads it from `url` (against `httpBase`); checks it against `release`
 * (signed again with the current key as `releaseSig`), stages it in an agent slot and hands over;
 * the new agent must confirm within `deadlineMs` or the previous one returns.
 */
export const AgentUpdateCmd = Type.Object(
  {
    ...base,
    type: Type.Literal('agent-update'),
    release: AgentRelease,
    releaseSig: Signature,
    /** A signed rollback may install an older agent than the running one [EF-11.5]. */
    rollback: Type.Optional(Type.Boolean()),
    /** From the hand-over to the new agent's confirmation (started, connected, healthy). */
    deadlineMs: Type.Integer({ minimum: 1000, maximum: 3_600_000 }),
    /** Path of the package on the hub's HTTP API, resolved against httpBase [EF-4.10]. */
    url: Type.String({ minLength: 1, maxLength: 512 }),
    httpBase: Type.String({ minLength: 1, maxLength: 512 }),
  },
  { additionalProperties: false },
)

export const Cmd = Type.Union([
  DeployCmd,
  RollbackCmd,
  ShadowCmd,
  PromoteCmd,
  DiscardCmd,
  CapturePolicyCmd,
  ConditionsCmd,
  HubKeyCmd,
  AgentUpdateCmd,
])
export type Cmd = Static<typeof Cmd>
export type DeployCmd = Static<typeof DeployCmd>
export type RollbackCmd = Static<typeof RollbackCmd>
export type ShadowCmd = Static<typeof ShadowCmd>
export type PromoteCmd = Static<typeof PromoteCmd>
export type DiscardCmd = Static<typeof DiscardCmd>
export type CapturePolicyCmd = Static<typeof CapturePolicyCmd>
export type ConditionsCmd = Static<typeof ConditionsCmd>
export type HubKeyCmd = Static<typeof HubKeyCmd>
export type AgentUpdateCmd = Static<typeof AgentUpdateCmd>
export type UnsignedCmd = Cmd extends infer C ? (C extends Cmd ? Omit<C, 'sig'> : never) : never

export const cmdCodec = codec(Cmd, 9 * 1024 * 1024)
