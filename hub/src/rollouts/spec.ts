// A rollout's spec: waves [EF-8.3], gates [EF-8.5], schedule [EF-8.4], failure
// action [EF-8.6], shadow stage [EF-8.8]. The API schema checks types; the
// rules between fields are checked here so each answers its own code.
import cron from 'node-cron'
import { EdgeFleetError } from '@edgefleet/shared'
import { toSelector, type Selector } from './selector.js'

interface Wave {
  /** Cumulative share of the matched devices once the wave is done (0-100]. */
  percent?: number
  /** Cumulative number of devices once the wave is done. */
  count?: number
  /** Soak after the wave's devices are done, ms; default the rollout's soakMs. */
  soakMs?: number
  /** Wait for an operator's approval before the next wave. */
  approval?: boolean
}

export interface Gates {
  /** Cohort error rate may exceed the baseline's by at most this much (0.01 = one point); null: off. */
  maxErrorRateDelta: number | null
  /** Cohort p95 latency / baseline p95 at most this; null: off. */
  maxP95Ratio: number | null
  /** Latencies below this count as this for the p95 ratio (sub-millisecond noise is no regression), ms. */
  p95FloorMs: number
  /** Top-1 agreement of shadow runs at least this; null: off. */
  minShadowAgreement: number | null
  /** PSI of confidence bins against the baseline at most this; null: off. */
  maxConfidencePsi: number | null
  /** Requests the cohort must have served before a wave can pass. */
  minRequests: number
  /** Install failures (rejected, health_failed, failed) tolerated per wave. */
  maxFailedDevices: number
  /** Look-back of the earlier interval the gates compare against [EF-8.5.5], and of the cohort's own pre-wave baseline when nothing else is left, ms. */
  baselineMs: number
  /**
   * Chance that a version as good as the baseline passes the whole rollout
   * without a gate failing (shared by every gate and wave, EF-8.5).
   */
  confidence: number
}

export type Condition = 'unmetered' | 'charging' | 'idle'

interface Schedule {
  /** node-cron expression: the rollout starts at its next match. */
  start?: string
  /** Time zone for `start` (IANA). */
  timezone?: string
  /** Start at this time (ms since epoch). */
  startAt?: number
  /** Deploy only inside each profile's maintenance window. */
  maintenanceWindows: boolean
  /** Device-state conditions a device must show before it gets its deploy. */
  conditions: Condition[]
  /** Spread each wave's deploys uniformly over this many ms. */
  jitterMs: number
}

export interface RolloutSpec {
  selector: Selector
  waves: Wave[]
  soakMs: number
  gates: Gates
  onFail: 'pause' | 'rollback'
  schedule: Schedule
  /** Ask for approval between every two waves. */
  approval: boolean
  shadow: { fraction: number; soakMs: number } | null
  /** A rollout to an older version than devices run: its deploys are signed rollbacks [EF-8.13]. */
  rollback: boolean
  /** An agent rollout [EF-8.17]: the version is an agent release, sent as agent-update commands. */
  agent?: true
}

export const defaultGates: Gates = {
  maxErrorRateDelta: 0.02,
  maxP95Ratio: 1.5,
  p95FloorMs: 2,
  minShadowAgreement: null,
  maxConfidencePsi: 0.25,
  minRequests: 20,
  maxFailedDevices: 0,
  baselineMs: 60 * 60_000, // 1 hour
  confidence: 0.99,
}

const defaultRolloutOptions = {
  /** Soak after each wave: 10 minutes. */
  soakMs: 10 * 60_000,
  waves: [{ percent: 1 }, { percent: 10 }, { percent: 50 }, { percent: 100 }] as Wave[],
  onFail: 'pause' as const,
} as const

export interface RolloutInput {
  selector: unknown
  waves?: Wave[]
  soakMs?: number
  gates?: Partial<Gates>
  onFail?: 'pause' | 'rollback'
  schedule?: Partial<Schedule>
  approval?: boolean
  shadow?: { fraction: number; soakMs?: number } | null
  rollback?: boolean
}

function validateWaves(waves: Wave[]): Wave[] {
  const bad = (why: string) => new EdgeFleetError('EF_ERR_WAVES_INVALID', why)
  if (!Array.isArray(waves) || waves.length < 1 || waves.length > 20) throw bad('expected 1-20 waves')
  let lastPct = 0
  let lastCount = 0
  waves.forEach((wave, index) => {
    const hasP = wave.percent !== undefined
    const hasC = wave.count !== undefined
    if (hasP === hasC) throw bad(`wave ${index + 1}: give exactly one of percent or count`)
    if (hasP) {
      if (!(typeof wave.percent === 'number' && wave.percent > 0 && wave.percent <= 100))
        throw bad(`wave ${index + 1}: percent must be in (0, 100], got ${wave.percent}`)
      if (wave.percent <= lastPct)
        throw bad(`wave ${index + 1}: percentages are cumulative and must increase (${wave.percent} after ${lastPct})`)
      lastPct = wave.percent
    } else {
      if (!(Number.isInteger(wave.count) && (wave.count as number) >= 1))
        throw bad(`wave ${index + 1}: count must be a whole number ≥ 1, got ${wave.count}`)
      if ((wave.count as number) <= lastCount)
        throw bad(`wave ${index + 1}: counts are cumulative and must increase (${wave.count} after ${lastCount})`)
      lastCount = wave.count as number
    }
    if (wave.soakMs !== undefined && !(Number.isInteger(wave.soakMs) && wave.soakMs >= 0))
      throw bad(`wave ${index + 1}: soakMs must be a whole number ≥ 0`)
  })
  if (waves[waves.length - 1].percent !== 100)
    throw bad('the last wave must be {"percent": 100}, so every matched device is covered')
  return waves.map((w) => ({ ...w }))
}

