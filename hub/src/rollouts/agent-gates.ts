// The gate of an agent rollout's wave [EF-8.17]: the agent carries no model
// traffic of its own to compare, so a wave is judged by its devices'
// confirmations (EF-11.6) and health: a device whose new agent was rolled
// back, never confirmed within its deadline or was refused, or one that runs
// another agent again after confirming, counts against maxFailedDevices.
import type { RolloutDeviceRow, RolloutRow } from '../store/index.js'
import type { StepContext } from './context.js'
import { judge, type GateVerdict } from './gates.js'
import type { RolloutSpec } from './spec.js'

/** Activated devices seen online on another agent than the rollout's: the new one did not stay. */
function regressed(ctx: StepContext, rollout: RolloutRow, wave: RolloutDeviceRow[]): string[] {
  return wave
    .filter((member) => member.status === 'activated')
    .filter((member) => {
      const device = ctx.byId.get(member.deviceId)
      const running = device?.state?.agentVersion
      return device?.online === true && running !== undefined && running !== rollout.version
    })
    .map((member) => member.deviceId)
}

export function judgeAgentWave(ctx: StepContext, rollout: RolloutRow, wave: RolloutDeviceRow[]): GateVerdict {
  const spec = rollout.spec as RolloutSpec
  const failed = wave.filter((member) => member.status === 'failed')
  const gone = regressed(ctx, rollout, wave)
  const verdict = judge(
    { traffic: null, shadow: { runs: 0, agree: 0 }, failedDevices: failed.length + gone.length },
    spec.gates,
    {
      needRequests: false,
      waves: spec.waves.length,
    },
  )
  const why = [
    ...failed.map((member) => `${member.deviceId} ${member.code ?? 'failed'}`),
    ...gone.map((id) => `${id} runs agent ${ctx.byId.get(id)?.state?.agentVersion ?? '?'} again`),
  ]
  for (const gate of verdict.failed)
    if (gate.gate === 'maxFailedDevices')
      gate.reason = `${gate.value} device(s) did not keep agent ${rollout.version} (${why.slice(0, 5).join(', ')}), ${gate.threshold} tolerated`
  return verdict
}
