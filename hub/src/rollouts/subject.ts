// What a rollout installs [EF-8.17]: a model version (deploys through the
// deployer) or an agent version (agent-update commands through
// agent-releases/updates.ts). Everything else — waves, soaks, schedule,
// pause/resume/abort, decisions — is the same engine; the places that differ
// ask here: the version a device runs now, how a wave's devices get the
// version, and how their outcome is read.
import { EdgeFleetError } from '@edgefleet/shared'
import type { DeviceRow, HubStore, RolloutRow } from '../store/index.js'
import type { StepContext } from './context.js'
import type { RolloutSpec } from './spec.js'

/** The `model` column of an agent rollout: the agent package's own name. */
export const AGENT_ROLLOUT_MODEL = 'edgefleet-agent'

type Subject = Pick<RolloutRow, 'model' | 'spec'>

export const isAgentRollout = (rollout: Pick<RolloutRow, 'spec'>): boolean =>
  (rollout.spec as RolloutSpec).agent === true

/** The version of the rollout's subject a device runs now (null: none, or not known yet). */
export function liveVersion(rollout: Subject, device: DeviceRow): string | null {
  if (isAgentRollout(rollout)) return device.state?.agentVersion ?? null
  return device.state?.models?.find((m) => m.name === rollout.model)?.version ?? null
}

interface InstallRequest {
  version: string
  /** `rollout:<id>#<wave>` (or `#rollback`). */
  target: string
  rollback: boolean
}

/**
 * Sends the version to the devices: one deployment for a model, one batch
 * of agent-update commands for the agent. Resolves with the id the rollout
 * keeps per device (deployment id or agent update batch) for `finished`.
 */
export async function install(
  ctx: StepContext,
  rollout: Subject,
  devices: DeviceRow[],
  req: InstallRequest,
): Promise<{ id: string; failed: { device: string; code: string }[] }> {
  if (!isAgentRollout(rollout)) {
    const dep = await ctx.deps.deployer.deployTo(devices, {
      model: rollout.model,
      version: req.version,
      target: req.target,
      ...(req.rollback ? { rollback: true } : {}),
    })
    return { id: dep.id, failed: [] }
  }
  const updates = ctx.deps.agentUpdates
  if (!updates) throw new EdgeFleetError('EF_ERR_INTERNAL', 'agent updates not configured')
  const sent = await updates.sendTo(devices, { version: req.version, rollback: req.rollback, origin: req.target })
  for (const skip of sent.skipped)
    ctx.deps.log.warn({ device: skip.device, code: skip.code }, `agent rollout: ${skip.message}`)
  // A device the command could not go to (no release for its architecture) fails at once, with the reason.
  return { id: sent.batch, failed: sent.skipped.map((skip) => ({ device: skip.device, code: skip.code })) }
}

/** Finished outcomes by device of what `install` returned `id` for (deployment states: activated, failed, …). */
export function finished(
  ctx: Pick<StepContext, 'deps'>,
  rollout: Pick<RolloutRow, 'spec'>,
  id: string,
): Map<string, { state: string; code: string | null }> {
  if (!isAgentRollout(rollout)) return ctx.deps.store.deployments.finished(id)
  return ctx.deps.agentUpdates?.finished(id) ?? new Map<string, { state: string; code: string | null }>()
}

/** Refuses an agent rollout to a version with no release: EF_ERR_AGENT_RELEASE_NOT_FOUND. */
export function checkSubject(store: HubStore, rollout: Subject, version: string): void {
  if (isAgentRollout(rollout)) {
    if (!store.agentReleases.list().some((row) => row.release.version === version))
      throw new EdgeFleetError('EF_ERR_AGENT_RELEASE_NOT_FOUND', `agent ${version}`)
    if ((rollout.spec as RolloutSpec).shadow)
      throw new EdgeFleetError(
        'EF_ERR_GATES_INVALID',
        'a shadow stage compares model answers; an agent rollout has none',
      )
    return
  }
  if (!store.registry.getVersion(rollout.model, version))
    throw new EdgeFleetError('EF_ERR_MODEL_NOT_FOUND', `${rollout.model}@${version}`)
}
