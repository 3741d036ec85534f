// `edgefleet agent-package`: builds per-architecture agent packages from the
// built workspace, no hub needed [EF-11.1]. The work is in
// packaging/agent-package.ts, imported when the command runs.
import { command, UsageError, type Command } from './command.js'

const mib = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MiB`

const agentPackage = command({
  name: 'agent-package',
  summary: ['agent-package --arch A --out DIR', 'build the agent package for a device architecture (tar.gz)'],
  help: `edgefleet agent-package --arch linux-x64|linux-arm64|linux-armv7|all --out DIR [--version V] [--json]
  --arch A    device architecture; repeat it, or say all, for several packages
  --out DIR   where edgefleet-agent-<version>-<arch>.tar.gz goes
  --version V the package's version (default: the agent's package.json); the agent reports it
  Builds from this workspace (run pnpm build first). Exit codes: 0 built, 1 failed, 2 usage.`,
  options: { arch: { type: 'string', multiple: true }, out: { type: 'string' }, version: { type: 'string' } },
  async run({ args, emit }) {
    const { AGENT_ARCHES, buildAgentPackage, parseArch } = await import('../packaging/agent-package.js')
    const out = args.str('out')
    if (!out) throw new UsageError('missing --out')
    const wanted = args.strs('arch')
    if (!wanted.length) throw new UsageError('missing --arch')
    const arches = wanted.includes('all') ? [...AGENT_ARCHES] : wanted.map(parseArch)
    const built: {
      arch: string
      file: string
      version: string
      runtime: string
      unpackedBytes: number
      compressedBytes: number
    }[] = []
    for (const arch of arches) {
      const version = args.str('version')
      const p = await buildAgentPackage(arch, out, undefined, version ? { version } : {})
      built.push({
        arch,
        file: p.file,
        version: p.manifest.version,
        runtime: p.manifest.runtime,
        unpackedBytes: p.unpackedBytes,
        compressedBytes: p.compressedBytes,
      })
    }
    emit({ packages: built }, () =>
      built
        .map((b) => `${b.file}  ${b.runtime}  ${mib(b.unpackedBytes)} unpacked, ${mib(b.compressedBytes)} compressed`)
        .join('\n'),
    )
    return 0
  },
})

export const agentPackageCommands: readonly Command[] = [agentPackage]
