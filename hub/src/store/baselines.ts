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

const fromRaw = (raw: RawBaseline): Baseline => ({
  model: raw.model,
  version: raw.version,
  profile: raw.profile,
  source: raw.source,
  fromMs: raw.from_ms,
  toMs: raw.to_ms,
  requests: raw.requests,
  confidence: raw.confidence ? (JSON.parse(raw.confidence) as number[]) : null,
  features: JSON.parse(raw.features) as Record<string, number[]>,
  createdAt: raw.created_at,
})

const PRECEDENCE: Record<BaselineSource, number> = { api: 0, field: 1, build: 2 }

export class BaselineStore {
  constructor(private readonly db: Db) {}

  put(baseline: Baseline): void {
    this.db
      .prepare(
        'INSERT INTO baselines (model, version, profile, source, from_ms, to_ms, requests, confidence, features, created_at) VALUES (?,?,?,?,?,?,?,?,?,?) ' +
          'ON CONFLICT (model, version, profile, source) DO UPDATE SET from_ms = excluded.from_ms, to_ms = excluded.to_ms, requests = excluded.requests, confidence = excluded.confidence, features = excluded.features, created_at = excluded.created_at',
      )
      .run(
        baseline.model,
        baseline.version,
        baseline.profile,
        baseline.source,
        baseline.fromMs,
        baseline.toMs,
        baseline.requests,
        baseline.confidence ? JSON.stringify(baseline.confidence) : null,
        JSON.stringify(baseline.features),
        baseline.createdAt,
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
          'SELECT * FROM baselines WHERE model = ? AND (CAST(? AS TEXT) IS NULL OR version = ?) ORDER BY version, profile, source',
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
        'INSERT INTO drift_state (model, version, profile, subject, psi, count, baseline_source, open, evaluated_at) VALUES (?,?,?,?,?,?,?,?,?) ' +
          'ON CONFLICT (model, version, profile, subject) DO UPDATE SET psi = excluded.psi, count = excluded.count, baseline_source = excluded.baseline_source, open = excluded.open, evaluated_at = excluded.evaluated_at',
      )
      .run(s.model, s.version, s.profile, s.subject, s.psi, s.count, s.baselineSource, s.open ? 1 : 0, s.evaluatedAt)
  }

  listDrift(filter: { model?: string; version?: string } = {}): DriftStateRow[] {
    return (
      this.db
        .prepare(
          'SELECT * FROM drift_state WHERE (CAST(? AS TEXT) IS NULL OR model = ?) AND (CAST(? AS TEXT) IS NULL OR version = ?) ORDER BY model, version, profile, subject',
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

const driftFromRaw = (raw: RawDrift): DriftStateRow => ({
  model: raw.model,
  version: raw.version,
  profile: raw.profile,
  subject: raw.subject,
  psi: raw.psi,
  count: raw.count,
  baselineSource: raw.baseline_source,
  open: raw.open === 1,
  evaluatedAt: raw.evaluated_at,
})
