// State 'scheduled' [EF-8.4]: waits for the schedule's start (a cron
// expression fired since the last look, or a start time reached), then runs.
import { defined } from '@edgefleet/shared'
import type { RolloutRow } from '../../store/index.js'
import { decide, type StepContext } from '../context.js'
import { cronFiredBetween } from '../schedule.js'
import type { RolloutSpec } from '../spec.js'
import { stepRunning } from './running.js'

export async function stepScheduled(ctx: StepContext, rollout: RolloutRow): Promise<void> {
  const { store } = ctx.deps
  const { t: nowMs } = ctx
  const s = (rollout.spec as RolloutSpec).schedule
  const since = rollout.phaseStartedAt ?? rollout.createdAt
  const due = s.start !== undefined ? cronFiredBetween(s.start, s.timezone, since, nowMs) : (s.startAt ?? 0) <= nowMs
  store.rollouts.tx(() => {
    if (due) {
      store.rollouts.update(rollout.id, { state: 'running', phaseStartedAt: nowMs }, nowMs)
      decide(store, { id: rollout.id, wave: 0 }, nowMs, 'schedule', 'start', {
        start: s.start ?? null,
        startAt: s.startAt ?? null,
      })
    } else store.rollouts.update(rollout.id, { phaseStartedAt: nowMs }, nowMs)
  })
  // Started: its first wave is drawn and deployed in this same tick.
  if (due) await stepRunning(ctx, defined(store.rollouts.get(rollout.id), `rollout ${rollout.id}`))
}
