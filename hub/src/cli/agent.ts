// `edgefleet agent release|releases|update`: signed agent packages on the hub
// and agent self-update of devices [EF-11.3, EF-11.4]. Packages are built by
// `edgefleet agent-package`; devices show the version they run in
// `devices list`.
import { readFileSync } from 'node:fs'
import { command, UsageError, type Command } from './command.js'
import { table } from './format.js'

interface ReleaseOut {
  release: { version: string; arch: string; runtime: string; sha256: string; size: number }
  created?: boolean
  createdAt?: number
}

const release = command({
  name: 'agent release',
  summary: ['agent release FILE.tar.gz --version V', 'register a signed agent package (one architecture)'],
  help: `edgefleet agent release FILE.tar.gz --version V [--json]
  FILE.tar.gz   a package from edgefleet agent-package (its edgefleet-package.json names arch and version)
  --version V   must be the package's own version (EF_ERR_AGENT_VERSION_MISMATCH otherwise)
  Registering the same file again is a no-op; other contents under the same version and arch: EF_ERR_AGENT_RELEASE_EXISTS.`,
  options: { version: { type: 'string' } },
  async run({ args, hub, emit }) {
    const file = args.pos[0]
    const version = args.str('version')
    if (!file || !version) throw new UsageError('agent release needs FILE.tar.gz and --version')
    const answer = await hub.request<ReleaseOut>(
      'POST',
      `/api/v1/agent-releases?${new URLSearchParams({ version })}`,
      readFileSync(file),
      { contentType: 'application/octet-stream' },
    )
    emit(
      answer,
      () =>
        `agent ${answer.release.version} ${answer.release.arch} ${answer.created ? 'registered' : 'already registered'} (${answer.release.sha256.slice(0, 12)}, ${answer.release.size} bytes)`,
    )
    return 0
  },
})

const releases = command({
  name: 'agent releases',
  summary: ['agent releases', 'list registered agent packages'],
  help: `edgefleet agent releases [--json]`,
  options: {},
  async run({ hub, emit }) {
    const answer = await hub.request<{ items: ReleaseOut[] }>('GET', '/api/v1/agent-releases')
    emit(answer.items, () =>
      table(
        answer.items.map((x) => ({ ...x.release, sha256: x.release.sha256.slice(0, 12) })),
        ['version', 'arch', 'runtime', 'size', 'sha256'],
      ),
    )
    return 0
  },
})

const update = command({
  name: 'agent update',
  summary: ['agent update --target SELECTOR --version V', "replace devices' agent (signed, rolled back if it fails)"],
  help: `edgefleet agent update --target profile=P|tag=k=v|device=ID --version V [--rollback] [--deadline-ms N] [--arch A] [--json]
  --version V      a registered release; each device gets the package of its profile's architecture
  --rollback       allow an older version than a device runs (signed; refused otherwise: EF_ERR_AGENT_DOWNGRADE)
  --deadline-ms N  time the new agent has to start, reconnect and pass its health check (default 120000)
  --arch A         send this architecture's package whatever the profiles say
  Devices report agent_updated, or agent_rolled_back with EF_ERR_AGENT_ROLLED_BACK; see devices list.`,
  options: {
    target: { type: 'string' },
    version: { type: 'string' },
    rollback: { type: 'boolean' },
    'deadline-ms': { type: 'string' },
    arch: { type: 'string' },
  },
  async run({ args, hub, emit }) {
    const target = args.str('target')
    const version = args.str('version')
    if (!target || !version) throw new UsageError('agent update needs --target and --version')
    const deadline = args.str('deadline-ms')
    const arch = args.str('arch')
    const answer = await hub.request<{
      sent: { device: string; arch: string; cmdId: string }[]
      skipped: { device: string; code: string; message: string }[]
    }>('POST', '/api/v1/agent-updates', {
      target,
      version,
      ...(args.flag('rollback') ? { rollback: true } : {}),
      ...(deadline ? { deadlineMs: Number(deadline) } : {}),
      ...(arch ? { arch } : {}),
    })
    emit(
      answer,
      () =>
        [
          ...answer.sent.map((s) => `${s.device}: agent ${version} (${s.arch}) sent, command ${s.cmdId}`),
          ...answer.skipped.map((s) => `${s.device}: skipped ${s.code} ${s.message}`),
        ].join('\n') || 'no device matched',
    )
    return answer.skipped.length ? 1 : 0
  },
})

export const agentCommands: readonly Command[] = [release, releases, update]
