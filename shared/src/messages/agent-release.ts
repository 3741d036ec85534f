// The signed description of an agent package [EF-11.3]: what the hub
// registered with `edgefleet agent release` and what a device checks the
// downloaded package against before it writes anything into a slot; its
// chunk list lets the package travel the models' broadcast path [EF-11.4].
import { Type, type Static } from '@sinclair/typebox'
import { Digest, Version } from './common.js'
import { ChunkRefSchema } from './manifest.js'

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
    /**
     * The package cut into chunks (256 KiB, sha256 each), as a manifest's
     * artifact: what the chunk broadcast needs [EF-11.4]. Signed with the rest,
     * so it is as trusted as `sha256`. Absent: HTTP range download only.
     */
    chunks: Type.Optional(Type.Array(ChunkRefSchema, { minItems: 1, maxItems: 100_000 })),
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
