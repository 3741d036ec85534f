// Rollouts: the persisted state machine [EF-8.1], per-device status, decisions
// with their numbers, and gate values over time. The spec is stored as JSON:
// it is validated once at creation (rollouts/spec.ts) and never edited.
import type { Db } from './db.js'

export type RolloutState =
  'scheduled' | 'running' | 'paused' | 'awaiting_approval' | 'rolling_back' | 'completed' | 'aborted' | 'rolled_back'
export const FINAL_ROLLOUT_STATES: ReadonlySet<string> = new Set(['completed', 'aborted', 'rolled_back'])

/** Where the current wave is: shadowing, deploying, soaking (gates), or rolling back. */
type RolloutPhase = 'shadow' | 'deploy' | 'soak' | 'rollback'

export type RolloutDeviceStatus =
  | 'pending'
  | 'waiting_window'
  | 'waiting_conditions'
  | 'scheduled'
  | 'shadowing'
  | 'deploying'
  | 'activated'
  | 'skipped'
  | 'failed'
  | 'rolling_back'
  | 'rolled_back'

export interface RolloutRow {
  id: string
  model: string
  version: string
  spec: unknown
  state: RolloutState
  wave: number
  phase: RolloutPhase
  phaseStartedAt: number | null
  soakUntil: number | null
  pausedFrom: RolloutState | null
  pausedAt: number | null
  reason: string | null
  createdBy: string | null
  createdAt: number
  updatedAt: number
}

export interface RolloutDeviceRow {
  rolloutId: string
  deviceId: string
  ord: string
  wave: number | null
  status: RolloutDeviceStatus
  previousVersion: string | null
  dueAt: number | null
  deploymentId: string | null
  rollbackDeploymentId: string | null
  activatedAt: number | null
  code: string | null
  updatedAt: number
}

export interface DecisionRow {
  id: number
  rolloutId: string
  ts: number
  wave: number
  kind: string
  decision: string
  detail: Record<string, unknown>
  actor: string | null
}

export interface GateSample {
  ts: number
  wave: number
  values: Record<string, number | null>
}

interface RawRollout {
  id: string
  model: string
  version: string
  spec: string
  state: RolloutState
  wave: number
  phase: RolloutPhase
  phase_started_at: number | null
  soak_until: number | null
  paused_from: RolloutState | null
  paused_at: number | null
  reason: string | null
  created_by: string | null
  created_at: number
  updated_at: number
}
interface RawRD {
  rollout_id: string
  device_id: string
  ord: string
  wave: number | null
  status: RolloutDeviceStatus
  previous_version: string | null
  due_at: number | null
  deployment_id: string | null
  rollback_deployment_id: string | null
  activated_at: number | null
  code: string | null
  updated_at: number
}

const rolloutRow = (raw: RawRollout): RolloutRow => ({
  id: raw.id,
  model: raw.model,
  version: raw.version,
  spec: JSON.parse(raw.spec) as unknown,
  state: raw.state,
  wave: raw.wave,
  phase: raw.phase,
  phaseStartedAt: raw.phase_started_at,
  soakUntil: raw.soak_until,
  pausedFrom: raw.paused_from,
  pausedAt: raw.paused_at,
  reason: raw.reason,
  createdBy: raw.created_by,
  createdAt: raw.created_at,
  updatedAt: raw.updated_at,
})
const rdRow = (raw: RawRD): RolloutDeviceRow => ({
  rolloutId: raw.rollout_id,
  deviceId: raw.device_id,
  ord: raw.ord,
  wave: raw.wave,
  status: raw.status,
  previousVersion: raw.previous_version,
  dueAt: raw.due_at,
  deploymentId: raw.deployment_id,
  rollbackDeploymentId: raw.rollback_deployment_id,
  activatedAt: raw.activated_at,
  code: raw.code,
  updatedAt: raw.updated_at,
})

export type RolloutPatch = Partial<
  Pick<RolloutRow, 'state' | 'wave' | 'phase' | 'phaseStartedAt' | 'soakUntil' | 'pausedFrom' | 'pausedAt' | 'reason'>
>
export type RolloutDevicePatch = Partial<
  Pick<RolloutDeviceRow, 'wave' | 'status' | 'dueAt' | 'deploymentId' | 'rollbackDeploymentId' | 'activatedAt' | 'code'>
>

const COLS: Record<string, string> = {
  state: 'state',
  wave: 'wave',
  phase: 'phase',
  phaseStartedAt: 'phase_started_at',
  soakUntil: 'soak_until',
  pausedFrom: 'paused_from',
  pausedAt: 'paused_at',
  reason: 'reason',
  status: 'status',
  dueAt: 'due_at',
  deploymentId: 'deployment_id',
  rollbackDeploymentId: 'rollback_deployment_id',
  activatedAt: 'activated_at',
  code: 'code',
}