/** Range of each gate that can be off (null) [EF-8.5]; the CLI and the API check against the same table. */
export const GATE_RANGES = {
  maxErrorRateDelta: [0, 1],
  maxP95Ratio: [1, 1000],
  minShadowAgreement: [0, 1],
  maxConfidencePsi: [0, 100],
} as const satisfies Partial<Record<keyof Gates, readonly [number, number]>>

/**
 * Every gate is a finite number in its range, or null (off) where the gate can be off [EF-8.5]:
 * a string, NaN or a null where no "off" exists is refused with EF_ERR_GATES_INVALID, never
 * coerced (a coerced null would be 0, the strictest setting).
 */
export function validateGates(g: Partial<Gates> = {}): Gates {
  const given = Object.fromEntries(Object.entries(g).filter(([, v]) => v !== undefined)) as Partial<Gates>
  const out: Gates = { ...defaultGates, ...given }
  const bad = (why: string) => new EdgeFleetError('EF_ERR_GATES_INVALID', why)
  const shown = (v: unknown) => (typeof v === 'number' ? String(v) : JSON.stringify(v))
  for (const [k, [lo, hi]] of Object.entries(GATE_RANGES) as [keyof typeof GATE_RANGES, readonly number[]][]) {
    const v: unknown = out[k]
    if (v !== null && !(typeof v === 'number' && v >= lo && v <= hi))
      throw bad(`${k} must be a number in [${lo}, ${hi}] or null (off), got ${shown(v)}`)
  }
  const p95FloorMs: unknown = out.p95FloorMs
  if (!(typeof p95FloorMs === 'number' && Number.isFinite(p95FloorMs) && p95FloorMs >= 0))
    throw bad(`p95FloorMs must be a number ≥ 0, got ${shown(p95FloorMs)}`)
  const confidence: unknown = out.confidence
  if (!(typeof confidence === 'number' && confidence >= 0.5 && confidence <= 0.99999))
    throw bad(`confidence must be a number in [0.5, 0.99999], got ${shown(confidence)}`)
  for (const k of ['minRequests', 'maxFailedDevices', 'baselineMs'] as const) {
    const v: unknown = out[k]
    if (!(Number.isInteger(v) && (v as number) >= 0)) throw bad(`${k} must be a whole number ≥ 0, got ${shown(v)}`)
  }
  return out
}

function validateSchedule(schedule: Partial<Schedule> = {}): Schedule {
  const bad = (why: string) => new EdgeFleetError('EF_ERR_SCHEDULE_INVALID', why)
  if (schedule.start !== undefined && !cron.validate(schedule.start))
    throw bad(`start ${JSON.stringify(schedule.start)} is not a cron expression`)
  if (schedule.timezone !== undefined) {
    try {
      new Intl.DateTimeFormat('en-US', { timeZone: schedule.timezone })
    } catch {
      throw bad(`timezone ${JSON.stringify(schedule.timezone)} is not an IANA time zone`)
    }
  }
  if (schedule.startAt !== undefined && !(Number.isInteger(schedule.startAt) && schedule.startAt >= 0))
    throw bad('startAt must be ms since the epoch')
  if (schedule.start !== undefined && schedule.startAt !== undefined)
    throw bad('give start (cron) or startAt, not both')
  const conditions = [...new Set(schedule.conditions ?? [])]
  for (const c of conditions)
    if (!['unmetered', 'charging', 'idle'].includes(c))
      throw bad(`unknown condition ${JSON.stringify(c)} (unmetered, charging, idle)`)
  const jitterMs = schedule.jitterMs ?? 0
  if (!(Number.isInteger(jitterMs) && jitterMs >= 0 && jitterMs <= 24 * 3_600_000))
    throw bad('jitterMs must be a whole number of ms, at most a day')
  return {
    ...(schedule.start !== undefined ? { start: schedule.start } : {}),
    ...(schedule.timezone !== undefined ? { timezone: schedule.timezone } : {}),
    ...(schedule.startAt !== undefined ? { startAt: schedule.startAt } : {}),
    maintenanceWindows: schedule.maintenanceWindows ?? true,
    conditions,
    jitterMs,
  }
}

/** Validates a request into a complete spec; each part answers its own code. */
export function resolveSpec(input: RolloutInput): RolloutSpec {
  const selector = toSelector(input.selector)
  const waves = validateWaves(input.waves ?? defaultRolloutOptions.waves)
  const soakMs = input.soakMs ?? defaultRolloutOptions.soakMs
  if (!(Number.isInteger(soakMs) && soakMs >= 0))
    throw new EdgeFleetError('EF_ERR_WAVES_INVALID', 'soakMs must be a whole number ≥ 0')
  const gates = validateGates(input.gates)
  const schedule = validateSchedule(input.schedule)
  let shadow: RolloutSpec['shadow'] = null
  if (input.shadow) {
    const { fraction, soakMs: sk = soakMs } = input.shadow
    if (!(fraction > 0 && fraction <= 1))
      throw new EdgeFleetError('EF_ERR_GATES_INVALID', 'shadow.fraction must be in (0, 1]')
    if (gates.minShadowAgreement === null)
      throw new EdgeFleetError('EF_ERR_GATES_INVALID', 'a shadow stage needs gates.minShadowAgreement')
    shadow = { fraction, soakMs: sk }
  }
  return {
    selector,
    waves,
    soakMs,
    gates,
    onFail: input.onFail ?? 'pause',
    schedule,
    approval: input.approval ?? false,
    shadow,
    rollback: input.rollback ?? false,
  }
}
