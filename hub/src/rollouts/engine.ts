// The rollout engine [EF-8]: one tick at a time it moves every active
// rollout one step through its persisted state machine. Everything it knows
// lives in SQLite, so a restarted hub continues where it stopped [EF-8.9];
// the clock and randomness are options, so tests drive it with a fake clock.
import { createHash, randomUUID } from 'node:crypto'
import type { Logger } from 'pino'
import { EdgeFleetError, type FirmwareProfile } from '@edgefleet/shared'
import type { DeviceRow, HubStore, RolloutDeviceRow, RolloutRow, RolloutState } from '../store/index.js'
import { FINAL_ROLLOUT_STATES, TERMINAL_STATES } from '../store/index.js'
import type { Deployer } from '../distribution/deployer.js'
import type { CommandSender } from '../distribution/commands.js'
import { matches } from './selector.js'
import { resolveSpec, type RolloutInput, type RolloutSpec } from './spec.js'
import { WindowCache, cronFiredBetween, unmetConditions } from './schedule.js'
import { gateValues, judge, type GateVerdict } from './gates.js'

export interface RolloutEngineDeps {
  store: HubStore
  deployer: Pick<Deployer, 'deployTo'>
  commands?: Pick<CommandSender, 'shadow' | 'discard'>
  profiles: Map<string, FirmwareProfile>
  log: Logger
  /** Clock seam (ms since epoch). */
  now: () => number
  /** Randomness seam for start jitter. */
  random?: () => number
}

export const defaultEngineOptions = {
  /** How often the hub ticks its rollouts, ms. */
  tickMs: 1000,
} as const

export type RolloutAction = 'pause' | 'resume' | 'abort' | 'promote' | 'rollback' | 'approve'

const DONE_DEVICE = new Set(['activated', 'skipped', 'failed'])
const WAITING = new Set(['pending', 'waiting_window', 'waiting_conditions', 'scheduled'])

const ord = (rolloutId: string, deviceId: string) =>
  createHash('sha256').update(`${rolloutId}\u0000${deviceId}`).digest('hex')

export class RolloutEngine {
  private timer?: NodeJS.Timeout
  private ticking?: Promise<void>
  private readonly random: () => number

  constructor(private readonly d: RolloutEngineDeps) {
    this.random = d.random ?? Math.random
  }

  /** Ticks every `tickMs` until close(); ticks never overlap. */
  start(tickMs: number = defaultEngineOptions.tickMs): void {
    this.timer = setInterval(
      () => void this.tick().catch((err: Error) => this.d.log.error({ err }, 'rollout tick failed')),
      tickMs,
    )
    this.timer.unref()
  }

  async close(): Promise<void> {
    clearInterval(this.timer)
    await this.ticking
  }

  // ---------------------------------------------------------------- create

  async create(input: RolloutInput & { model: string; version: string }, actor: string | null): Promise<RolloutRow> {
    const { store, now } = this.d
    const spec = resolveSpec(input)
    if (!store.registry.getVersion(input.model, input.version))
      throw new EdgeFleetError('EF_ERR_MODEL_NOT_FOUND', `${input.model}@${input.version}`)
    // Disabled and removed devices take no new rollout [EF-1.3.3].
    const matched = store.devices
      .list(1_000_000, 0)
      .filter((dev) => dev.status === 'active' && matches(spec.selector, dev))
    if (matched.length === 0)
      throw new EdgeFleetError('EF_ERR_TARGET_EMPTY', 'the selector matches no provisioned device')
    const id = randomUUID()
    const t = now()
    const delayed =
      spec.schedule.start !== undefined || (spec.schedule.startAt !== undefined && spec.schedule.startAt > t)
    store.rollouts.tx(() => {
      store.rollouts.create({
        id,
        model: input.model,
        version: input.version,
        spec,
        state: delayed ? 'scheduled' : 'running',
        createdBy: actor,
        createdAt: t,
      })
      store.rollouts.update(id, { phase: spec.shadow ? 'shadow' : 'deploy', phaseStartedAt: t }, t)
      this.enroll(id, input.model, input.version, matched, null, t)
      store.rollouts.decide({
        rolloutId: id,
        ts: t,
        wave: 0,
        kind: 'action',
        decision: 'create',
        detail: { devices: matched.length, state: delayed ? 'scheduled' : 'running' },
        actor,
      })
    })
    this.d.log.info(
      { rollout: id, model: input.model, version: input.version, devices: matched.length },
      'rollout created',
    )
    return store.rollouts.get(id)!
  }

