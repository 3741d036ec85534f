// Commands from the hub to one device (ef/v1/dev/{id}/cmd) [EF-2.3]. Every
// command is signed by the hub: the agent verifies `sig` over the canonical
// JSON of the command without `sig`, with the key pinned at provisioning.
import { Type, type Static } from '@sinclair/typebox'
import { codec } from '../schema.js'
import { Id, Signature, Timestamp, Version } from './common.js'
import { Manifest } from './manifest.js'

const base = {
  v: Type.Literal(1),
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

export const Cmd = Type.Union([DeployCmd, RollbackCmd])
export type Cmd = Static<typeof Cmd>
export type DeployCmd = Static<typeof DeployCmd>
export type RollbackCmd = Static<typeof RollbackCmd>
export type UnsignedCmd = Cmd extends infer C ? (C extends Cmd ? Omit<C, 'sig'> : never) : never

export const cmdCodec = codec(Cmd, 9 * 1024 * 1024)
