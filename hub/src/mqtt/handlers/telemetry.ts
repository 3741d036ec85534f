// ef/v1/dev/{id}/telemetry [EF-2.6]: validated here, alone, then written by
// the ingestor in batched transactions with rollups [EF-9.1, EF-9.2];
// idempotent by batch id. `done` runs once the batch is committed.
import { telemetryCodec } from '@edgefleet/shared'
import type { HandlerContext } from '../dispatch.js'
import type { IngestDone } from '../../telemetry/ingest.js'
import { assertOneEntryPerVersion } from '../../store/telemetry.js'
import { keepSentVersions } from '../../telemetry/sent-only.js'

export function handleTelemetry(ctx: HandlerContext, deviceId: string, payload: Buffer, done?: IngestDone): void {
  const decoded = telemetryCodec.decode(payload)
  ctx.assertSameDevice(deviceId, decoded.deviceId)
  // Refused here, alone: in a batched flush it would roll back its neighbours too.
  assertOneEntryPerVersion(decoded)
  const batch = keepSentVersions(ctx.store, decoded, ctx.now())
  ctx.onTelemetry?.(batch)
  if (ctx.ingest) return ctx.ingest.pushTelemetry(batch, payload.length, done)
  if (!ctx.store.telemetry.ingest(batch, ctx.now())) ctx.metrics.duplicateBatches++
  done?.()
}