function setClause(patch: Record<string, unknown>): { sql: string; args: unknown[] } {
  const keys = Object.keys(patch).filter((k) => patch[k] !== undefined)
  return { sql: keys.map((k) => `${COLS[k]} = ?`).join(', '), args: keys.map((k) => patch[k]) }
}

export class RolloutStore {
  constructor(private readonly db: Db) {}

  /** Runs `fn` in one transaction: a state move and its cause are written together [EF-8.1]. */
  tx<T>(fn: () => T): T {
    return this.db.transaction(fn)
  }

  create(r: Pick<RolloutRow, 'id' | 'model' | 'version' | 'spec' | 'state' | 'createdBy' | 'createdAt'>): void {
    this.db
      .prepare(
        'INSERT INTO rollouts (id, model, version, spec, state, created_by, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?)',
      )
      .run(r.id, r.model, r.version, JSON.stringify(r.spec), r.state, r.createdBy, r.createdAt, r.createdAt)
  }

  get(id: string): RolloutRow | undefined {
    const r = this.db.prepare('SELECT * FROM rollouts WHERE id = ?').get(id) as RawRollout | undefined
    return r && rolloutRow(r)
  }

  list(limit = 100, offset = 0, state?: string): RolloutRow[] {
    return (
      this.db
        .prepare(
          'SELECT * FROM rollouts WHERE (CAST(? AS TEXT) IS NULL OR state = ?) ORDER BY created_at DESC, id LIMIT ? OFFSET ?',
        )
        .all(state ?? null, state ?? null, limit, offset) as RawRollout[]
    ).map(rolloutRow)
  }

  count(state?: string): number {
    return (
      this.db
        .prepare('SELECT count(*) AS n FROM rollouts WHERE (CAST(? AS TEXT) IS NULL OR state = ?)')
        .get(state ?? null, state ?? null) as { n: number }
    ).n
  }

  countByState(): Record<string, number> {
    const rows = this.db.prepare('SELECT state, count(*) AS n FROM rollouts GROUP BY state').all() as {
      state: string
      n: number
    }[]
    return Object.fromEntries(rows.map((r) => [r.state, r.n]))
  }

  /** Rollouts the engine still drives. */
  active(): RolloutRow[] {
    return (
      this.db
        .prepare("SELECT * FROM rollouts WHERE state NOT IN ('completed','aborted','rolled_back') ORDER BY created_at")
        .all() as RawRollout[]
    ).map(rolloutRow)
  }

  update(id: string, patch: RolloutPatch, now: number): void {
    const { sql, args } = setClause(patch)
    if (!sql) return
    this.db.prepare(`UPDATE rollouts SET ${sql}, updated_at = ? WHERE id = ?`).run(...args, now, id)
  }

  addDevices(
    rolloutId: string,
    rows: {
      deviceId: string
      ord: string
      previousVersion: string | null
      status: RolloutDeviceStatus
      wave: number | null
    }[],
    now: number,
  ): void {
    const ins = this.db.prepare(
      'INSERT INTO rollout_devices (rollout_id, device_id, ord, wave, status, previous_version, updated_at) VALUES (?,?,?,?,?,?,?) ON CONFLICT DO NOTHING',
    )
    for (const r of rows) ins.run(rolloutId, r.deviceId, r.ord, r.wave, r.status, r.previousVersion, now)
  }

  devices(rolloutId: string): RolloutDeviceRow[] {
    return (
      this.db.prepare('SELECT * FROM rollout_devices WHERE rollout_id = ? ORDER BY ord').all(rolloutId) as RawRD[]
    ).map(rdRow)
  }

  devicePage(rolloutId: string, limit: number, offset: number, status?: string): RolloutDeviceRow[] {
    return (
      this.db
        .prepare(
          'SELECT * FROM rollout_devices WHERE rollout_id = ? AND (CAST(? AS TEXT) IS NULL OR status = ?) ORDER BY wave IS NULL, wave, ord LIMIT ? OFFSET ?',
        )
        .all(rolloutId, status ?? null, status ?? null, limit, offset) as RawRD[]
    ).map(rdRow)
  }

  /** One wave's devices in draw order (index rollout_devices_wave): what a tick of a running wave reads. */
  waveDevices(rolloutId: string, wave: number): RolloutDeviceRow[] {
    return (
      this.db
        .prepare('SELECT * FROM rollout_devices WHERE rollout_id = ? AND wave = ? ORDER BY ord')
        .all(rolloutId, wave) as RawRD[]
    ).map(rdRow)
  }

