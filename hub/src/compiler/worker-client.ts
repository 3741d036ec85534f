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
      (reply: {
        type: string
        progress?: never
        result?: CompileResult
        error?: { code?: string; message: string; detail?: string }
      }) => {
        if (reply.type === 'progress' && reply.progress) onProgress?.(reply.progress)
        else if (reply.type === 'result' && reply.result) {
          settled = true
          resolve({ ...reply.result, bytes: new Uint8Array(reply.result.bytes) })
        } else if (reply.type === 'error' && reply.error) {
          settled = true
          const code = isErrorCode(reply.error.code) ? reply.error.code : 'EF_ERR_INTERNAL'
          reject(new EdgeFleetError(code, reply.error.detail ?? reply.error.message))
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
