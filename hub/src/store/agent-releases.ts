// Agent releases [EF-11.3]: one row per version and architecture with the
// package's sha256 and size and the hub's signature over the release
// document; the package file itself is a blob (blobs/<sha256>).
import type { AgentPackageArch, AgentRelease } from '@edgefleet/shared'
import type { Db } from './db.js'

export interface AgentReleaseRow {
  release: AgentRelease
  /** Signature over `release` with the key current when it was registered (re-signed when sent, EF-3.6). */
  sig: string
  createdAt: number
}

interface RawRelease {
  version: string
  arch: AgentPackageArch
  runtime: 'native' | 'wasm'
  sha256: string
  size: number
  sig: string
  created_at: number
}

const toRow = (raw: RawRelease): AgentReleaseRow => ({
  release: {
    name: 'edgefleet-agent',
    version: raw.version,
    arch: raw.arch,
    runtime: raw.runtime,
    sha256: raw.sha256,
    size: raw.size,
  },
  sig: raw.sig,
  createdAt: raw.created_at,
})

export class AgentReleaseStore {
  constructor(private readonly db: Db) {}

  insert(release: AgentRelease, sig: string, now: number): void {
    this.db
      .prepare(
        'INSERT INTO agent_releases (version, arch, runtime, sha256, size, sig, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
      )
      .run(release.version, release.arch, release.runtime, release.sha256, release.size, sig, now)
  }

  get(version: string, arch: string): AgentReleaseRow | undefined {
    const r = this.db.prepare('SELECT * FROM agent_releases WHERE version = ? AND arch = ?').get(version, arch) as
      RawRelease | undefined
    return r && toRow(r)
  }

  /** Every release, newest first. */
  list(): AgentReleaseRow[] {
    return (
      this.db.prepare('SELECT * FROM agent_releases ORDER BY created_at DESC, version, arch').all() as RawRelease[]
    ).map(toRow)
  }
}