  /** The rollout's devices in the given statuses (whatever their wave): the ones whose deployment progress is tracked. */
  devicesWithStatus(rolloutId: string, statuses: readonly string[]): RolloutDeviceRow[] {
    const marks = statuses.map(() => '?').join(',')
    return (
      this.db
        .prepare(`SELECT * FROM rollout_devices WHERE rollout_id = ? AND status IN (${marks}) ORDER BY ord`)
        .all(rolloutId, ...statuses) as RawRD[]
    ).map(rdRow)
  }

  /** Devices that count for wave targets (not skipped), and those of them drawn into waves up to `wave`. */
  drawCounts(rolloutId: string, wave: number): { total: number; drawn: number } {
    return this.db
      .prepare(
        `SELECT count(*) AS total, count(*) FILTER (WHERE wave IS NOT NULL AND wave <= ?) AS drawn
         FROM rollout_devices WHERE rollout_id = ? AND status != 'skipped'`,
      )
      .get(wave, rolloutId) as { total: number; drawn: number }
  }

  /** The next `limit` devices not yet in a wave, in the rollout's stable random order [EF-8.3]. */
  undrawn(rolloutId: string, limit: number): string[] {
    return (
      this.db
        .prepare(
          "SELECT device_id FROM rollout_devices WHERE rollout_id = ? AND wave IS NULL AND status != 'skipped' ORDER BY ord LIMIT ?",
        )
        .all(rolloutId, limit) as { device_id: string }[]
    ).map((r) => r.device_id)
  }

  /** Which of `deviceIds` the rollout already holds (one indexed lookup each). */
  enrolled(rolloutId: string, deviceIds: string[]): Set<string> {
    const st = this.db.prepare('SELECT 1 FROM rollout_devices WHERE rollout_id = ? AND device_id = ?')
    return new Set(deviceIds.filter((id) => st.get(rolloutId, id) !== undefined))
  }

  deviceIds(rolloutId: string): Set<string> {
    return new Set(
      (
        this.db.prepare('SELECT device_id FROM rollout_devices WHERE rollout_id = ?').all(rolloutId) as {
          device_id: string
        }[]
      ).map((r) => r.device_id),
    )
  }

  /** Status counts per wave (null wave = not yet drawn). */
  waveCounts(rolloutId: string): { wave: number | null; status: string; n: number }[] {
    return this.db
      .prepare('SELECT wave, status, count(*) AS n FROM rollout_devices WHERE rollout_id = ? GROUP BY wave, status')
      .all(rolloutId) as { wave: number | null; status: string; n: number }[]
  }

  updateDevice(rolloutId: string, deviceId: string, patch: RolloutDevicePatch, now: number): void {
    const { sql, args } = setClause(patch)
    if (!sql) return
    this.db
      .prepare(`UPDATE rollout_devices SET ${sql}, updated_at = ? WHERE rollout_id = ? AND device_id = ?`)
      .run(...args, now, rolloutId, deviceId)
  }

  decide(d: Omit<DecisionRow, 'id'>): void {
    this.db
      .prepare(
        'INSERT INTO rollout_decisions (rollout_id, ts, wave, kind, decision, detail, actor) VALUES (?,?,?,?,?,?,?)',
      )
      .run(d.rolloutId, d.ts, d.wave, d.kind, d.decision, JSON.stringify(d.detail), d.actor)
  }

  decisions(rolloutId: string, limit = 200, offset = 0): DecisionRow[] {
    const rows = this.db
      .prepare('SELECT * FROM rollout_decisions WHERE rollout_id = ? ORDER BY id LIMIT ? OFFSET ?')
      .all(rolloutId, limit, offset) as {
      id: number
      rollout_id: string
      ts: number
      wave: number
      kind: string
      decision: string
      detail: string
      actor: string | null
    }[]
    return rows.map((r) => ({
      id: r.id,
      rolloutId: r.rollout_id,
      ts: r.ts,
      wave: r.wave,
      kind: r.kind,
      decision: r.decision,
      detail: JSON.parse(r.detail) as Record<string, unknown>,
      actor: r.actor,
    }))
  }

  addGateSample(rolloutId: string, s: GateSample): void {
    this.db
      .prepare('INSERT INTO rollout_gate_samples (rollout_id, ts, wave, vals) VALUES (?,?,?,?)')
      .run(rolloutId, s.ts, s.wave, JSON.stringify(s.values))
  }

  gateSamples(rolloutId: string, limit = 2000): GateSample[] {
    const rows = this.db
      .prepare(
        'SELECT * FROM (SELECT * FROM rollout_gate_samples WHERE rollout_id = ? ORDER BY ts DESC LIMIT ?) ORDER BY ts',
      )
      .all(rolloutId, limit) as { ts: number; wave: number; vals: string }[]
    return rows.map((r) => ({ ts: r.ts, wave: r.wave, values: JSON.parse(r.vals) as Record<string, number | null> }))
  }
}