  private enroll(
    id: string,
    model: string,
    version: string,
    devices: DeviceRow[],
    wave: number | null,
    t: number,
  ): number {
    const rows = devices.map((dev) => {
      const prev = dev.state?.models?.find((m) => m.name === model)?.version ?? null
      return {
        deviceId: dev.id,
        ord: ord(id, dev.id),
        previousVersion: prev,
        status: prev === version ? ('skipped' as const) : ('pending' as const),
        wave: prev === version ? null : wave,
      }
    })
    this.d.store.rollouts.addDevices(id, rows, t)
    return rows.length
  }

  // --------------------------------------------------------------- actions

  action(id: string, action: RolloutAction, actor: string | null): RolloutRow {
    const { store } = this.d
    const r = store.rollouts.get(id)
    if (!r) throw new EdgeFleetError('EF_ERR_ROLLOUT_NOT_FOUND', id)
    const t = this.d.now()
    const refuse = () => new EdgeFleetError('EF_ERR_ROLLOUT_STATE', `cannot ${action} a rollout that is ${r.state}`)
    const decide = (detail: Record<string, unknown> = {}) =>
      store.rollouts.decide({
        rolloutId: id,
        ts: t,
        wave: r.wave,
        kind: 'action',
        decision: action,
        detail: { from: r.state, ...detail },
        actor,
      })
    if (FINAL_ROLLOUT_STATES.has(r.state)) throw refuse()
    store.rollouts.tx(() => {
      switch (action) {
        case 'pause':
          if (!['scheduled', 'running', 'awaiting_approval'].includes(r.state)) throw refuse()
          store.rollouts.update(
            id,
            { state: 'paused', pausedFrom: r.state, pausedAt: t, reason: `paused by ${actor ?? 'operator'}` },
            t,
          )
          break
        case 'resume': {
          if (r.state !== 'paused') throw refuse()
          // Soak timers stop while paused: shift the end by the pause's length [EF-8.7].
          const soakUntil = r.soakUntil !== null && r.pausedAt !== null ? r.soakUntil + (t - r.pausedAt) : r.soakUntil
          store.rollouts.update(
            id,
            { state: r.pausedFrom ?? 'running', pausedFrom: null, pausedAt: null, soakUntil, reason: null },
            t,
          )
          break
        }
        case 'abort':
          store.rollouts.update(id, { state: 'aborted', reason: `aborted by ${actor ?? 'operator'}` }, t)
          break
        case 'approve':
          if (r.state !== 'awaiting_approval') throw refuse()
          this.nextWave(r, t)
          break
        case 'promote':
          if (r.state === 'rolling_back') throw refuse()
          if (r.state === 'scheduled') store.rollouts.update(id, { state: 'running', phaseStartedAt: t }, t)
          else this.nextWave({ ...r, state: 'running' }, t, true)
          break
        case 'rollback':
          if (r.state === 'rolling_back') throw refuse()
          store.rollouts.update(
            id,
            {
              state: 'rolling_back',
              phase: 'rollback',
              phaseStartedAt: t,
              reason: `rollback by ${actor ?? 'operator'}`,
            },
            t,
          )
          break
      }
      decide()
    })
    return store.rollouts.get(id)!
  }

  // ------------------------------------------------------------------ tick

  /** One step for every active rollout. Concurrent calls share one tick. */
  tick(): Promise<void> {
    if (!this.ticking) this.ticking = this.runTick().finally(() => (this.ticking = undefined))
    return this.ticking
  }

  private async runTick(): Promise<void> {
    const active = this.d.store.rollouts.active()
    if (active.length === 0) return
    const t = this.d.now()
    const fleet = this.d.store.devices.list(1_000_000, 0)
    const windows = new WindowCache(this.d.profiles, t)
    for (const r of active) {
      try {
        await this.step(r, fleet, windows, t)
      } catch (err) {
        this.d.log.error({ rollout: r.id, err }, 'rollout step failed')
      }
    }
  }

