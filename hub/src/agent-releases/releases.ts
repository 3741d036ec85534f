// Agent releases and agent updates [EF-11.3, EF-11.4]: `agent release`
// registers a package (its own manifest read from the archive, the file kept
// as a blob, the release document signed with the hub's key); `agent update`
// sends each targeted device a signed agent-update command for the release
// of its architecture (the profile's, or the one asked for), which the device
// downloads over the HTTP API with range requests (EF-4.10).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  EdgeFleetError,
  codeOf,
  sha256Hex,
  signDocument,
  type AgentPackageArch,
  type AgentRelease,
  type FirmwareProfile,
} from '@edgefleet/shared'
import type { KeyObject } from 'node:crypto'
import type { HubStore } from '../store/index.js'
import type { BlobStore } from '../store/blobs.js'
import type { CommandSender } from '../distribution/commands.js'
import { parseTarget } from '../distribution/target.js'
import { readPackageInfo } from './package-info.js'

export interface AgentReleaseDeps {
  store: HubStore
  blobs: BlobStore
  keys: { readonly privateKey: KeyObject }
  profiles: Map<string, FirmwareProfile>
  now: () => number
}

/** Default time a new agent has to start, reconnect and pass its health check [EF-11.7]. */
const DEFAULT_AGENT_DEADLINE_MS = 120_000 // 2 minutes

const PROFILE_ARCH: Record<FirmwareProfile['arch'], AgentPackageArch> = {
  x86_64: 'linux-x64',
  arm64: 'linux-arm64',
  armv7: 'linux-armv7',
}

/** Registers `bytes` as agent `version` (which must be the package's own). Idempotent for the same bytes. */
export async function registerRelease(
  d: AgentReleaseDeps,
  bytes: Buffer,
  version: string,
): Promise<{ release: AgentRelease; sig: string; created: boolean }> {
  const dir = mkdtempSync(join(tmpdir(), 'ef-agent-release-'))
  let info
  try {
    writeFileSync(join(dir, 'package.tar.gz'), bytes)
    info = await readPackageInfo(join(dir, 'package.tar.gz'))
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
  if (info.version !== version)
    throw new EdgeFleetError('EF_ERR_AGENT_VERSION_MISMATCH', `--version ${version}, the package says ${info.version}`)
  const release: AgentRelease = { name: 'edgefleet-agent', ...info, sha256: sha256Hex(bytes), size: bytes.length }
  const existing = d.store.agentReleases.get(version, info.arch)
  if (existing) {
    if (existing.release.sha256 !== release.sha256)
      throw new EdgeFleetError('EF_ERR_AGENT_RELEASE_EXISTS', `${version} ${info.arch} is ${existing.release.sha256}`)
    return { ...existing, created: false }
  }
  d.blobs.put(bytes)
  const sig = signDocument(release, d.keys.privateKey)
  d.store.agentReleases.insert(release, sig, d.now())
  return { release, sig, created: true }
}

export interface AgentUpdateRequest {
  target: string
  version: string
  rollback?: boolean
  deadlineMs?: number
  /** Send this architecture's release whatever the profiles say. */
  arch?: AgentPackageArch
}

export interface AgentUpdateResult {
  sent: { device: string; arch: string; cmdId: string }[]
  skipped: { device: string; code: string; message: string }[]
}

/** Sends the signed agent-update command to every active device the target selects. */
export async function sendAgentUpdate(
  d: AgentReleaseDeps & { commands: CommandSender },
  req: AgentUpdateRequest,
  httpBase: string,
): Promise<AgentUpdateResult> {
  const devices = d.store.devices.select(parseTarget(req.target))
  if (!d.store.agentReleases.list().some((r) => r.release.version === req.version))
    throw new EdgeFleetError('EF_ERR_AGENT_RELEASE_NOT_FOUND', `agent ${req.version}`)
  const out: AgentUpdateResult = { sent: [], skipped: [] }
  for (const dev of devices) {
    try {
      const profileArch = d.profiles.get(dev.profile)?.arch
      if (!req.arch && !profileArch) throw new EdgeFleetError('EF_ERR_PROFILE_UNKNOWN', `${dev.profile}: say --arch`)
      const arch = req.arch ?? PROFILE_ARCH[profileArch ?? 'x86_64']
      const row = d.store.agentReleases.get(req.version, arch)
      if (!row) throw new EdgeFleetError('EF_ERR_AGENT_RELEASE_NOT_FOUND', `agent ${req.version} for ${arch}`)
      // Signed now, not at release time: a release older than a key rotation still verifies [EF-3.6].
      const cmdId = await d.commands.send(dev.id, 'agent-update', {
        release: row.release,
        releaseSig: signDocument(row.release, d.keys.privateKey),
        ...(req.rollback ? { rollback: true } : {}),
        deadlineMs: req.deadlineMs ?? DEFAULT_AGENT_DEADLINE_MS,
        url: `/api/v1/agent-releases/${row.release.version}/${arch}/package`,
        httpBase,
      })
      out.sent.push({ device: dev.id, arch, cmdId })
    } catch (err) {
      out.skipped.push({ device: dev.id, code: codeOf(err), message: (err as Error).message })
    }
  }
  return out
}
