// ef/v1/dev/{id}/telemetry [EF-2.6]: idempotent by batch id, written in
// batched transactions with rollups [EF-9.1, EF-9.2].
import { telemetryCodec } from '@edgefleet/shared'
import type { HandlerContext } from '../dispatch.js'
import { assertOneEntryPerVersion } from '../../store/telemetry.js'

export function handleTelemetry(ctx: HandlerContext, deviceId: string, payload: Buffer): void {
  const batch = telemetryCodec.decode(payload)
  ctx.assertSameDevice(deviceId, batch.deviceId)
  // Refused here, alone: in a batched flush it would roll back its neighbours too.
  assertOneEntryPerVersion(batch)
  if (ctx.ingest) ctx.ingest.pushTelemetry(batch, payload.length)
  else if (!ctx.store.telemetry.ingest(batch, ctx.now())) ctx.metrics.duplicateBatches++
}
