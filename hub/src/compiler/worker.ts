// Worker-thread entry: runs compile() off the hub's main thread so the API
// stays responsive during calibration and timing. Messages: in {model,
// profile, opts}; out {type:'progress'} … then {type:'result'} or {type:'error'}.
import { parentPort, workerData } from 'node:worker_threads'
import type { FirmwareProfile } from '@edgefleet/shared'
import { compile, type CompileOptions } from './index.js'

interface Job {
  model: Uint8Array
  profile: FirmwareProfile
  opts: Omit<CompileOptions, 'onProgress'>
}

const job = workerData as Job
if (!parentPort) throw new Error('this module runs as a worker thread (new Worker), not on its own')
const port = parentPort
compile(job.model, job.profile, { ...job.opts, onProgress: (p) => port.postMessage({ type: 'progress', progress: p }) })
  .then((result) => port.postMessage({ type: 'result', result }, [result.bytes.buffer as ArrayBuffer]))
  .catch((err: unknown) => {
    const e = err as { code?: string; message?: string; detail?: string }
    port.postMessage({ type: 'error', error: { code: e.code, message: e.message ?? String(err), detail: e.detail } })
  })
