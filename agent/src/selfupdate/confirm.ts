// The new agent's side of a hand-over [EF-11.6, EF-11.7]: once it is
// connected to the hub and every model it serves passes its health check, it
// confirms — state.json keeps its slot and loses the trial, so the launcher
// stops counting starts — and reports agent_updated. Outcomes written by the
// launcher (a rollback) or by an earlier confirmation are reported by the
// agent that runs next, then cleared: the outbox makes them durable.
import type { Logger } from 'pino'
import { codeOf } from '@edgefleet/shared'
import type { EventReport } from '../updater/model-source.js'
import { readSlotState, slotsDir, writeSlotState, type AgentSlot, type PendingReport } from './state.js'

export interface ConfirmDeps {
  dataDir: string
  /** The slot this process runs from (EF_AGENT_SLOT); undefined: not started by the launcher. */
  runningSlot?: AgentSlot
  runningVersion: string
  /** Throws when a served model fails its health check. */
  health: () => Promise<void>
  report: (ev: EventReport) => void
  log: Logger
  onStep?: (step: string) => void
}

function eventOf(r: PendingReport): EventReport {
  return r.kind === 'agent_updated'
    ? { kind: r.kind, cmdId: r.cmdId, version: r.version, message: `agent ${r.fromVersion} -> ${r.version}` }
    : {
        kind: r.kind,
        cmdId: r.cmdId,
        version: r.version,
        code: 'EF_ERR_AGENT_ROLLED_BACK',
        message: `back on agent ${r.fromVersion}: ${r.reason ?? 'no reason recorded'}`.slice(0, 2048),
      }
}

/** Reports and clears an outcome state.json holds (call at start, before connecting). */
export function reportPending(d: ConfirmDeps): void {
  if (!d.runningSlot) return
  const dir = slotsDir(d.dataDir)
  const s = readSlotState(dir)
  if (!s.report) return
  d.report(eventOf(s.report))
  writeSlotState(dir, { v: 1, current: s.current, ...(s.trial ? { trial: s.trial } : {}) })
}

/**
 * Confirms a trial of this very slot (call on each connect): health first;
 * a failing check leaves the trial to the launcher's deadline [EF-11.7].
 */
export async function confirmTrial(deps: ConfirmDeps): Promise<boolean> {
  if (!deps.runningSlot) return false
  const dir = slotsDir(deps.dataDir)
  const trial = readSlotState(dir).trial
  if (trial?.slot !== deps.runningSlot || trial.version !== deps.runningVersion) return false
  try {
    await deps.health()
  } catch (err) {
    deps.log.error({ code: codeOf(err), err: (err as Error).message }, 'new agent failed its health check')
    return false
  }
  deps.onStep?.('agent-confirming')
  const report: PendingReport = {
    kind: 'agent_updated',
    cmdId: trial.cmdId,
    version: trial.version,
    fromVersion: trial.fromVersion,
  }
  writeSlotState(dir, { v: 1, current: trial.slot, report })
  deps.log.info({ version: trial.version, from: trial.fromVersion }, 'agent update confirmed')
  reportPending(deps)
  return true
}
