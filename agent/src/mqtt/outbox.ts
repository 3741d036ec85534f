// Sends queued messages (events, telemetry, samples) in order while
// connected; a row leaves the outbox (agent.db) only after the broker's PUBACK
// [EF-2.6]. Every (re)connect starts a new round from the oldest queued row:
// whatever the previous connection had in flight is sent again (the hub
// ingests idempotently), so a PUBACK lost with a dropped link, or a publish
// callback mqtt.js never calls, can never strand a row in the queue.
// A database that refuses the deletion after a PUBACK (disk full, SQLITE_FULL)
// leaves the row queued: it is sent again later, never thrown [EF-7.3.1].
import type { MqttClient } from 'mqtt'
import type { AgentDb } from '../store/db.js'

export class OutboxSender {
  private busy = false
  private inFlight = 0
  private lastId = 0
  /** Bumped at every (re)connect; callbacks of an earlier round only delete acknowledged rows. */
  private round = 0
  /** Messages awaiting their PUBACK at once. */
  private readonly window = 16

  /** Acknowledged rows the database could not delete (storage faults) since start. */
  ackFailures = 0

  constructor(
    private readonly db: AgentDb,
    private readonly client: () => MqttClient | undefined,
    private readonly onStorageFault: (err: Error) => void = () => undefined,
  ) {}

  /** Call on every (re)connect: resend from the oldest queued row. */
  restart(): void {
    this.round++
    this.inFlight = 0
    this.lastId = 0
    this.kick()
  }

  /** Call after enqueueing. */
  kick(): void {
    if (this.busy) return
    this.busy = true
    queueMicrotask(() => {
      this.busy = false
      this.pump()
    })
  }

  private pump(): void {
    const client = this.client()
    if (!client?.connected) return
    let rows: ReturnType<AgentDb['peek']>
    try {
      rows = this.db.peek(this.window - this.inFlight, this.lastId)
    } catch (err) {
      this.onStorageFault(err as Error) // a failing disk: the next kick or reconnect tries again
      return
    }
    const round = this.round
    for (const r of rows) {
      this.lastId = r.id
      this.inFlight++
      client.publish(r.topic, r.payload, { qos: 1 }, (err) => {
        // A PUBACK is a PUBACK, whichever round sent the message.
        if (!err) this.ack(r.id)
        if (round !== this.round) return
        this.inFlight = Math.max(0, this.inFlight - 1)
        this.kick()
      })
    }
  }

  private ack(id: number): void {
    try {
      this.db.ack(id)
    } catch (err) {
      this.ackFailures++
      this.onStorageFault(err as Error)
    }
  }
}
