// Worker thread that runs shadow candidates [EF-7.2]. onnxruntime-node's
// session.run executes on the calling JS thread, so a slow candidate run in the
// main thread would hold back every live request behind it; here it holds
// back nothing but other shadow runs. Started only while a model is shadowed.
import { parentPort } from 'node:worker_threads'
import { createSession, type BackendName, type ModelSession, type Tensor } from './session.js'

export type ShadowRequest =
  | { op: 'load'; path: string; threads: number; backend: BackendName }
  | { op: 'run'; id: number; inputs: Record<string, Tensor> }
  | { op: 'release' }

export type ShadowReply =
  | { op: 'loaded' }
  | { op: 'result'; id: number; outputs: Record<string, Tensor>; latencyMs: number }
  | { op: 'error'; id: number; message: string }

let session: ModelSession | undefined
if (!parentPort) throw new Error('this module runs as a worker thread (new Worker), not on its own')
const port = parentPort

port.on('message', (msg: ShadowRequest) => {
  void (async () => {
    if (msg.op === 'load') {
      try {
        // CPU only: the live model keeps the device's accelerator.
        session = await createSession(msg.path, {
          threads: msg.threads,
          executionProviders: ['cpu'],
          backend: msg.backend,
        })
        port.postMessage({ op: 'loaded' } satisfies ShadowReply)
      } catch (err) {
        port.postMessage({ op: 'error', id: -1, message: (err as Error).message.split('\n')[0] } satisfies ShadowReply)
      }
    } else if (msg.op === 'run') {
      const t0 = performance.now()
      try {
        if (!session) throw new Error('no candidate loaded')
        const outputs = await session.run(msg.inputs)
        port.postMessage({ op: 'result', id: msg.id, outputs, latencyMs: performance.now() - t0 } satisfies ShadowReply)
      } catch (err) {
        port.postMessage({
          op: 'error',
          id: msg.id,
          message: (err as Error).message.split('\n')[0],
        } satisfies ShadowReply)
      }
    } else {
      await session?.release()
      session = undefined
      port.close()
    }
  })()
})