  private async step(r: RolloutRow, fleet: DeviceRow[], windows: WindowCache, t: number): Promise<void> {
    const { store } = this.d
    const spec = r.spec as RolloutSpec
    if (r.state === 'scheduled') {
      const s = spec.schedule
      const since = r.phaseStartedAt ?? r.createdAt
      const due = s.start !== undefined ? cronFiredBetween(s.start, s.timezone, since, t) : (s.startAt ?? 0) <= t
      store.rollouts.tx(() => {
        if (due) {
          store.rollouts.update(r.id, { state: 'running', phaseStartedAt: t }, t)
          store.rollouts.decide({
            rolloutId: r.id,
            ts: t,
            wave: 0,
            kind: 'schedule',
            decision: 'start',
            detail: { start: s.start ?? null, startAt: s.startAt ?? null },
            actor: null,
          })
        } else store.rollouts.update(r.id, { phaseStartedAt: t }, t)
      })
      if (!due) return
      r = store.rollouts.get(r.id)!
    }
    // Devices that joined the fleet later and match are included [EF-8.9].
    const known = store.rollouts.deviceIds(r.id)
    const joiners = fleet.filter((dev) => !known.has(dev.id) && matches(spec.selector, dev))
    if (joiners.length) {
      this.enroll(
        r.id,
        r.model,
        r.version,
        joiners,
        r.state === 'running' || r.state === 'paused' || r.state === 'awaiting_approval' ? r.wave : null,
        t,
      )
      store.rollouts.decide({
        rolloutId: r.id,
        ts: t,
        wave: r.wave,
        kind: 'enroll',
        decision: 'joined',
        detail: { devices: joiners.map((x) => x.id).slice(0, 50), count: joiners.length },
        actor: null,
      })
    }
    if (r.state === 'rolling_back') return this.stepRollback(r, t)
    if (r.state !== 'running') return
    const byId = new Map(fleet.map((x) => [x.id, x]))
    this.draw(r, spec, t)
    const devices = store.rollouts.devices(r.id)
    this.track(r, devices, t)
    const wave = devices.filter((x) => x.wave === r.wave)

    if (r.phase === 'shadow') return this.stepShadow(r, spec, wave, t)
    await this.dispatch(r, spec, wave, byId, windows, t)
    const now = store.rollouts.devices(r.id).filter((x) => x.wave === r.wave)
    if (r.phase === 'deploy') {
      if (now.every((x) => DONE_DEVICE.has(x.status))) {
        const soakMs = spec.waves[r.wave].soakMs ?? spec.soakMs
        store.rollouts.tx(() => {
          store.rollouts.update(r.id, { phase: 'soak', soakUntil: t + soakMs }, t)
          store.rollouts.decide({
            rolloutId: r.id,
            ts: t,
            wave: r.wave,
            kind: 'wave',
            decision: 'deployed',
            detail: counts(now),
            actor: null,
          })
        })
      }
      return
    }
    if (r.phase === 'soak') {
      const v = this.evaluate(r, spec, now, byId, t)
      if (v.verdict === 'fail') return this.fail(r, spec, v, t)
      if (t >= (r.soakUntil ?? 0)) {
        if (v.verdict === 'pass') {
          store.rollouts.tx(() => {
            store.rollouts.decide({
              rolloutId: r.id,
              ts: t,
              wave: r.wave,
              kind: 'gate',
              decision: 'pass',
              detail: { ...v.values },
              actor: null,
            })
            this.nextWave(r, t)
          })
          // Start the next wave's deploys in this same tick rather than the next one.
          const next = store.rollouts.get(r.id)!
          if (next.state === 'running' && next.wave !== r.wave) return this.step(next, fleet, windows, t)
        } else if (r.reason !== 'waiting for data') {
          store.rollouts.tx(() => {
            store.rollouts.update(r.id, { reason: 'waiting for data' }, t)
            store.rollouts.decide({
              rolloutId: r.id,
              ts: t,
              wave: r.wave,
              kind: 'gate',
              decision: 'wait',
              detail: { ...v.values, minRequests: spec.gates.minRequests },
              actor: null,
            })
          })
        }
      }
    }
  }

