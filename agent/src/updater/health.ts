// The health check a build passes before it serves (deploy, rollback,
// promote) or shadows [EF-4.5]: the manifest's reference inputs through the
// model, its reference outputs matched within the manifest's atol and rtol.
import { EdgeFleetError, decodeTensor, tensorsClose, type Manifest } from '@edgefleet/shared'
import type { Tensor } from '../runtime/session.js'

/** One run of the model under test (a session in the host, or the shadow worker). */
export type RunModel = (inputs: Record<string, Tensor>) => Promise<Record<string, Tensor>>

export async function healthCheck(run: RunModel, manifest: Manifest): Promise<void> {
  const hc = manifest.healthCheck
  const inputs: Record<string, Tensor> = {}
  for (const [k, v] of Object.entries(hc.inputs)) inputs[k] = decodeTensor(k, v)
  const out = await run(inputs)
  for (const [k, v] of Object.entries(hc.outputs)) {
    const got = out[k]
    if (!got) throw new EdgeFleetError('EF_ERR_HEALTH_CHECK_FAILED', `output ${k} missing`)
    const r = tensorsClose(got.data, decodeTensor(k, v).data, hc.atol, hc.rtol)
    if (!r.ok)
      throw new EdgeFleetError(
        'EF_ERR_HEALTH_CHECK_FAILED',
        `output ${k}: max abs diff ${r.maxAbsDiff.toExponential(3)} > atol ${hc.atol} + rtol ${hc.rtol}`,
      )
  }
}

/** A failed check as reported: its own code when it has one, else EF_ERR_HEALTH_CHECK_FAILED. */
export function healthError(err: unknown): EdgeFleetError {
  return err instanceof EdgeFleetError ? err : new EdgeFleetError('EF_ERR_HEALTH_CHECK_FAILED', (err as Error).message)
}
