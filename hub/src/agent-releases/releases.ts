// Agent releases [EF-11.3]: `agent release` registers a package (its own
// manifest read from the archive, the file kept as a blob, the release
// document — with the package's chunk list, so it can be broadcast like a
// model build [EF-11.4] — signed with the hub's key). Updates are sent by
// updates.ts.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  EdgeFleetError,
  chunkArtifact,
  signDocument,
  type AgentPackageArch,
  type AgentRelease,
  type FirmwareProfile,
} from '@edgefleet/shared'
import type { KeyObject } from 'node:crypto'
import type { HubStore } from '../store/index.js'
import type { BlobStore } from '../store/blobs.js'
import { readPackageInfo } from './package-info.js'

export interface AgentReleaseDeps {
  store: HubStore
  blobs: BlobStore
  keys: { readonly privateKey: KeyObject }
  profiles: Map<string, FirmwareProfile>
  now: () => number
}

/** The package architecture of each profile architecture. */
export const PROFILE_ARCH: Record<FirmwareProfile['arch'], AgentPackageArch> = {
  x86_64: 'linux-x64',
  arm64: 'linux-arm64',
  armv7: 'linux-armv7',
}

/** Registers `bytes` as agent `version` (which must be the package's own). Idempotent for the same bytes. */
export async function registerRelease(
  deps: AgentReleaseDeps,
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
  // Fixed 256 KiB chunks: a package has no tensors to align to, and the chunk size is the broadcast's.
  const { digest, size, chunks } = chunkArtifact(bytes)
  const release: AgentRelease = { name: 'edgefleet-agent', ...info, sha256: digest, size, chunks }
  const existing = deps.store.agentReleases.get(version, info.arch)
  if (existing) {
    if (existing.release.sha256 !== release.sha256)
      throw new EdgeFleetError('EF_ERR_AGENT_RELEASE_EXISTS', `${version} ${info.arch} is ${existing.release.sha256}`)
    return { ...existing, created: false }
  }
  deps.blobs.put(bytes)
  const sig = signDocument(release, deps.keys.privateKey)
  deps.store.agentReleases.insert(release, sig, deps.now())
  return { release, sig, created: true }
}
