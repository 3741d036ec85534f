// A hung event loop [EF-11.10]. The launcher runs the agent in its own
// process, so a new agent that blocks its event loop also stops the
// launcher's deadline timer (EF-11.7): a worker thread, which has an event
// loop of its own, watches a heartbeat the main thread writes into shared
// memory and, when a trial's loop has not turned for `trialBlockMs`, gives the
// trial up in state.json and kills the process (SIGKILL: a blocked loop runs
// no signal handler) so the unit or the supervisor starts the previous agent.
// In normal running a long block is only reported: the agent measures how
// late its own timer fires and sends a `loop_blocked` event.
import { Worker } from 'node:worker_threads'
import { join } from 'node:path'
import { rolledBack, type SlotState } from './state.js'

export const defaultLoopWatchdogOptions = {
  /** A trial agent whose event loop does not turn for this long is rolled back, ms (env EF_LOOP_TRIAL_MS). */
  trialBlockMs: 20_000,
  /** In normal running, a turn of the event loop longer than this is reported as a loop_blocked event, ms. */
  reportBlockMs: 2_000,
  /** How often the heartbeat is written and read, ms. */
  beatMs: 250,
} as const

/**
 * The worker (CommonJS, run with eval: the agent is one bundle): at each beat
 * it reads how long ago the main thread last wrote the heartbeat; past the
 * limit, and while state.json still holds this trial, it writes the rolled
 * back state it was given (atomically: temp file, fsync, rename) and kills the process.
 */
const WORKER_SOURCE = `
const { workerData: w } = require('node:worker_threads')
const fs = require('node:fs')
const beat = new BigInt64Array(w.shared)
const timer = setInterval(() => {
  const blocked = Date.now() - Number(Atomics.load(beat, 0))
  if (blocked < w.limitMs) return
  let current
  try { current = JSON.parse(fs.readFileSync(w.file, 'utf8')) } catch { return }
  if (!current.trial || current.trial.cmdId !== w.cmdId) return clearInterval(timer)
  const fd = fs.openSync(w.file + '.watchdog', 'w', 0o600)
  fs.writeSync(fd, w.next)
  fs.fsyncSync(fd)
  fs.closeSync(fd)
  fs.renameSync(w.file + '.watchdog', w.file)
  process.stderr.write('edgefleet-launch: ' + w.why + ' (' + blocked + ' ms); restoring\\n')
  process.kill(process.pid, 'SIGKILL')
}, w.beatMs)
`

/** Starts the heartbeat and the worker that rolls `state`'s trial back if the loop stops [EF-11.10]. */
export function armLoopWatchdog(
  dir: string,
  state: SlotState,
  opts: { trialBlockMs: number; beatMs: number } = defaultLoopWatchdogOptions,
): void {
  const trial = state.trial
  if (!trial) return
  const shared = new SharedArrayBuffer(8)
  const beat = new BigInt64Array(shared)
  const write = () => Atomics.store(beat, 0, BigInt(Date.now()))
  write()
  setInterval(write, opts.beatMs).unref()
  const why = `agent ${trial.version} blocked its event loop for more than ${opts.trialBlockMs} ms before confirming`
  const worker = new Worker(WORKER_SOURCE, {
    eval: true,
    workerData: {
      shared,
      file: join(dir, 'state.json'),
      cmdId: trial.cmdId,
      next: JSON.stringify(rolledBack(state, why)) + '\n',
      why,
      limitMs: opts.trialBlockMs,
      beatMs: opts.beatMs,
    },
  })
  worker.unref()
}

/**
 * Normal running: calls `onBlocked(ms)` when a timer due every `beatMs` fires
 * `reportBlockMs` or more late (the loop was blocked that long). Returns a stop function.
 */
export function watchLoopDelay(
  onBlocked: (blockedMs: number) => void,
  opts: { reportBlockMs: number; beatMs: number } = defaultLoopWatchdogOptions,
): () => void {
  let last = Date.now()
  const timer = setInterval(() => {
    const now = Date.now()
    const late = now - last - opts.beatMs
    last = now
    if (late >= opts.reportBlockMs) onBlocked(late)
  }, opts.beatMs)
  timer.unref()
  return () => clearInterval(timer)
}
