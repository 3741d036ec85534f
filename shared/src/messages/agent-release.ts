// The signed description of an agent package [EF-11.3]: what the hub
// registered with `edgefleet agent release` and what a device checks the
// downloaded package against before it writes anything into a slot.
import { Type, type Static } from '@sinclair/typebox'
import { Digest, Version } from './common.js'

export const AGENT_PACKAGE_ARCHES = ['linux-x64', 'linux-arm64', 'linux-armv7'] as const
export type AgentPackageArch = (typeof AGENT_PACKAGE_ARCHES)[number]

export const AgentPackageArch = Type.Union(AGENT_PACKAGE_ARCHES.map((a) => Type.Literal(a)))

export const AgentRelease = Type.Object(
  {
    name: Type.Literal('edgefleet-agent'),
    version: Version,
    arch: AgentPackageArch,
    /** The inference runtime the package ships [EF-5.6]. */
    runtime: Type.Union([Type.Literal('native'), Type.Literal('wasm')]),
    /** sha256 of the .tar.gz as registered. */
    sha256: Digest,
    /** Size of the .tar.gz in bytes. */
    size: Type.Integer({ minimum: 1 }),
  },
  { additionalProperties: false },
)
export type AgentRelease = Static<typeof AgentRelease>

/** The package architecture a Node.js process runs on; undefined where no package exists (EF-11.1). */
export function agentArchOf(platform: string, arch: string): AgentPackageArch | undefined {
  if (platform !== 'linux') return undefined
  if (arch === 'x64') return 'linux-x64'
  if (arch === 'arm64') return 'linux-arm64'
  if (arch === 'arm') return 'linux-armv7'
  return undefined
}