  /** Assigns the current wave's devices (cumulative target) in their stable random order [EF-8.3]. */
  private draw(r: RolloutRow, spec: RolloutSpec, t: number): void {
    const all = this.d.store.rollouts.devices(r.id).filter((x) => x.status !== 'skipped')
    const w = spec.waves[r.wave]
    const target =
      w.percent !== undefined ? Math.ceil((w.percent / 100) * all.length) : Math.min(w.count ?? 0, all.length)
    const drawn = all.filter((x) => x.wave !== null && x.wave <= r.wave).length
    if (drawn >= target) return
    const pick = all.filter((x) => x.wave === null).slice(0, target - drawn)
    this.d.store.rollouts.tx(() => {
      for (const x of pick) this.d.store.rollouts.updateDevice(r.id, x.deviceId, { wave: r.wave }, t)
    })
  }

  /** Folds deployment progress into device statuses. */
  private track(r: RolloutRow, devices: RolloutDeviceRow[], t: number): void {
    const { store } = this.d
    const cache = new Map<string, Map<string, { state: string; code: string | null }>>()
    const stateOf = (dep: string, dev: string) => {
      let m = cache.get(dep)
      if (!m) {
        m = new Map(store.deployments.devices(dep).map((x) => [x.deviceId, { state: x.state, code: x.code }]))
        cache.set(dep, m)
      }
      return m.get(dev)
    }
    store.rollouts.tx(() => {
      for (const x of devices) {
        if (x.status === 'deploying' && x.deploymentId) {
          const s = stateOf(x.deploymentId, x.deviceId)
          if (s?.state === 'activated')
            store.rollouts.updateDevice(r.id, x.deviceId, { status: 'activated', activatedAt: t }, t)
          else if (s && TERMINAL_STATES.has(s.state))
            store.rollouts.updateDevice(r.id, x.deviceId, { status: 'failed', code: s.code ?? s.state }, t)
        } else if (x.status === 'rolling_back' && x.rollbackDeploymentId) {
          const s = stateOf(x.rollbackDeploymentId, x.deviceId)
          if (s?.state === 'activated' || s?.state === 'rolled_back')
            store.rollouts.updateDevice(r.id, x.deviceId, { status: 'rolled_back' }, t)
          else if (s && TERMINAL_STATES.has(s.state))
            store.rollouts.updateDevice(r.id, x.deviceId, { status: 'failed', code: s.code ?? s.state }, t)
        }
      }
    })
  }

  /** Sends deploys to the wave's devices that are due: in their window, showing the conditions, past their jitter [EF-8.4]. */
  private async dispatch(
    r: RolloutRow,
    spec: RolloutSpec,
    wave: RolloutDeviceRow[],
    byId: Map<string, DeviceRow>,
    windows: WindowCache,
    t: number,
  ): Promise<void> {
    const { store } = this.d
    const due: DeviceRow[] = []
    store.rollouts.tx(() => {
      for (const x of wave) {
        if (!WAITING.has(x.status)) continue
        const dev = byId.get(x.deviceId)
        if (!dev) continue
        let status: RolloutDeviceRow['status'] = x.status
        let dueAt = x.dueAt
        if (spec.schedule.maintenanceWindows && !windows.open(dev.profile)) status = 'waiting_window'
        else if (unmetConditions(spec.schedule.conditions, dev.state).length) status = 'waiting_conditions'
        else if (spec.schedule.jitterMs > 0 && dueAt === null) {
          dueAt = t + Math.floor(this.random() * spec.schedule.jitterMs)
          status = 'scheduled'
        } else if (dueAt === null || dueAt <= t) {
          due.push(dev)
          continue
        }
        if (status !== x.status || dueAt !== x.dueAt)
          store.rollouts.updateDevice(r.id, x.deviceId, { status, dueAt }, t)
        if (status === 'scheduled' && dueAt !== null && dueAt <= t) due.push(dev)
      }
    })
    if (due.length === 0) return
    const dep = await this.d.deployer.deployTo(due, {
      model: r.model,
      version: r.version,
      target: `rollout:${r.id}#${r.wave + 1}`,
    })
    store.rollouts.tx(() => {
      for (const dev of due) store.rollouts.updateDevice(r.id, dev.id, { status: 'deploying', deploymentId: dep.id }, t)
    })
  }

