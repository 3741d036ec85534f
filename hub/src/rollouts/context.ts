// What every part of the rollout engine shares: its dependencies, the view
// of one tick (fleet, windows, time), the one way a decision is recorded in
// a rollout's audit trail [EF-8.1], and small helpers over device statuses.
import type { Logger } from 'pino'
import type { FirmwareProfile } from '@edgefleet/shared'
import type { DeviceRow, HubStore, RolloutDeviceRow, RolloutDeviceStatus, RolloutRow } from '../store/index.js'
import type { Deployer } from '../distribution/deployer.js'
import type { CommandSender } from '../distribution/commands.js'
import type { AgentUpdates } from '../agent-releases/updates.js'
import type { GateVerdict } from './gates.js'
import type { WindowCache } from './schedule.js'

export interface RolloutEngineDeps {
  store: HubStore
  deployer: Pick<Deployer, 'deployTo'>
  commands?: Pick<CommandSender, 'shadow' | 'discard'>
  /** Agent-update commands for agent rollouts [EF-8.17]; an agent rollout fails its sends without it. */
  agentUpdates?: Pick<AgentUpdates, 'sendTo' | 'finished'>
  profiles: Map<string, FirmwareProfile>
  log: Logger
  /** Clock seam (ms since epoch). */
  now: () => number
  /** Randomness seam for start jitter. */
  random?: () => number
  /** False once this replica may no longer act for the fleet: a tick in progress stops stepping [EF-12.3]. */
  leading?: () => boolean
}

/** One tick as the state handlers see it: read once, shared by every rollout of the tick. */
export interface StepContext {
  deps: RolloutEngineDeps & { random: () => number }
  /** Devices by id, each read from the store at its first use in the tick (never the whole fleet). */
  byId: { get(id: string): DeviceRow | undefined }
  /**
   * Active devices that may have joined since this rollout last looked: those
   * provisioned or re-enabled after its fleet mark (every active device the
   * first time this hub process steps it) [EF-8.9]. Advances the rollout's mark.
   */
  candidates(rolloutId: string): DeviceRow[]
  windows: WindowCache
  /** The tick's time, ms since epoch. */
  t: number
}

/** What a decision is about; the store keeps it as text. */
export type DecisionKind = 'action' | 'schedule' | 'enroll' | 'wave' | 'gate' | 'rollback'

/**
 * Appends one decision to the rollout's trail. The engine's own decisions have
 * no actor; `at.wave` is the wave the decision belongs to (usually the rollout's).
 */
export function decide(
  store: HubStore,
  at: Pick<RolloutRow, 'id' | 'wave'>,
  t: number,
  kind: DecisionKind,
  decision: string,
  detail: Record<string, unknown> = {},
  actor: string | null = null,
): void {
  store.rollouts.decide({ rolloutId: at.id, ts: t, wave: at.wave, kind, decision, detail, actor })
}

/** Device statuses the rollout is done with for the current wave. */
export const DONE_DEVICE: ReadonlySet<RolloutDeviceStatus> = new Set(['activated', 'skipped', 'failed'])
/** Device statuses not yet sent anything (deploy or shadow candidate). */
export const WAITING: ReadonlySet<RolloutDeviceStatus> = new Set([
  'pending',
  'waiting_window',
  'waiting_conditions',
  'scheduled',
])

/** Number of devices per status, for decision details. */
export function counts(list: RolloutDeviceRow[]): Record<string, number> {
  const out: Record<string, number> = {}
  for (const x of list) out[x.status] = (out[x.status] ?? 0) + 1
  return out
}

/** The failed gates as one line for a rollout's `reason`. */
export function failedGates(v: GateVerdict): string {
  return v.failed.map((f) => `${f.gate} ${round(f.value)} vs ${round(f.threshold)}`).join(', ')
}

const round = (x: number) => Math.round(x * 1000) / 1000
