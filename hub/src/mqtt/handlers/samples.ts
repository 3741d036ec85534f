// ef/v1/dev/{id}/samples [EF-2.9]: captured inputs/outputs, idempotent by
// sample id, written in batched transactions with their feed record [EF-9.1, EF-9.6].
import { sampleCodec } from '@edgefleet/shared'
import type { HandlerContext } from '../dispatch.js'

export function handleSamples(ctx: HandlerContext, deviceId: string, payload: Buffer): void {
  const sample = sampleCodec.decode(payload)
  ctx.assertSameDevice(deviceId, sample.deviceId)
  if (ctx.ingest) ctx.ingest.pushSample(sample, payload.length, payload.toString('utf8'))
  else {
    const r = ctx.store.telemetry.ingestMany([], [{ sample, bytes: payload.length, payload: payload.toString('utf8') }], ctx.now())
    if (r.duplicateSamples) ctx.metrics.duplicateBatches++
  }
}
