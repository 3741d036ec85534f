// ef/v1/dev/{id}/samples [EF-2.9]: captured inputs/outputs, idempotent by
// sample id, written in batched transactions with their feed record [EF-9.1, EF-9.6].
// `done` runs once the sample is committed.
import { EdgeFleetError, codeOf, decodeTensor, sampleCodec, type Sample } from '@edgefleet/shared'
import type { HandlerContext } from '../dispatch.js'
import type { IngestDone } from '../../telemetry/ingest.js'

export function handleSamples(ctx: HandlerContext, deviceId: string, payload: Buffer, done?: IngestDone): void {
  const sample = sampleCodec.decode(payload)
  ctx.assertSameDevice(deviceId, sample.deviceId)
  assertTensorsDecode(sample)
  if (ctx.ingest) return ctx.ingest.pushSample(payload, done)
  const r = ctx.store.telemetry.ingestMany(
    [],
    [{ sample, bytes: payload.length, payload: payload.toString('utf8') }],
    ctx.now(),
  )
  if (r.duplicateSamples) ctx.metrics.duplicateBatches++
  done?.()
}

/**
 * Every tensor must decode (EF-2.5) before the sample is stored [EF-2.9.4]:
 * the schema alone lets dims and data disagree, and one such sample would
 * break its .npy files and the model's dataset export.
 */
export function assertTensorsDecode(sample: Sample): void {
  const groups = { inputs: sample.inputs, outputs: sample.outputs, shadow: sample.shadow?.outputs ?? {} }
  for (const [group, tensors] of Object.entries(groups))
    for (const [name, t] of Object.entries(tensors)) {
      try {
        decodeTensor(name, t)
      } catch (err) {
        if (codeOf(err) === 'EF_ERR_INTERNAL') throw err
        throw new EdgeFleetError('EF_ERR_MSG_SCHEMA', `${group}.${(err as Error).message}`)
      }
    }
}
