// ef/v1/dev/{id}/samples [EF-2.9]: captured inputs/outputs, idempotent by
// sample id, written in batched transactions with their feed record [EF-9.1, EF-9.6].
// `done` runs once the sample is committed.
import { sampleCodec } from '@edgefleet/shared'
import type { HandlerContext } from '../dispatch.js'
import type { IngestDone } from '../../telemetry/ingest.js'

export function handleSamples(ctx: HandlerContext, deviceId: string, payload: Buffer, done?: IngestDone): void {
  const sample = sampleCodec.decode(payload)
  ctx.assertSameDevice(deviceId, sample.deviceId)
  if (ctx.ingest) return ctx.ingest.pushSample(payload, done)
  const r = ctx.store.telemetry.ingestMany(
    [],
    [{ sample, bytes: payload.length, payload: payload.toString('utf8') }],
    ctx.now(),
  )
  if (r.duplicateSamples) ctx.metrics.duplicateBatches++
  done?.()
}
