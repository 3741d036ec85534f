// One dispatcher for every topic the hub reads, one handler file per message.
// A bad message is logged with its code, counted and dropped: it never stops
// the hub [EF-2.8].
import { newHistograms, type HubHistograms } from '../metrics/histogram.js'
import { EdgeFleetError, codeOf, parseTopic, type FetchRequest, type TelemetryBatch } from '@edgefleet/shared'
import type { Logger } from 'pino'
import type { HubStore } from '../store/index.js'
import type { IngestDone, IngestSink } from '../telemetry/ingest.js'
import { handleState } from './handlers/state.js'
import { handleEvent } from './handlers/events.js'
import { handleTelemetry } from './handlers/telemetry.js'
import { handleFetch } from './handlers/fetch.js'
import { handleSamples } from './handlers/samples.js'

export interface HubMetrics {
  messagesIn: number
  dropped: Record<string, number>
  duplicateBatches: number
  /** Latency, ingest, build and download histograms for /metrics [EF-8.12]. */
  histograms: HubHistograms
}

export interface HandlerContext {
  store: HubStore
  log: Logger
  metrics: HubMetrics
  now: () => number
  onDeviceOnline: (deviceId: string) => void
  /** A device reported the hub key it trusts; the hub re-announces a rotation it missed [EF-3.6]. */
  onHubKeySeen?: (deviceId: string, hubKey: string) => void
  onFetch: (req: FetchRequest) => void
  assertSameDevice: (topicDevice: string, payloadDevice: string) => void
  /** Told about every valid telemetry batch (device-health alerts, EF-9.12). */
  onTelemetry?: (batch: TelemetryBatch) => void
  /**
   * Batched telemetry and sample ingest [EF-9.1], or the JetStream publisher [EF-9.13]; without it handlers
   * write one message per transaction.
   */
  ingest?: IngestSink
}

export function newMetrics(): HubMetrics {
  return { messagesIn: 0, dropped: {}, duplicateBatches: 0, histograms: newHistograms() }
}

export function assertSameDevice(topicDevice: string, payloadDevice: string): void {
  if (topicDevice !== payloadDevice)
    throw new EdgeFleetError('EF_ERR_TOPIC_DEVICE_MISMATCH', `topic ${topicDevice}, payload ${payloadDevice}`)
}

/**
 * Handles one message. `done` runs exactly once: after the commit for
 * telemetry and samples that the ingestor queued [EF-9.1], at once for
 * everything else, and for a refused message (it is dropped, never retried).
 */
export function dispatch(ctx: HandlerContext, topic: string, payload: Buffer, done?: IngestDone): void {
  ctx.metrics.messagesIn++
  try {
    const parsed = parseTopic(topic)
    if (parsed === null || parsed.kind === 'chunk' || parsed.kind === 'repair' || parsed.kind === 'cmd')
      throw new EdgeFleetError('EF_ERR_TOPIC_UNKNOWN', topic)
    switch (parsed.kind) {
      case 'telemetry':
        return handleTelemetry(ctx, parsed.deviceId, payload, done)
      case 'samples':
        return handleSamples(ctx, parsed.deviceId, payload, done)
      case 'state':
        handleState(ctx, parsed.deviceId, payload)
        break
      case 'events':
        handleEvent(ctx, parsed.deviceId, payload)
        break
      case 'fetch':
        handleFetch(ctx, parsed.deviceId, payload)
        break
    }
  } catch (err) {
    const code = codeOf(err)
    ctx.metrics.dropped[code] = (ctx.metrics.dropped[code] ?? 0) + 1
    ctx.log.warn({ code, topic, err: (err as Error).message }, 'dropped message')
  }
  done?.()
}
