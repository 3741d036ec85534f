// Waves [EF-8.3]: which devices the current wave holds (cumulative targets,
// stable random order) and what follows a wave that passed: the next wave,
// an approval wait, or the end.
import type { HubStore, RolloutRow } from '../store/index.js'
import { decide } from './context.js'
import type { RolloutSpec } from './spec.js'

/** Assigns the current wave's devices (cumulative target) in their stable random order [EF-8.3]. */
export function draw(store: HubStore, rollout: RolloutRow, nowMs: number): void {
  const spec = rollout.spec as RolloutSpec
  // Counted in SQLite: a tick of a drawn wave reads no device row here.
  const { total, drawn } = store.rollouts.drawCounts(rollout.id, rollout.wave)
  const w = spec.waves[rollout.wave]
  const target = w.percent !== undefined ? Math.ceil((w.percent / 100) * total) : Math.min(w.count ?? 0, total)
  if (drawn >= target) return
  const pick = store.rollouts.undrawn(rollout.id, target - drawn)
  store.rollouts.tx(() => {
    for (const id of pick) store.rollouts.updateDevice(rollout.id, id, { wave: rollout.wave }, nowMs)
  })
}

/**
 * Moves to the next wave, the approval wait, or the end. An operator's promote
 * skips the approval wait. Call inside a transaction.
 */
export function nextWave(store: HubStore, rollout: RolloutRow, nowMs: number, promoted = false): void {
  const spec = rollout.spec as RolloutSpec
  if (rollout.wave >= spec.waves.length - 1) {
    store.rollouts.update(rollout.id, { state: 'completed', soakUntil: null, reason: null }, nowMs)
    decide(store, rollout, nowMs, 'wave', 'completed', { promoted })
    return
  }
  const needApproval =
    !promoted && rollout.state !== 'awaiting_approval' && (spec.approval || spec.waves[rollout.wave].approval === true)
  if (needApproval) {
    store.rollouts.update(
      rollout.id,
      {
        state: 'awaiting_approval',
        reason: `wave ${rollout.wave + 1} passed; approve to start wave ${rollout.wave + 2}`,
      },
      nowMs,
    )
    decide(store, rollout, nowMs, 'wave', 'awaiting_approval')
    return
  }
  store.rollouts.update(
    rollout.id,
    {
      state: 'running',
      wave: rollout.wave + 1,
      phase: spec.shadow ? 'shadow' : 'deploy',
      phaseStartedAt: nowMs,
      soakUntil: null,
      reason: null,
    },
    nowMs,
  )
  decide(store, { id: rollout.id, wave: rollout.wave + 1 }, nowMs, 'wave', 'start', {
    wave: spec.waves[rollout.wave + 1],
    promoted,
  })
}
