// Models, versions, builds and artifacts.
import { defined, type Manifest, type Precision, type TensorSpec } from '@edgefleet/shared'
import type { Db } from './db.js'

export interface VersionRow {
  model: string
  version: string
  digest: string
  size: number
  inputs: TensorSpec[]
  outputs: TensorSpec[]
  options: Record<string, unknown>
  parent: string | null
  runId: string | null
  createdAt: number
}

export interface BuildRow {
  id: number
  model: string
  version: string
  profile: string
  status: 'ok' | 'failed'
  precision: Precision | null
  artifact: string | null
  manifest: Manifest | null
  manifestSig: string | null
  report: Record<string, unknown> | null
  errorCode: string | null
  error: string | null
  createdAt: number
}

interface RawBuild {
  id: number
  model: string
  version: string
  profile: string
  status: 'ok' | 'failed'
  precision: Precision | null
  artifact: string | null
  manifest: string | null
  manifest_sig: string | null
  report: string | null
  error_code: string | null
  error: string | null
  created_at: number
}

/** A nullable JSON column; the caller says what it holds (the store wrote it). */
const parseJson = (s: string | null): unknown => (s === null ? null : JSON.parse(s))

const buildRow = (raw: RawBuild): BuildRow => ({
  id: raw.id,
  model: raw.model,
  version: raw.version,
  profile: raw.profile,
  status: raw.status,
  precision: raw.precision,
  artifact: raw.artifact,
  manifest: parseJson(raw.manifest) as Manifest | null,
  manifestSig: raw.manifest_sig,
  report: parseJson(raw.report) as Record<string, unknown> | null,
  errorCode: raw.error_code,
  error: raw.error,
  createdAt: raw.created_at,
})

interface RawVersion {
  model: string
  version: string
  digest: string
  size: number
  inputs: string
  outputs: string
  options: string
  parent: string | null
  run_id: string | null
  created_at: number
}

const versionRow = (raw: RawVersion): VersionRow => ({
  model: raw.model,
  version: raw.version,
  digest: raw.digest,
  size: raw.size,
  inputs: JSON.parse(raw.inputs) as TensorSpec[],
  outputs: JSON.parse(raw.outputs) as TensorSpec[],
  options: JSON.parse(raw.options) as Record<string, unknown>,
  parent: raw.parent,
  runId: raw.run_id,
  createdAt: raw.created_at,
})

export class RegistryStore {
  constructor(private readonly db: Db) {}

  insertVersion(version: VersionRow): void {
    this.db.transaction(() => {
      this.db
        .prepare('INSERT INTO models (name, created_at) VALUES (?, ?) ON CONFLICT DO NOTHING')
        .run(version.model, version.createdAt)
      this.db
        .prepare(
          'INSERT INTO versions (model, version, digest, size, inputs, outputs, options, parent, run_id, created_at) VALUES (?,?,?,?,?,?,?,?,?,?)',
        )
        .run(
          version.model,
          version.version,
          version.digest,
          version.size,
          JSON.stringify(version.inputs),
          JSON.stringify(version.outputs),
          JSON.stringify(version.options),
          version.parent,
          version.runId,
          version.createdAt,
        )
    })
  }

  getVersion(model: string, version: string): VersionRow | undefined {
    const r = this.db.prepare('SELECT * FROM versions WHERE model = ? AND version = ?').get(model, version) as
      RawVersion | undefined
    return r && versionRow(r)
  }

  listModels(): { name: string; createdAt: number; versions: string[] }[] {
    const rows = this.db
      .prepare(
        'SELECT m.name, m.created_at, v.version FROM models m LEFT JOIN versions v ON v.model = m.name ORDER BY m.name, v.created_at',
      )
      .all() as {
      name: string
      created_at: number
      version: string | null
    }[]
    const out = new Map<string, { name: string; createdAt: number; versions: string[] }>()
    for (const r of rows) {
      const m = out.get(r.name) ?? { name: r.name, createdAt: r.created_at, versions: [] }
      if (r.version) m.versions.push(r.version)
      out.set(r.name, m)
    }
    return [...out.values()]
  }

  listVersions(model: string): VersionRow[] {
    return (
      this.db.prepare('SELECT * FROM versions WHERE model = ? ORDER BY created_at').all(model) as RawVersion[]
    ).map(versionRow)
  }

  /** Replaces the build of (model, version, profile): a rebuild supersedes a failed one. */
  upsertBuild(build: Omit<BuildRow, 'id'>): BuildRow {
    this.db
      .prepare(
        `INSERT INTO builds (model, version, profile, status, precision, artifact, manifest, manifest_sig, report, error_code, error, created_at)
         VALUES (?,?,?,?,?,?,?,?,?,?,?,?)
         ON CONFLICT (model, version, profile) DO UPDATE SET status=excluded.status, precision=excluded.precision, artifact=excluded.artifact,
           manifest=excluded.manifest, manifest_sig=excluded.manifest_sig, report=excluded.report, error_code=excluded.error_code,
           error=excluded.error, created_at=excluded.created_at`,
      )
      .run(
        build.model,
        build.version,
        build.profile,
        build.status,
        build.precision,
        build.artifact,
        build.manifest ? JSON.stringify(build.manifest) : null,
        build.manifestSig,
        build.report ? JSON.stringify(build.report) : null,
        build.errorCode,
        build.error,
        build.createdAt,
      )
    return defined(
      this.getBuild(build.model, build.version, build.profile),
      `build ${build.model}@${build.version} for ${build.profile}`,
    )
  }

  getBuild(model: string, version: string, profile: string): BuildRow | undefined {
    const r = this.db
      .prepare('SELECT * FROM builds WHERE model = ? AND version = ? AND profile = ?')
      .get(model, version, profile) as RawBuild | undefined
    return r && buildRow(r)
  }

  getBuildById(id: number): BuildRow | undefined {
    const r = this.db.prepare('SELECT * FROM builds WHERE id = ?').get(id) as RawBuild | undefined
    return r && buildRow(r)
  }

  listBuilds(model: string, version: string): BuildRow[] {
    return (
      this.db
        .prepare('SELECT * FROM builds WHERE model = ? AND version = ? ORDER BY profile')
        .all(model, version) as RawBuild[]
    ).map(buildRow)
  }

  insertArtifact(digest: string, size: number, chunks: unknown, now: number): void {
    this.db
      .prepare('INSERT INTO artifacts (digest, size, chunks, created_at) VALUES (?,?,?,?) ON CONFLICT DO NOTHING')
      .run(digest, size, JSON.stringify(chunks), now)
  }

  getArtifact(
    digest: string,
  ): { digest: string; size: number; chunks: { digest: string; size: number }[] } | undefined {
    const r = this.db.prepare('SELECT digest, size, chunks FROM artifacts WHERE digest = ?').get(digest) as
      { digest: string; size: number; chunks: string } | undefined
    return r && { digest: r.digest, size: r.size, chunks: JSON.parse(r.chunks) as { digest: string; size: number }[] }
  }
}
