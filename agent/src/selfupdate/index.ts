// Agent self-update wired into a running agent [EF-11.4 - EF-11.7]: the
// agent-update command handler, the report of a pending outcome at start and
// the trial's confirmation on each connect.
import { existsSync, readdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import type { AgentUpdateCmd } from '@edgefleet/shared'
import type { ModelHost } from '../runtime/host.js'
import { healthCheck } from '../updater/health.js'
import { AgentSelfUpdater, type SelfUpdateDeps } from './update.js'
import { confirmTrial, reportPending, type ConfirmDeps } from './confirm.js'
import { slotsDir, type AgentSlot } from './state.js'
import { watchLoopDelay } from './loop-watchdog.js'

/** What the agent passes in: the self-updater's deps without the slot and arch, which are found here. */
export type SelfUpdateWiring = Omit<SelfUpdateDeps, 'runningSlot' | 'arch'> & {
  host: ModelHost
  handOver?: () => void
}

/** The slot the launcher started this process from (EF_AGENT_SLOT), if it did. */
function launchedSlot(): AgentSlot | undefined {
  const s = process.env.EF_AGENT_SLOT
  return s === 'base' || s === 'a' || s === 'b' ? s : undefined
}

/** A slot half-unpacked when the process died (EF-11.4): never run, removed at start. */
function removeLeftovers(dir: string): void {
  if (!existsSync(dir)) return
  for (const name of readdirSync(dir))
    if (name.endsWith('.unpacking')) rmSync(join(dir, name), { recursive: true, force: true })
}

export function createSelfUpdate(wiring: SelfUpdateWiring) {
  const runningSlot = launchedSlot()
  const updater = new AgentSelfUpdater({
    ...wiring,
    runningSlot: runningSlot ?? 'base',
    handOver: runningSlot ? wiring.handOver : undefined,
  })
  const confirmDeps: ConfirmDeps = {
    ...wiring,
    runningSlot,
    // Every model this agent serves answers its manifest's reference inputs [EF-4.5].
    health: async () => {
      for (const m of wiring.host.list()) await healthCheck((x) => m.session.run(x), m.manifest)
    },
  }
  reportPending(confirmDeps)
  removeLeftovers(slotsDir(wiring.dataDir))
  let confirming = false
  // A long-blocked event loop is news for the operator even when nothing rolls back [EF-11.10].
  const stopLoopWatch = watchLoopDelay((blockedMs) => {
    wiring.log.warn({ blockedMs }, 'event loop blocked')
    wiring.report({ kind: 'loop_blocked', message: `the agent's event loop was blocked for ${blockedMs} ms` })
  })
  return {
    close: stopLoopWatch,
    apply: (cmd: AgentUpdateCmd) => updater.apply(cmd),
    onConnect: () => {
      if (confirming) return
      confirming = true
      confirmTrial(confirmDeps)
        .catch((err: unknown) => wiring.log.error({ err: (err as Error).message }, 'agent update confirmation failed'))
        .finally(() => (confirming = false))
    },
  }
}
