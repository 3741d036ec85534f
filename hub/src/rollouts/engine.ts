// The rollout engine [EF-8]: one tick at a time it moves every active
// rollout one step through its persisted state machine, one handler per
// state (states/*.ts). Everything it knows lives in SQLite, so a restarted
// hub continues where it stopped [EF-8.9]; the clock and randomness are
// options, so tests drive it with a fake clock.
import { randomUUID } from 'node:crypto'
import { EdgeFleetError, defined } from '@edgefleet/shared'
import type { DeviceRow, FleetMark, RolloutRow } from '../store/index.js'
import { applyAction, type RolloutAction } from './actions.js'
import { decide, type RolloutEngineDeps, type StepContext } from './context.js'
import { enroll, enrollJoiners } from './devices.js'
import { WindowCache } from './schedule.js'
import { refuseDowngrade } from './downgrade.js'
import { matches } from './selector.js'
import { resolveSpec, type RolloutInput, type RolloutSpec } from './spec.js'
import { AGENT_ROLLOUT_MODEL, checkSubject } from './subject.js'
import { stepRollingBack } from './states/rolling-back.js'
import { stepRunning } from './states/running.js'
import { stepScheduled } from './states/scheduled.js'

export type { RolloutAction, RolloutEngineDeps }

/** What a rollout installs: a registered model version, or an agent release (`agent`: its version) [EF-8.17]. */
type RolloutSubject = { model: string; version: string; agent?: undefined } | { agent: string }

/** The rollout's model column, version and spec for its subject. */
function subjectOf(input: RolloutInput & RolloutSubject): { model: string; version: string; spec: RolloutSpec } {
  const spec = resolveSpec(input)
  if (input.agent !== undefined)
    return { model: AGENT_ROLLOUT_MODEL, version: input.agent, spec: { ...spec, agent: true } }
  return { model: input.model, version: input.version, spec }
}

export const defaultEngineOptions = {
  /** How often the hub ticks its rollouts, ms. */
  tickMs: 1000,
} as const

export class RolloutEngine {
  private timer?: NodeJS.Timeout
  private ticking?: Promise<void>
  private readonly deps: StepContext['deps']
  /** Per rollout, the fleet mark it last enrolled joiners at (in memory: a restarted hub looks at everyone once). */
  private readonly marks = new Map<string, FleetMark>()

  constructor(d: RolloutEngineDeps) {
    this.deps = { ...d, random: d.random ?? Math.random }
  }

  /** Ticks every `tickMs` until close(); ticks never overlap. */
  start(tickMs: number = defaultEngineOptions.tickMs): void {
    this.timer = setInterval(
      () => void this.tick().catch((err: unknown) => this.deps.log.error({ err }, 'rollout tick failed')),
      tickMs,
    )
    this.timer.unref()
  }

  async close(): Promise<void> {
    clearInterval(this.timer)
    await this.ticking
  }

  /** A rollout of a registered version (or agent release) to the devices its selector matches now [EF-8.2]. */
  create(input: RolloutInput & RolloutSubject, actor: string | null): RolloutRow {
    const { store, now } = this.deps
    const { model, version, spec } = subjectOf(input)
    checkSubject(store, { model, spec }, version)
    // Disabled and removed devices take no new rollout [EF-1.3.3].
    const mark = store.devices.fleetMark()
    const matched = store.devices.activeSince().filter((dev) => matches(spec.selector, dev))
    if (matched.length === 0)
      throw new EdgeFleetError('EF_ERR_TARGET_EMPTY', 'the selector matches no provisioned device')
    refuseDowngrade({ model, spec }, version, matched, spec.rollback)
    const id = randomUUID()
    const tickAt = now()
    const delayed =
      spec.schedule.start !== undefined || (spec.schedule.startAt !== undefined && spec.schedule.startAt > tickAt)
    const state = delayed ? 'scheduled' : 'running'
    store.rollouts.tx(() => {
      store.rollouts.create({
        id,
        model,
        version,
        spec,
        state,
        createdBy: actor,
        createdAt: tickAt,
      })
      store.rollouts.update(id, { phase: spec.shadow ? 'shadow' : 'deploy', phaseStartedAt: tickAt }, tickAt)
      enroll(store, { id, model, version, spec }, matched, null, tickAt)
      decide(store, { id, wave: 0 }, tickAt, 'action', 'create', { devices: matched.length, state }, actor)
    })
    this.marks.set(id, mark)
    this.deps.log.info({ rollout: id, model, version, devices: matched.length }, 'rollout created')
    return defined(store.rollouts.get(id), `rollout ${id} just created`)
  }

  /** An operator action [EF-8.7]; refused with EF_ERR_ROLLOUT_STATE where the state does not allow it. */
  action(id: string, action: RolloutAction, actor: string | null): RolloutRow {
    return applyAction(this.deps.store, id, action, actor, this.deps.now())
  }

  /** Device lookups for one tick: each device read once, when a handler first asks for it. */
  private tickDevices(): StepContext['byId'] {
    const { devices } = this.deps.store
    const seen = new Map<string, DeviceRow | undefined>()
    return {
      get(id) {
        if (!seen.has(id)) seen.set(id, devices.get(id))
        return seen.get(id)
      },
    }
  }

  /**
   * Joiner candidates per rollout [EF-8.9], from the fleet's membership mark:
   * nothing is read while no device was provisioned or changed status; then
   * only the rows past the rollout's own mark (shared by rollouts at the same mark).
   */
  private tickCandidates(): StepContext['candidates'] {
    const { devices } = this.deps.store
    const now = devices.fleetMark()
    const byMark = new Map<string, DeviceRow[]>()
    return (rolloutId) => {
      const since = this.marks.get(rolloutId)
      this.marks.set(rolloutId, now)
      if (since?.maxRowid === now.maxRowid && since.maxStatusAt === now.maxStatusAt) return []
      const key = since ? `${since.maxRowid}:${since.maxStatusAt}` : 'all'
      let rows = byMark.get(key)
      if (!rows) byMark.set(key, (rows = devices.activeSince(since)))
      return rows
    }
  }

  /** One step for every active rollout. Concurrent calls share one tick. */
  tick(): Promise<void> {
    this.ticking ??= this.runTick().finally(() => (this.ticking = undefined))
    return this.ticking
  }

  private async runTick(): Promise<void> {
    const active = this.deps.store.rollouts.active()
    if (active.length === 0) return
    const t = this.deps.now()
    const ctx: StepContext = {
      deps: this.deps,
      byId: this.tickDevices(),
      candidates: this.tickCandidates(),
      windows: new WindowCache(this.deps.profiles, t),
      t,
    }
    for (const r of active) {
      // A leader that fenced itself mid-tick leaves the rest to the next leader [EF-12.3].
      if (this.deps.leading && !this.deps.leading()) return
      try {
        await step(ctx, r)
      } catch (err) {
        this.deps.log.error({ rollout: r.id, err }, 'rollout step failed')
      }
    }
  }
}

/** The state handlers: one per state a rollout can be in while active. */
async function step(ctx: StepContext, rollout: RolloutRow): Promise<void> {
  switch (rollout.state) {
    case 'scheduled':
      return stepScheduled(ctx, rollout)
    case 'running':
      return stepRunning(ctx, rollout)
    case 'rolling_back':
      return stepRollingBack(ctx, rollout)
    case 'paused':
    case 'awaiting_approval':
      // Held by an operator or an approval: only devices that joined the fleet are taken in.
      enrollJoiners(ctx, rollout)
      return
    case 'completed':
    case 'aborted':
    case 'rolled_back':
      return // final: store.rollouts.active() does not return them
  }
}
