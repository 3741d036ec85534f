// Child-process entry for rss.ts: opens one session on the build it is sent,
// runs it, and answers with the process's RSS before the session and its peak
// (getrusage maxrss) after — a fresh process, so the peak is this build's and
// nothing else's. Messages: in {model, input, threads, runs}; out {baselineMb, peakMb} or {error}.
import { openSession, run, type NamedTensor } from './ort.js'

interface ProbeJob {
  model: Uint8Array
  input: Record<string, NamedTensor>
  threads: number
  runs: number
}

const MB = 1024 // maxRSS is in KiB

process.once('message', (job: ProbeJob) => {
  void probe(job).then(
    (answer) => process.send?.(answer, () => process.exit(0)),
    (err: unknown) => process.send?.({ error: (err as Error).message }, () => process.exit(0)),
  )
})

async function probe(job: ProbeJob): Promise<{ baselineMb: number; peakMb: number }> {
  const baselineMb = process.memoryUsage.rss() / 2 ** 20
  const session = await openSession(job.model, { threads: job.threads })
  for (let i = 0; i < job.runs; i++) await run(session, job.input)
  const peakMb = process.resourceUsage().maxRSS / MB
  await session.release()
  return { baselineMb, peakMb }
}
