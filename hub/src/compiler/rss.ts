// RAM a build needs, measured: a child process (rss-probe.ts) loads ONNX
// Runtime, opens the build, runs it and reports its peak RSS. A formula on the
// file size misjudges what ORT allocates (arenas, prepacked weights, fp16 →
// fp32 expansion); a fresh process per build measures it. [EF-5.8]
import { fork } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import type { NamedTensor } from './ort.js'

export interface RssMeasure {
  /** RSS of Node with ONNX Runtime loaded, before the session, MiB. */
  baselineMb: number
  /** Peak RSS after opening the session and running it, MiB. */
  peakMb: number
}

/** The compiled probe beside this module; from source (tests) the built one in hub/dist. */
function probePath(): string {
  const here = fileURLToPath(new URL('./rss-probe.js', import.meta.url))
  if (existsSync(here)) return here
  return here.replace(/([\\/])src([\\/]compiler[\\/])/, '$1dist$2')
}

/** Runs `model` `runs` times in a fresh process and returns its RSS figures; rejects when the child fails. */
export function measureRss(
  model: Uint8Array,
  input: Record<string, NamedTensor>,
  opts: { threads: number; runs?: number; timeoutMs?: number },
): Promise<RssMeasure> {
  return new Promise((resolve, reject) => {
    // execArgv [] so a test runner's loaders do not follow the child; advanced serialization carries typed arrays.
    const child = fork(probePath(), [], { execArgv: [], serialization: 'advanced', stdio: 'ignore' })
    const timer = setTimeout(() => {
      child.kill()
      reject(new Error('RSS probe timed out'))
    }, opts.timeoutMs ?? 60_000)
    child.once('message', (m: RssMeasure | { error: string }) => {
      clearTimeout(timer)
      if ('error' in m) reject(new Error(m.error))
      else resolve(m)
    })
    child.once('error', (err) => {
      clearTimeout(timer)
      reject(err)
    })
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`RSS probe exited with code ${code}`))
    })
    child.send({ model, input, threads: opts.threads, runs: opts.runs ?? 3 })
  })
}
