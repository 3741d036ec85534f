// ef/v1/dev/{id}/samples [EF-2.9]: captured inputs/outputs, idempotent by sample id.
import { sampleCodec } from '@edgefleet/shared'
import type { HandlerContext } from '../dispatch.js'

export function handleSamples(ctx: HandlerContext, deviceId: string, payload: Buffer): void {
  const sample = sampleCodec.decode(payload)
  ctx.assertSameDevice(deviceId, sample.deviceId)
  if (!ctx.store.telemetry.samples.ingest(sample, payload.length, payload.toString('utf8'), ctx.now())) ctx.metrics.duplicateBatches++
}
