// Ingest through JetStream [EF-9.13]: with `--stream`, the MQTT handlers hand
// accepted telemetry and samples here instead of to the database writer. Each
// is published to EF_TELEMETRY with its identity as the message id, and the
// device's PUBACK waits for the stream's acknowledgement [EF-9.1.1]: a stream
// that cannot take it (no quorum, no connection) refuses the device, whose
// outbox sends it again. The stream's consumer (consumer.ts) writes the database.
import { EdgeFleetError, type TelemetryBatch } from '@edgefleet/shared'
import { headers as natsHeaders } from 'nats'
import type { Logger } from 'pino'
import type { IngestDone, IngestSink } from '../telemetry/ingest.js'
import { SUBJECTS, subjectToken, type HubStream } from './connection.js'

/** Header naming what a message holds, for readers other than the hub. */
const KIND_HEADER = 'Ef-Kind'

export interface StreamIngestStats {
  published: number
  /** Publishes the stream did not acknowledge (the device was refused and sends again). */
  failed: number
  /** Publishes JetStream recognised as a resend within its duplicate window. */
  duplicates: number
}

/** Publishes in flight past which MQTT readers are told to wait (backpressure toward the devices). */
const MAX_IN_FLIGHT = 1000

export class StreamIngest implements IngestSink {
  private inFlight = 0
  private waiters: (() => void)[] = []
  readonly stats: StreamIngestStats = { published: 0, failed: 0, duplicates: 0 }

  constructor(private readonly deps: { stream: HubStream; log: Logger }) {}

  /** A validated batch [EF-2.6]: stored in the stream under `t:{device}:{batch}` (JetStream drops a resend). */
  pushTelemetry(batch: TelemetryBatch, _bytes: number, done?: IngestDone): void {
    const subject = `${SUBJECTS.telemetry}.${subjectToken(batch.deviceId)}`
    this.publish(subject, Buffer.from(JSON.stringify(batch)), `t:${batch.deviceId}:${batch.batchId}`, 'telemetry', done)
  }

  /** A validated sample payload [EF-2.9], as the device sent it. */
  pushSample(payload: Uint8Array, done?: IngestDone): void {
    const { deviceId, sampleId } = JSON.parse(Buffer.from(payload).toString('utf8')) as {
      deviceId: string
      sampleId: string
    }
    const subject = `${SUBJECTS.samples}.${subjectToken(deviceId)}`
    this.publish(subject, payload, `s:${deviceId}:${sampleId}`, 'sample', done)
  }

  private publish(subject: string, data: Uint8Array, msgID: string, kind: string, done?: IngestDone): void {
    const h = natsHeaders()
    h.set(KIND_HEADER, kind)
    this.inFlight++
    this.deps.stream.js.publish(subject, data, { msgID, headers: h }).then(
      (ack) => {
        this.settled()
        this.stats.published++
        if (ack.duplicate) this.stats.duplicates++
        done?.()
      },
      (err: unknown) => {
        this.settled()
        this.stats.failed++
        const e = new EdgeFleetError('EF_ERR_INGEST_UNAVAILABLE', `stream: ${(err as Error).message}`, { cause: err })
        this.deps.log.warn({ code: e.code, err: e.message }, 'telemetry not acknowledged by the stream; device refused')
        done?.(e)
      },
    )
  }

  private settled(): void {
    this.inFlight--
    if (this.ready) for (const cb of this.waiters.splice(0)) cb()
  }

  get ready(): boolean {
    return this.inFlight < MAX_IN_FLIGHT
  }

  whenReady(cb: () => void): void {
    if (this.ready) return cb()
    this.waiters.push(cb)
  }
}
