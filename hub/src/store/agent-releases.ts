// Agent releases [EF-11.3]: one row per version and architecture with the
// package's sha256 and size, its chunk list [EF-11.4] and the hub's signature
// over the release document; the package file itself is a blob (blobs/<sha256>).
import type { AgentPackageArch, AgentRelease, ChunkRef } from '@edgefleet/shared'
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
  chunks: string | null
}

const toRow = (raw: RawRelease): AgentReleaseRow => ({
  release: {
    name: 'edgefleet-agent',
    version: raw.version,
    arch: raw.arch,
    runtime: raw.runtime,
    sha256: raw.sha256,
    size: raw.size,
    ...(raw.chunks ? { chunks: JSON.parse(raw.chunks) as ChunkRef[] } : {}),
  },
  sig: raw.sig,
  createdAt: raw.created_at,
})

export class AgentReleaseStore {
  constructor(private readonly db: Db) {}

  insert(release: AgentRelease, sig: string, now: number): void {
    this.db
      .prepare(
        'INSERT INTO agent_releases (version, arch, runtime, sha256, size, sig, created_at, chunks) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
      )
      .run(
        release.version,
        release.arch,
        release.runtime,
        release.sha256,
        release.size,
        sig,
        now,
        release.chunks ? JSON.stringify(release.chunks) : null,
      )
  }

  /** The chunk list of the package with this sha256, if a release carries one (the broadcast's layout, EF-11.4). */
  chunksOf(sha256: string): ChunkRef[] | undefined {
    const r = this.db
      .prepare('SELECT chunks FROM agent_releases WHERE sha256 = ? AND chunks IS NOT NULL LIMIT 1')
      .get(sha256) as { chunks: string } | undefined
    return r ? (JSON.parse(r.chunks) as ChunkRef[]) : undefined
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