  /** Gate values for the current wave, stored as one sample of the time series [EF-8.5]. */
  private evaluate(
    r: RolloutRow,
    spec: RolloutSpec,
    wave: RolloutDeviceRow[],
    byId: Map<string, DeviceRow>,
    t: number,
  ): GateVerdict {
    const { store } = this.d
    const cohortIds = new Set(wave.filter((x) => x.status === 'activated').map((x) => x.deviceId))
    const profiles = new Set([...cohortIds].map((id) => byId.get(id)?.profile))
    const prevs = new Set(wave.map((x) => x.previousVersion).filter((v): v is string => v !== null && v !== r.version))
    const since = r.phaseStartedAt ?? r.createdAt
    const cohort = store.rolloutTelemetry.cohort(r.model, r.version, (id) => cohortIds.has(id), since, t)
    const merge = (accept: (id: string) => boolean, from: number, to: number) => {
      const parts = [...prevs].map((v) => store.rolloutTelemetry.cohort(r.model, v, accept, from, to))
      return parts.reduce(
        (a, b) => ({
          devices: a.devices + b.devices,
          requests: a.requests + b.requests,
          errors: a.errors + b.errors,
          latency: a.latency.map((c, i) => c + b.latency[i]),
          confidence: a.confidence.map((c, i) => c + b.confidence[i]),
        }),
        {
          ...cohort,
          devices: 0,
          requests: 0,
          errors: 0,
          latency: cohort.latency.map(() => 0),
          confidence: cohort.confidence.map(() => 0),
        },
      )
    }
    let baseline = merge((id) => !cohortIds.has(id) && profiles.has(byId.get(id)?.profile), since, t)
    if (baseline.requests === 0) baseline = merge((id) => cohortIds.has(id), since - spec.gates.baselineMs, since)
    const shadow = store.rolloutTelemetry.shadow(r.model, r.version, (id) => cohortIds.has(id), since, t)
    const failedDevices = wave.filter((x) => x.status === 'failed').length
    const verdict = judge(gateValues(cohort, baseline, shadow, failedDevices, spec.gates.p95FloorMs ?? 0), spec.gates, {
      needRequests: true,
    })
    store.rollouts.addGateSample(r.id, { ts: t, wave: r.wave, values: sampleOf(verdict) })
    return verdict
  }

  private fail(r: RolloutRow, spec: RolloutSpec, v: GateVerdict, t: number): void {
    const { store } = this.d
    const why = v.failed.map((f) => `${f.gate} ${round(f.value)} vs ${round(f.threshold)}`).join(', ')
    store.rollouts.tx(() => {
      store.rollouts.decide({
        rolloutId: r.id,
        ts: t,
        wave: r.wave,
        kind: 'gate',
        decision: 'fail',
        detail: { failed: v.failed, values: v.values, action: spec.onFail },
        actor: null,
      })
      if (spec.onFail === 'rollback')
        store.rollouts.update(
          r.id,
          { state: 'rolling_back', phase: 'rollback', phaseStartedAt: t, reason: `gate failed: ${why}` },
          t,
        )
      else
        store.rollouts.update(
          r.id,
          { state: 'paused', pausedFrom: 'running', pausedAt: t, reason: `gate failed: ${why}` },
          t,
        )
    })
    this.d.log.warn({ rollout: r.id, wave: r.wave + 1, failed: v.failed }, `rollout gate failed → ${spec.onFail}`)
  }

