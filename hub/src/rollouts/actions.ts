// Operator actions on a rollout [EF-8.7]: for each, the states it applies to
// and what it changes. Every action is recorded with its actor; one a state
// does not allow is refused with EF_ERR_ROLLOUT_STATE and changes nothing.
import { EdgeFleetError, defined } from '@edgefleet/shared'
import type { HubStore, RolloutRow, RolloutState } from '../store/index.js'
import { FINAL_ROLLOUT_STATES } from '../store/index.js'
import { decide } from './context.js'
import { nextWave } from './waves.js'

export type RolloutAction = 'pause' | 'resume' | 'abort' | 'promote' | 'rollback' | 'approve'

interface ActionHandler {
  /** Whether the action applies to a rollout in this (non-final) state. */
  allowed: (state: RolloutState) => boolean
  /** Applies it; runs inside the action's transaction. `by` names the actor for reasons. */
  apply: (store: HubStore, r: RolloutRow, t: number, by: string) => void
}

const ACTIONS: Record<RolloutAction, ActionHandler> = {
  pause: {
    allowed: (s) => s === 'scheduled' || s === 'running' || s === 'awaiting_approval',
    apply: (store, r, t, by) =>
      store.rollouts.update(r.id, { state: 'paused', pausedFrom: r.state, pausedAt: t, reason: `paused by ${by}` }, t),
  },
  resume: {
    allowed: (s) => s === 'paused',
    apply: (store, r, t) => {
      // Soak timers stop while paused: shift the end by the pause's length [EF-8.7].
      const soakUntil = r.soakUntil !== null && r.pausedAt !== null ? r.soakUntil + (t - r.pausedAt) : r.soakUntil
      store.rollouts.update(
        r.id,
        { state: r.pausedFrom ?? 'running', pausedFrom: null, pausedAt: null, soakUntil, reason: null },
        t,
      )
    },
  },
  abort: {
    allowed: () => true,
    apply: (store, r, t, by) => store.rollouts.update(r.id, { state: 'aborted', reason: `aborted by ${by}` }, t),
  },
  approve: {
    allowed: (s) => s === 'awaiting_approval',
    apply: (store, r, t) => nextWave(store, r, t),
  },
  promote: {
    allowed: (s) => s !== 'rolling_back',
    apply: (store, r, t) => {
      if (r.state === 'scheduled') store.rollouts.update(r.id, { state: 'running', phaseStartedAt: t }, t)
      else nextWave(store, { ...r, state: 'running' }, t, true)
    },
  },
  rollback: {
    allowed: (s) => s !== 'rolling_back',
    apply: (store, r, t, by) =>
      store.rollouts.update(
        r.id,
        { state: 'rolling_back', phase: 'rollback', phaseStartedAt: t, reason: `rollback by ${by}` },
        t,
      ),
  },
}

/** Applies an operator action and records it; returns the rollout as it is afterwards. */
export function applyAction(
  store: HubStore,
  id: string,
  action: RolloutAction,
  actor: string | null,
  nowMs: number,
): RolloutRow {
  const r = store.rollouts.get(id)
  if (!r) throw new EdgeFleetError('EF_ERR_ROLLOUT_NOT_FOUND', id)
  const handler = ACTIONS[action]
  if (FINAL_ROLLOUT_STATES.has(r.state) || !handler.allowed(r.state))
    throw new EdgeFleetError('EF_ERR_ROLLOUT_STATE', `cannot ${action} a rollout that is ${r.state}`)
  store.rollouts.tx(() => {
    handler.apply(store, r, nowMs, actor ?? 'operator')
    decide(store, r, nowMs, 'action', action, { from: r.state }, actor)
  })
  return defined(store.rollouts.get(id), `rollout ${id}`)
}
