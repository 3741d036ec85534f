// ef/v1/dev/{id}/events [EF-2.4]: command progress; moves per-device deployment and agent update state.
import { eventCodec } from '@edgefleet/shared'
import type { HandlerContext } from '../dispatch.js'

export function handleEvent(ctx: HandlerContext, deviceId: string, payload: Buffer): void {
  const ev = eventCodec.decode(payload)
  ctx.assertSameDevice(deviceId, ev.deviceId)
  const now = ctx.now()
  if (ev.kind === 'downloading' && ev.deploymentId && ev.bytes !== undefined) {
    // Progress ticks update the assignment but are not worth a row in the event log each.
    ctx.store.deployments.setProgress(ev.deploymentId, deviceId, ev.bytes, ev.totalBytes ?? 0, now)
    ctx.store.deployments.applyEvent(ev, now)
    return
  }
  if (ev.kind === 'downloaded' && ev.model)
    ctx.metrics.histograms.downloadBytes.observe(ev.receivedBytes ?? ev.bytes ?? 0, { model: ev.model })
  ctx.store.deployments.insertEvent(ev, now)
  // An agent update's progress and outcome [EF-11.9]; events of other commands leave it alone.
  if (ev.cmdId && !ev.deploymentId) ctx.store.agentUpdates.applyEvent(ev, now)
  // Deferred: the device retries by itself; the assignment shows why it waits [EF-2.4.1].
  if (ev.kind === 'deferred' && ev.deploymentId)
    return ctx.store.deployments.setNote(ev.deploymentId, deviceId, ev.code ?? null, ev.message ?? null, now)
  ctx.store.deployments.applyEvent(ev, now)
}