  /** Moves to the next wave, the approval wait, or the end. Call inside a transaction. */
  private nextWave(r: RolloutRow, t: number, promoted = false): void {
    const { store } = this.d
    const spec = r.spec as RolloutSpec
    const last = r.wave >= spec.waves.length - 1
    if (last) {
      store.rollouts.update(r.id, { state: 'completed', soakUntil: null, reason: null }, t)
      store.rollouts.decide({
        rolloutId: r.id,
        ts: t,
        wave: r.wave,
        kind: 'wave',
        decision: 'completed',
        detail: { promoted },
        actor: null,
      })
      return
    }
    const needApproval =
      !promoted && r.state !== 'awaiting_approval' && (spec.approval || spec.waves[r.wave].approval === true)
    if (needApproval) {
      store.rollouts.update(
        r.id,
        { state: 'awaiting_approval', reason: `wave ${r.wave + 1} passed; approve to start wave ${r.wave + 2}` },
        t,
      )
      store.rollouts.decide({
        rolloutId: r.id,
        ts: t,
        wave: r.wave,
        kind: 'wave',
        decision: 'awaiting_approval',
        detail: {},
        actor: null,
      })
      return
    }
    store.rollouts.update(
      r.id,
      {
        state: 'running',
        wave: r.wave + 1,
        phase: spec.shadow ? 'shadow' : 'deploy',
        phaseStartedAt: t,
        soakUntil: null,
        reason: null,
      },
      t,
    )
    store.rollouts.decide({
      rolloutId: r.id,
      ts: t,
      wave: r.wave + 1,
      kind: 'wave',
      decision: 'start',
      detail: { wave: spec.waves[r.wave + 1], promoted },
      actor: null,
    })
  }

  /** Shadow stage: candidates first, agreement gate, then deploy [EF-8.8]. */
  private async stepShadow(r: RolloutRow, spec: RolloutSpec, wave: RolloutDeviceRow[], t: number): Promise<void> {
    const { store, commands } = this.d
    const cfg = spec.shadow!
    const fresh = wave.filter((x) => WAITING.has(x.status))
    if (fresh.length && commands) {
      for (const x of fresh) {
        try {
          await commands.shadow(x.deviceId, r.model, r.version, cfg.fraction)
          store.rollouts.updateDevice(r.id, x.deviceId, { status: 'shadowing' }, t)
        } catch (err) {
          store.rollouts.updateDevice(
            r.id,
            x.deviceId,
            { status: 'failed', code: (err as EdgeFleetError).code ?? 'EF_ERR_INTERNAL' },
            t,
          )
        }
      }
      if (r.soakUntil === null) store.rollouts.update(r.id, { soakUntil: t + cfg.soakMs }, t)
      return
    }
    const ids = new Set(wave.filter((x) => x.status === 'shadowing').map((x) => x.deviceId))
    const since = r.phaseStartedAt ?? r.createdAt
    const sh = store.rolloutTelemetry.shadow(r.model, r.version, (id) => ids.has(id), since, t)
    const empty = store.rolloutTelemetry.cohort(r.model, '\u0000none', () => false, 0, 0)
    const v = judge(gateValues(empty, empty, sh, wave.filter((x) => x.status === 'failed').length), spec.gates, {
      needRequests: false,
      needShadow: true,
    })
    store.rollouts.addGateSample(r.id, { ts: t, wave: r.wave, values: sampleOf(v) })
    const discardAll = async () => {
      for (const id of ids) await commands?.discard(id, r.model, r.version).catch(() => undefined)
    }
    if (v.verdict === 'fail') {
      await discardAll()
      store.rollouts.tx(() => {
        for (const id of ids) store.rollouts.updateDevice(r.id, id, { status: 'pending' }, t)
        store.rollouts.decide({
          rolloutId: r.id,
          ts: t,
          wave: r.wave,
          kind: 'gate',
          decision: 'fail',
          detail: { stage: 'shadow', failed: v.failed, values: v.values, action: spec.onFail },
          actor: null,
        })
        const reason = `shadow gate failed: ${v.failed.map((f) => `${f.gate} ${round(f.value)} vs ${round(f.threshold)}`).join(', ')}`
        // Nothing was activated: a rollback here is the discard itself [EF-8.6].
        if (spec.onFail === 'rollback') store.rollouts.update(r.id, { state: 'rolled_back', reason }, t)
        else store.rollouts.update(r.id, { state: 'paused', pausedFrom: 'running', pausedAt: t, reason }, t)
      })
      return
    }
    if (t >= (r.soakUntil ?? Infinity) && v.verdict === 'pass') {
      await discardAll()
      store.rollouts.tx(() => {
        for (const id of ids) store.rollouts.updateDevice(r.id, id, { status: 'pending' }, t)
        store.rollouts.decide({
          rolloutId: r.id,
          ts: t,
          wave: r.wave,
          kind: 'gate',
          decision: 'pass',
          detail: { stage: 'shadow', ...v.values },
          actor: null,
        })
        store.rollouts.update(r.id, { phase: 'deploy', phaseStartedAt: t, soakUntil: null }, t)
      })
    }
  }

