// Waves [EF-8.3]: which devices the current wave holds (cumulative targets,
// stable random order) and what follows a wave that passed: the next wave,
// an approval wait, or the end.
import type { HubStore, RolloutRow } from '../store/index.js'
import { decide } from './context.js'
import type { RolloutSpec } from './spec.js'

/** Assigns the current wave's devices (cumulative target) in their stable random order [EF-8.3]. */
export function draw(store: HubStore, r: RolloutRow, t: number): void {
  const spec = r.spec as RolloutSpec
  // Counted in SQLite: a tick of a drawn wave reads no device row here.
  const { total, drawn } = store.rollouts.drawCounts(r.id, r.wave)
  const w = spec.waves[r.wave]
  const target = w.percent !== undefined ? Math.ceil((w.percent / 100) * total) : Math.min(w.count ?? 0, total)
  if (drawn >= target) return
  const pick = store.rollouts.undrawn(r.id, target - drawn)
  store.rollouts.tx(() => {
    for (const id of pick) store.rollouts.updateDevice(r.id, id, { wave: r.wave }, t)
  })
}

/**
 * Moves to the next wave, the approval wait, or the end. An operator's promote
 * skips the approval wait. Call inside a transaction.
 */
export function nextWave(store: HubStore, r: RolloutRow, t: number, promoted = false): void {
  const spec = r.spec as RolloutSpec
  if (r.wave >= spec.waves.length - 1) {
    store.rollouts.update(r.id, { state: 'completed', soakUntil: null, reason: null }, t)
    decide(store, r, t, 'wave', 'completed', { promoted })
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
    decide(store, r, t, 'wave', 'awaiting_approval')
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
  decide(store, { id: r.id, wave: r.wave + 1 }, t, 'wave', 'start', { wave: spec.waves[r.wave + 1], promoted })
}
