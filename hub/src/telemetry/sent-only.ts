// Telemetry is accepted only for model versions the hub sent the device
// [EF-2.6.8]: anything else would let one device put invented versions, or
// made-up error rates for real ones it never ran, into the fleet's summaries,
// gates and drift. Checked on the MQTT thread before the batch is queued,
// through the store's per-device cache (a Set lookup per entry, no query).
import { EdgeFleetError, type TelemetryBatch } from '@edgefleet/shared'
import type { HubStore } from '../store/index.js'

/**
 * The batch with only the entries (model metrics and shadow comparisons,
 * whose live version is checked) of versions the device was sent. Records a
 * `telemetry_refused` event the first time a device reports a version (per
 * cache load); throws EF_ERR_TELEMETRY_UNKNOWN_VERSION when nothing is left,
 * so the dispatcher counts and drops the message [EF-2.8].
 */
export function keepSentVersions(store: HubStore, batch: TelemetryBatch, now: number): TelemetryBatch {
  if (allCached(store, batch)) return batch // the hot path: Map lookups, nothing allocated
  const refused = new Set<string>()
  const sent = (model: string, version: string): boolean => {
    const verdict = store.sentVersions.check(batch.deviceId, model, version, now)
    if (verdict === 'sent') return true
    refused.add(`${model}@${version}`)
    if (verdict === 'refused-first')
      store.deployments.insertEvent(
        {
          v: 1,
          deviceId: batch.deviceId,
          ts: now,
          kind: 'telemetry_refused',
          model,
          version,
          code: 'EF_ERR_TELEMETRY_UNKNOWN_VERSION',
          message: `telemetry for ${model}@${version}, a version this device was never sent, is dropped`,
        },
        now,
      )
    return false
  }
  const models = batch.models.filter((m) => sent(m.model, m.version))
  const shadow = batch.shadow?.filter((s) => sent(s.model, s.version))
  if (refused.size === 0) return batch
  if (models.length === 0 && !shadow?.length)
    throw new EdgeFleetError(
      'EF_ERR_TELEMETRY_UNKNOWN_VERSION',
      `${batch.deviceId} batch ${batch.batchId}: ${[...refused].join(', ')}`,
    )
  return { ...batch, models, ...(shadow ? { shadow } : {}) }
}

function allCached(store: HubStore, batch: TelemetryBatch): boolean {
  const sent = store.sentVersions.cached(batch.deviceId)
  if (!sent) return false
  for (const m of batch.models) if (!sent.get(m.model)?.has(m.version)) return false
  if (batch.shadow) for (const s of batch.shadow) if (!sent.get(s.model)?.has(s.version)) return false
  return true
}