  /** Signed rollback deploys of each device's previous version [EF-8.6]. */
  private async stepRollback(r: RolloutRow, t: number): Promise<void> {
    const { store, deployer } = this.d
    const devices = store.rollouts.devices(r.id)
    this.track(r, devices, t)
    const fresh = store.rollouts
      .devices(r.id)
      .filter((x) => (x.status === 'activated' || x.status === 'deploying') && x.rollbackDeploymentId === null)
    const byVersion = new Map<string, RolloutDeviceRow[]>()
    const noTarget: string[] = []
    for (const x of fresh) {
      if (x.previousVersion === null || x.previousVersion === r.version) noTarget.push(x.deviceId)
      else byVersion.set(x.previousVersion, [...(byVersion.get(x.previousVersion) ?? []), x])
    }
    const fleet = new Map(store.devices.list(1_000_000, 0).map((x) => [x.id, x]))
    for (const [version, list] of byVersion) {
      const devs = list.map((x) => fleet.get(x.deviceId)).filter((x): x is DeviceRow => x !== undefined)
      const dep = await deployer.deployTo(devs, {
        model: r.model,
        version,
        target: `rollout:${r.id}#rollback`,
        rollback: true,
      })
      store.rollouts.tx(() => {
        for (const x of list)
          store.rollouts.updateDevice(r.id, x.deviceId, { status: 'rolling_back', rollbackDeploymentId: dep.id }, t)
      })
    }
    if (noTarget.length) {
      store.rollouts.tx(() => {
        for (const id of noTarget)
          store.rollouts.updateDevice(r.id, id, { status: 'failed', code: 'EF_ERR_NO_ROLLBACK_TARGET' }, t)
        store.rollouts.decide({
          rolloutId: r.id,
          ts: t,
          wave: r.wave,
          kind: 'rollback',
          decision: 'no_target',
          detail: { devices: noTarget.slice(0, 50), count: noTarget.length },
          actor: null,
        })
      })
    }
    if (byVersion.size) {
      store.rollouts.decide({
        rolloutId: r.id,
        ts: t,
        wave: r.wave,
        kind: 'rollback',
        decision: 'sent',
        detail: Object.fromEntries([...byVersion].map(([v, l]) => [v, l.length])),
        actor: null,
      })
      return
    }
    const after = store.rollouts.devices(r.id)
    if (after.every((x) => x.status !== 'rolling_back')) {
      store.rollouts.tx(() => {
        // Devices never reached by the rollout keep waiting forever otherwise.
        for (const x of after)
          if (WAITING.has(x.status) || x.status === 'shadowing')
            store.rollouts.updateDevice(r.id, x.deviceId, { status: 'pending', dueAt: null }, t)
        store.rollouts.update(r.id, { state: 'rolled_back' }, t)
        store.rollouts.decide({
          rolloutId: r.id,
          ts: t,
          wave: r.wave,
          kind: 'rollback',
          decision: 'done',
          detail: counts(after),
          actor: null,
        })
      })
    }
  }
}

function counts(list: RolloutDeviceRow[]): Record<string, number> {
  const out: Record<string, number> = {}
  for (const x of list) out[x.status] = (out[x.status] ?? 0) + 1
  return out
}

function sampleOf(v: GateVerdict): Record<string, number | null> {
  const {
    errorRate,
    baselineErrorRate,
    p95Ms,
    baselineP95Ms,
    p95Ratio,
    shadowAgreement,
    confidencePsi,
    confidenceShift,
    cohortRequests,
    baselineRequests,
  } = v.values
  return {
    errorRate,
    baselineErrorRate,
    p95Ms,
    baselineP95Ms,
    p95Ratio,
    shadowAgreement,
    confidencePsi,
    confidenceShift,
    cohortRequests,
    baselineRequests,
  }
}

const round = (x: number) => Math.round(x * 1000) / 1000

export type { RolloutState }
