// State 'scheduled' [EF-8.4]: waits for the schedule's start (a cron
// expression fired since the last look, or a start time reached), then runs.
import { defined } from '@edgefleet/shared'
import type { RolloutRow } from '../../store/index.js'
import { decide, type StepContext } from '../context.js'
import { cronFiredBetween } from '../schedule.js'
import type { RolloutSpec } from '../spec.js'
import { stepRunning } from './running.js'

export async function stepScheduled(ctx: StepContext, r: RolloutRow): Promise<void> {
  const { store } = ctx.deps
  const { t } = ctx
  const s = (r.spec as RolloutSpec).schedule
  const since = r.phaseStartedAt ?? r.createdAt
  const due = s.start !== undefined ? cronFiredBetween(s.start, s.timezone, since, t) : (s.startAt ?? 0) <= t
  store.rollouts.tx(() => {
    if (due) {
      store.rollouts.update(r.id, { state: 'running', phaseStartedAt: t }, t)
      decide(store, { id: r.id, wave: 0 }, t, 'schedule', 'start', {
        start: s.start ?? null,
        startAt: s.startAt ?? null,
      })
    } else store.rollouts.update(r.id, { phaseStartedAt: t }, t)
  })
  // Started: its first wave is drawn and deployed in this same tick.
  if (due) await stepRunning(ctx, defined(store.rollouts.get(r.id), `rollout ${r.id}`))
}
