// Baselines per model version and profile [EF-9.4] and the drift state of
// each (version, profile, subject) [EF-9.5], which gives drift events their
// hysteresis across evaluations and hub restarts.
import type { Db } from './db.js'

export type BaselineSource = 'api' | 'field' | 'build'

export interface Baseline {
  model: string
  version: string
  /** A profile id, or `*` for all profiles. */
  profile: string
  source: BaselineSource
  fromMs: number | null
  toMs: number | null
  requests: number
  confidence: number[] | null
  features: Record<string, number[]>
  createdAt: number
}

export interface DriftStateRow {
  model: string
  version: string
  profile: string
  /** `input:NAME` or `output:confidence`. */
  subject: string
  psi: number | null
  count: number
  baselineSource: BaselineSource | null
  open: boolean
  evaluatedAt: number
}

interface RawBaseline {
  model: string
  version: string
  profile: string
  source: BaselineSource
  from_ms: number | null
  to_ms: number | null
  requests: number
  confidence: string | null
  features: string
  created_at: number
}

const fromRaw = (r: RawBaseline): Baseline => ({
  model: r.model,
  version: r.version,
  profile: r.profile,
  source: r.source,
  fromMs: r.from_ms,
  toMs: r.to_ms,
  requests: r.requests,
  confidence: r.confidence ? (JSON.parse(r.confidence) as number[]) : null,
  features: JSON.parse(r.features) as Record<string, number[]>,
  createdAt: r.created_at,
})

const PRECEDENCE: Record<BaselineSource, number> = { api: 0, field: 1, build: 2 }

export class BaselineStore {
  constructor(private readonly db: Db) {}

  put(b: Baseline): void {
    this.db
      .prepare(
        'INSERT OR REPLACE INTO baselines (model, version, profile, source, from_ms, to_ms, requests, confidence, features, created_at) VALUES (?,?,?,?,?,?,?,?,?,?)',
      )
      .run(
        b.model,
        b.version,
        b.profile,
        b.source,
        b.fromMs,
        b.toMs,
        b.requests,
        b.confidence ? JSON.stringify(b.confidence) : null,
        JSON.stringify(b.features),
        b.createdAt,
      )
  }

  has(model: string, version: string, source: BaselineSource): boolean {
    return (
      this.db
        .prepare('SELECT 1 FROM baselines WHERE model = ? AND version = ? AND source = ? LIMIT 1')
        .get(model, version, source) !== undefined
    )
  }

  list(model: string, version?: string): Baseline[] {
    return (
      this.db
        .prepare(
          'SELECT * FROM baselines WHERE model = ? AND (? IS NULL OR version = ?) ORDER BY version, profile, source',
        )
        .all(model, version ?? null, version ?? null) as RawBaseline[]
    ).map(fromRaw)
  }

  /**
   * The baseline drift of `profile` is measured against: the best source for
   * that profile, else the best for `*` [EF-9.4].
   */
  effective(model: string, version: string, profile: string): Baseline | undefined {
    const all = this.list(model, version)
    const best = (p: string) =>
      all.filter((b) => b.profile === p).sort((a, b) => PRECEDENCE[a.source] - PRECEDENCE[b.source])[0]
    return best(profile) ?? best('*')
  }

  driftState(model: string, version: string, profile: string, subject: string): DriftStateRow | undefined {
    const r = this.db
      .prepare('SELECT * FROM drift_state WHERE model = ? AND version = ? AND profile = ? AND subject = ?')
      .get(model, version, profile, subject) as RawDrift | undefined
    return r ? driftFromRaw(r) : undefined
  }

  putDriftState(s: DriftStateRow): void {
    this.db
      .prepare(
        'INSERT OR REPLACE INTO drift_state (model, version, profile, subject, psi, count, baseline_source, open, evaluated_at) VALUES (?,?,?,?,?,?,?,?,?)',
      )
      .run(s.model, s.version, s.profile, s.subject, s.psi, s.count, s.baselineSource, s.open ? 1 : 0, s.evaluatedAt)
  }

  listDrift(filter: { model?: string; version?: string } = {}): DriftStateRow[] {
    return (
      this.db
        .prepare(
          'SELECT * FROM drift_state WHERE (? IS NULL OR model = ?) AND (? IS NULL OR version = ?) ORDER BY model, version, profile, subject',
        )
        .all(filter.model ?? null, filter.model ?? null, filter.version ?? null, filter.version ?? null) as RawDrift[]
    ).map(driftFromRaw)
  }
}

interface RawDrift {
  model: string
  version: string
  profile: string
  subject: string
  psi: number | null
  count: number
  baseline_source: BaselineSource | null
  open: number
  evaluated_at: number
}

const driftFromRaw = (r: RawDrift): DriftStateRow => ({
  model: r.model,
  version: r.version,
  profile: r.profile,
  subject: r.subject,
  psi: r.psi,
  count: r.count,
  baselineSource: r.baseline_source,
  open: r.open === 1,
  evaluatedAt: r.evaluated_at,
})
