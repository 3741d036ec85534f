// compileInWorker: compile() in a node:worker_threads Worker (worker.ts), with
// progress forwarded and errors re-thrown as EdgeFleetError with their code.
import { Worker } from 'node:worker_threads'
import { EdgeFleetError, isErrorCode, type FirmwareProfile } from '@edgefleet/shared'
import type { CompileOptions, CompileResult } from './index.js'

export interface WorkerCompileOptions extends CompileOptions {
  /** Worker script; defaults to worker.js beside this module (dist/compiler/worker.js). */
  workerUrl?: URL
}

export function compileInWorker(
  model: Uint8Array,
  profile: FirmwareProfile,
  opts: WorkerCompileOptions = {},
): Promise<CompileResult> {
  const { onProgress, workerUrl, ...rest } = opts
  return new Promise((resolve, reject) => {
    const worker = new Worker(workerUrl ?? new URL('./worker.js', import.meta.url), {
      workerData: { model, profile, opts: rest },
    })
    let settled = false
    worker.on(
      'message',
      (m: {
        type: string
        progress?: never
        result?: CompileResult
        error?: { code?: string; message: string; detail?: string }
      }) => {
        if (m.type === 'progress' && m.progress) onProgress?.(m.progress)
        else if (m.type === 'result' && m.result) {
          settled = true
          resolve({ ...m.result, bytes: new Uint8Array(m.result.bytes) })
        } else if (m.type === 'error' && m.error) {
          settled = true
          const code = isErrorCode(m.error.code) ? m.error.code : 'EF_ERR_INTERNAL'
          reject(new EdgeFleetError(code, m.error.detail ?? m.error.message))
        }
      },
    )
    worker.on('error', (err) => {
      settled = true
      reject(new EdgeFleetError('EF_ERR_INTERNAL', `compile worker crashed: ${err.message}`, { cause: err }))
    })
    worker.on('exit', (code) => {
      if (!settled)
        reject(new EdgeFleetError('EF_ERR_INTERNAL', `compile worker exited with code ${code} before answering`))
    })
  })
}
