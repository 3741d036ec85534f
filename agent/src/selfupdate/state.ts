// The agent's own A/B slots [EF-11.6]: <dataDir>/agent-slots/{a,b} hold
// unpacked agent packages, `base` is the package install.sh put in place
// (never written by a self-update), and state.json — written atomically —
// says which one runs, whether it is still on trial, and what the next
// agent must report. The launcher and the agent both read and write it; a
// crash at any point leaves the old or the new file, never half of one.
import { existsSync, mkdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { writeFileAtomic } from '../updater/fsutil.js'

export type AgentSlot = 'base' | 'a' | 'b'

/** A hand-over not yet confirmed by the new agent. */
export interface AgentTrial {
  slot: 'a' | 'b'
  version: string
  from: AgentSlot
  fromVersion: string
  cmdId: string
  /** When the old agent handed over (ms since epoch). */
  startedAt: number
  deadlineMs: number
  /** Starts of the trial slot so far; the launcher counts them. */
  starts: number
}

/** An outcome the agent running next reports to the hub, then clears. */
export interface PendingReport {
  kind: 'agent_updated' | 'agent_rolled_back'
  cmdId: string
  version: string
  fromVersion: string
  reason?: string
}

export interface SlotState {
  v: 1
  current: AgentSlot
  trial?: AgentTrial
  report?: PendingReport
}

/** Starts of an unconfirmed agent before the previous one is restored [EF-11.7]. */
export const MAX_TRIAL_STARTS = 2
/** The exit code of a hand-over: the systemd unit and the supervisor start the agent again on it [EF-11.6]. */
export const EXIT_HANDOVER = 75

export function slotsDir(dataDir: string): string {
  return join(dataDir, 'agent-slots')
}

export function readSlotState(dir: string): SlotState {
  const file = join(dir, 'state.json')
  if (!existsSync(file)) return { v: 1, current: 'base' }
  try {
    const s = JSON.parse(readFileSync(file, 'utf8')) as SlotState
    if (s.v === 1 && ['base', 'a', 'b'].includes(s.current)) return s
  } catch {
    // An unreadable state cannot name a slot: fall through to the installed agent.
  }
  return { v: 1, current: 'base' }
}

export function writeSlotState(dir: string, s: SlotState): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  writeFileAtomic(join(dir, 'state.json'), JSON.stringify(s) + '\n', 0o600)
}

/** The package folder a slot runs from. */
export function slotDir(dir: string, baseDir: string, slot: AgentSlot): string {
  return slot === 'base' ? baseDir : join(dir, slot)
}

/** The state after an unconfirmed trial is given up: the previous slot runs, and says why [EF-11.7]. */
export function rolledBack(s: SlotState, reason: string): SlotState {
  const t = s.trial
  if (!t) return s
  return {
    v: 1,
    current: t.from,
    report: { kind: 'agent_rolled_back', cmdId: t.cmdId, version: t.version, fromVersion: t.fromVersion, reason },
  }
}

/**
 * The launcher's decision before each start [EF-11.7]: a trial past its
 * deadline or its starts is rolled back; otherwise its start is counted. A
 * slot whose bundle is missing is never run: the installed agent is.
 */
export function decideStart(s: SlotState, now: number, hasBundle: (slot: AgentSlot) => boolean): SlotState {
  let next = s
  if (s.trial) {
    const t = s.trial
    if (now - t.startedAt > t.deadlineMs)
      next = rolledBack(s, `agent ${t.version} did not confirm within ${t.deadlineMs} ms`)
    else if (t.starts >= MAX_TRIAL_STARTS)
      next = rolledBack(s, `agent ${t.version} exited ${t.starts} times before confirming`)
    else next = { ...s, trial: { ...t, starts: t.starts + 1 } }
  }
  if (next.current !== 'base' && !hasBundle(next.current)) next = { v: 1, current: 'base', report: next.report }
  return next
}

/** Whether `dir` holds a runnable agent package. */
export function hasBundle(dir: string): boolean {
  return existsSync(join(dir, 'dist', 'edgefleet-agent.mjs'))
}
