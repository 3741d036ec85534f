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

const buildRow = (r: RawBuild): BuildRow => ({
  id: r.id,
  model: r.model,
  version: r.version,
  profile: r.profile,
  status: r.status,
  precision: r.precision,
  artifact: r.artifact,
  manifest: parseJson(r.manifest) as Manifest | null,
  manifestSig: r.manifest_sig,
  report: parseJson(r.report) as Record<string, unknown> | null,
  errorCode: r.error_code,
  error: r.error,
  createdAt: r.created_at,
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

const versionRow = (r: RawVersion): VersionRow => ({
  model: r.model,
  version: r.version,
  digest: r.digest,
  size: r.size,
  inputs: JSON.parse(r.inputs) as TensorSpec[],
  outputs: JSON.parse(r.outputs) as TensorSpec[],
  options: JSON.parse(r.options) as Record<string, unknown>,
  parent: r.parent,
  runId: r.run_id,
  createdAt: r.created_at,
})

export class RegistryStore {
  constructor(private readonly db: Db) {}

  insertVersion(v: VersionRow): void {
    this.db
      .transaction(() => {
        this.db.prepare('INSERT OR IGNORE INTO models (name, created_at) VALUES (?, ?)').run(v.model, v.createdAt)
        this.db
          .prepare(
            'INSERT INTO versions (model, version, digest, size, inputs, outputs, options, parent, run_id, created_at) VALUES (?,?,?,?,?,?,?,?,?,?)',
          )
          .run(
            v.model,
            v.version,
            v.digest,
            v.size,
            JSON.stringify(v.inputs),
            JSON.stringify(v.outputs),
            JSON.stringify(v.options),
            v.parent,
            v.runId,
            v.createdAt,
          )
      })
      .immediate()
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
  upsertBuild(b: Omit<BuildRow, 'id'>): BuildRow {
    this.db
      .prepare(
        `INSERT INTO builds (model, version, profile, status, precision, artifact, manifest, manifest_sig, report, error_code, error, created_at)
         VALUES (?,?,?,?,?,?,?,?,?,?,?,?)
         ON CONFLICT (model, version, profile) DO UPDATE SET status=excluded.status, precision=excluded.precision, artifact=excluded.artifact,
           manifest=excluded.manifest, manifest_sig=excluded.manifest_sig, report=excluded.report, error_code=excluded.error_code,
           error=excluded.error, created_at=excluded.created_at`,
      )
      .run(
        b.model,
        b.version,
        b.profile,
        b.status,
        b.precision,
        b.artifact,
        b.manifest ? JSON.stringify(b.manifest) : null,
        b.manifestSig,
        b.report ? JSON.stringify(b.report) : null,
        b.errorCode,
        b.error,
        b.createdAt,
      )
    return defined(this.getBuild(b.model, b.version, b.profile), `build ${b.model}@${b.version} for ${b.profile}`)
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
      .prepare('INSERT OR IGNORE INTO artifacts (digest, size, chunks, created_at) VALUES (?,?,?,?)')
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
