// The database side of ingest through JetStream [EF-9.13]: a durable pull
// consumer on EF_TELEMETRY (shared by every hub replica on one store) hands
// each message to the batched writer (telemetry/ingest.ts) and acknowledges
// it after its transaction committed. A redelivery (hub restarted, ack lost)
// is recognised by the batch's or sample's identity, the same dedup as the
// MQTT path [EF-2.6], so it is acknowledged without counting twice. A message
// the hub cannot apply is terminated with a code: never redelivered, never applied.
import { EdgeFleetError, codeOf, sampleCodec, telemetryCodec } from '@edgefleet/shared'
import { AckPolicy, DeliverPolicy, nanos, type ConsumerMessages, type JsMsg } from 'nats'
import type { Logger } from 'pino'
import type { HubStore } from '../store/index.js'
import type { Ingestor } from '../telemetry/ingest.js'
import { assertOneEntryPerVersion } from '../store/telemetry.js'
import { keepSentVersions } from '../telemetry/sent-only.js'
import { assertTensorsDecode } from '../mqtt/handlers/samples.js'
import { STREAM_NAMES, SUBJECTS, subjectToken, type HubStream } from './connection.js'

export interface StreamConsumerStats {
  applied: number
  /** Messages terminated because the hub cannot apply them, by code. */
  rejected: Record<string, number>
  /** Messages handed back for redelivery after a failed transaction. */
  retried: number
}

/** Unacknowledged messages the consumer lets one hub hold (its writer's queue is bounded anyway). */
const MAX_ACK_PENDING = 2000
/** How long one pull request lives (ms); nats.js sends heartbeats every half of it. */
const PULL_EXPIRES_MS = 5_000
/** Redelivery delay after a failed transaction (ms). */
const NAK_DELAY_MS = 1_000

export class StreamConsumer {
  private messages: ConsumerMessages | undefined
  private closed = false
  private running: Promise<void> | undefined
  readonly stats: StreamConsumerStats = { applied: 0, rejected: {}, retried: 0 }

  constructor(
    private readonly deps: { stream: HubStream; ingest: Ingestor; store: HubStore; now: () => number; log: Logger },
  ) {}

  /** Creates the durable consumer if missing and starts pulling. */
  async start(): Promise<void> {
    const { jsm, options } = this.deps.stream
    const name = STREAM_NAMES.ingestConsumer
    // A message delivered to a hub that stopped before its commit goes to the next puller after this.
    const tunable = { ack_wait: nanos(options.ackWaitMs), max_ack_pending: MAX_ACK_PENDING }
    const existing = await jsm.consumers.info(STREAM_NAMES.telemetry, name).catch(() => undefined)
    if (existing) await jsm.consumers.update(STREAM_NAMES.telemetry, name, tunable)
    else
      await jsm.consumers.add(STREAM_NAMES.telemetry, {
        durable_name: name,
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.All,
        ...tunable,
      })
    this.running = this.loop()
  }

  /** Pulls until closed; a broken pull (stream leader moved, node gone) starts again after a pause. */
  private async loop(): Promise<void> {
    const { js } = this.deps.stream
    while (!this.closed) {
      try {
        const consumer = await js.consumers.get(STREAM_NAMES.telemetry, STREAM_NAMES.ingestConsumer)
        // Short pulls: a pull lost with a node (or a stream leader that moved) is noticed within one
        // heartbeat (half of `expires`) and pulled again, instead of after the default 30 s.
        this.messages = await consumer.consume({ max_messages: 500, expires: PULL_EXPIRES_MS })
        for await (const msg of this.messages) {
          if (this.closed) {
            msg.nak() // the hub is stopping: straight back to the stream for the next puller
            continue
          }
          await new Promise<void>((resolve) => this.deps.ingest.whenReady(resolve))
          this.apply(msg)
        }
      } catch (err) {
        if (this.closed) break
        this.deps.log.warn({ err: (err as Error).message }, 'stream consumer interrupted; pulling again')
        await new Promise((r) => setTimeout(r, 1000))
      }
    }
  }

  /** One message: checked as the MQTT handler checks it, then queued; acked after commit, nak'd after a failure. */
  private apply(msg: JsMsg): void {
    let push: (done: (err?: Error) => void) => void
    try {
      push = this.prepare(msg)
    } catch (err) {
      this.reject(msg, err)
      return
    }
    push((err) => {
      if (!err) {
        this.stats.applied++
        msg.ack()
        return
      }
      this.stats.retried++
      msg.nak(NAK_DELAY_MS)
    })
  }

  private prepare(msg: JsMsg): (done: (err?: Error) => void) => void {
    const { ingest, store, now } = this.deps
    const dot = msg.subject.lastIndexOf('.')
    const kind = msg.subject.slice(0, dot)
    const token = msg.subject.slice(dot + 1)
    const payload = Buffer.from(msg.data)
    if (kind === SUBJECTS.telemetry) {
      const decoded = telemetryCodec.decode(payload)
      this.assertDevice(token, decoded.deviceId)
      assertOneEntryPerVersion(decoded)
      const batch = keepSentVersions(store, decoded, now())
      return (done) => ingest.pushTelemetry(batch, payload.length, done)
    }
    if (kind === SUBJECTS.samples) {
      const sample = sampleCodec.decode(payload)
      this.assertDevice(token, sample.deviceId)
      assertTensorsDecode(sample)
      return (done) => ingest.pushSample(payload, done)
    }
    throw new EdgeFleetError('EF_ERR_STREAM_MESSAGE', `no telemetry or samples on subject ${msg.subject}`)
  }

  /** The subject's device is the payload's, and the hub knows it (a stranger's rows would have no device). */
  private assertDevice(token: string, deviceId: string): void {
    if (token !== subjectToken(deviceId))
      throw new EdgeFleetError('EF_ERR_STREAM_MESSAGE', `subject names device ${token}, payload ${deviceId}`)
    if (!this.deps.store.devices.get(deviceId))
      throw new EdgeFleetError('EF_ERR_STREAM_MESSAGE', `device ${deviceId} is not registered on this hub`)
  }

  /** Terminated: JetStream never delivers it again, so it is refused (and counted) once. */
  private reject(msg: JsMsg, err: unknown): void {
    const code = codeOf(err)
    this.stats.rejected[code] = (this.stats.rejected[code] ?? 0) + 1
    this.deps.log.warn(
      { code, err: (err as Error).message, seq: msg.seq, subject: msg.subject },
      'stream message refused; terminated',
    )
    msg.term()
  }

  async close(): Promise<void> {
    this.closed = true
    await this.messages?.close()
    await this.running
  }
}
