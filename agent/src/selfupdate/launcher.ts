// The launcher an agent package starts [EF-11.6, EF-11.7]: it belongs to the
// installed package (never replaced by a self-update), picks the agent slot
// state.json names — rolling an unconfirmed trial back when it is past its
// deadline or its starts — and runs that slot's agent in this process, with
// a watchdog that restores the previous agent if the trial is still
// unconfirmed at its deadline (exit EXIT_HANDOVER: started again) and one
// that restores it when the agent's event loop hangs (loop-watchdog.ts). With
// --supervise it is also the supervisor (no systemd): a parent that starts
// the launcher again whenever the agent exits.
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { armLoopWatchdog, defaultLoopWatchdogOptions } from './loop-watchdog.js'
import {
  EXIT_HANDOVER,
  decideStart,
  hasBundle,
  readSlotState,
  rolledBack,
  slotDir,
  slotsDir,
  writeSlotState,
  type AgentTrial,
} from './state.js'

/** The agent's data folder as its config would resolve it: --data, EF_DATA, the --config file's dataDir, default. */
export function dataDirOf(args: readonly string[], env: NodeJS.ProcessEnv): string {
  const flag = (name: string) => {
    const i = args.findIndex((a) => a === `--${name}` || a.startsWith(`--${name}=`))
    if (i < 0) return undefined
    return args[i].includes('=') ? args[i].slice(args[i].indexOf('=') + 1) : args[i + 1]
  }
  const fromFile = () => {
    const file = flag('config')
    if (!file) return undefined
    try {
      return (JSON.parse(readFileSync(file, 'utf8')) as { dataDir?: string }).dataDir
    } catch {
      return undefined // the agent itself reports a bad config file
    }
  }
  return resolve(flag('data') ?? env.EF_DATA ?? fromFile() ?? '.data/agent')
}

/** Restores the previous agent if `trial` is still unconfirmed at its deadline. */
function armWatchdog(dir: string, trial: AgentTrial, now: number): void {
  const left = Math.max(0, trial.startedAt + trial.deadlineMs - now)
  setTimeout(() => {
    const s = readSlotState(dir)
    if (s.trial?.cmdId !== trial.cmdId) return
    writeSlotState(dir, rolledBack(s, `agent ${trial.version} did not confirm within ${trial.deadlineMs} ms`))
    process.stderr.write(`edgefleet-launch: agent ${trial.version} unconfirmed at its deadline; restoring\n`)
    process.exit(EXIT_HANDOVER)
  }, left).unref()
}

/** Picks the slot and runs its agent in this process; `baseDir` is the installed package's folder. */
export async function runAgent(baseDir: string, args: readonly string[]): Promise<void> {
  const dir = slotsDir(dataDirOf(args, process.env))
  const before = readSlotState(dir)
  const now = Date.now()
  const state = decideStart(before, now, (slot) => hasBundle(slotDir(dir, baseDir, slot)))
  if (JSON.stringify(state) !== JSON.stringify(before)) writeSlotState(dir, state)
  if (state.trial) {
    armWatchdog(dir, state.trial, now)
    // The timer above needs a turning event loop; a hung one is caught from a worker thread [EF-11.10].
    const trialBlockMs = Number(process.env.EF_LOOP_TRIAL_MS) || defaultLoopWatchdogOptions.trialBlockMs
    armLoopWatchdog(dir, state, { ...defaultLoopWatchdogOptions, trialBlockMs })
  }
  const bundle = join(slotDir(dir, baseDir, state.current), 'dist', 'edgefleet-agent.mjs')
  process.env.EF_AGENT_SLOT = state.current
  // The agent parses process.argv as if it had been started directly.
  process.argv = [process.argv[0], bundle, ...args]
  await import(pathToFileURL(bundle).href)
}

/** The supervisor-less mode: starts `node <launcher> args` again after every exit until SIGTERM/SIGINT. */
export function supervise(launcherFile: string, args: readonly string[], restartDelayMs = 1000): void {
  let stopping = false
  let child: ReturnType<typeof spawn> | undefined
  const start = () => {
    child = spawn(process.execPath, [...process.execArgv, launcherFile, ...args], { stdio: 'inherit' })
    child.on('exit', (code, signal) => {
      if (stopping) return process.exit(0)
      const why = code === EXIT_HANDOVER ? 'hand-over' : `exit ${signal ?? code}`
      process.stderr.write(`edgefleet-launch: agent ended (${why}); starting again\n`)
      setTimeout(start, code === EXIT_HANDOVER ? 0 : restartDelayMs)
    })
  }
  for (const sig of ['SIGTERM', 'SIGINT'] as const)
    process.on(sig, () => {
      stopping = true
      if (child?.exitCode !== null) process.exit(0)
      child.kill(sig)
    })
  start()
}
