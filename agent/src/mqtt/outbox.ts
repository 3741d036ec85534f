// Sends queued messages (events, telemetry) in order while connected; a row
// leaves the SQLite outbox only after the broker's PUBACK [EF-2.6]. Across a
// reconnect mqtt.js resends what was in flight (persistent session); after a
// restart the whole outbox is sent again and the hub drops what it has.
import type { MqttClient } from 'mqtt'
import type { AgentDb } from '../store/db.js'

export class OutboxSender {
  private busy = false
  private inFlight = 0
  private lastId = 0
  /** Messages awaiting their PUBACK at once. */
  private readonly window = 16

  constructor(private readonly db: AgentDb, private readonly client: () => MqttClient | undefined) {}

  /** Call after enqueueing and on (re)connect. */
  kick(): void {
    if (this.busy) return
    this.busy = true
    queueMicrotask(() => {
      this.busy = false
      this.pump()
    })
  }

  private pump(): void {
    const c = this.client()
    if (!c || !c.connected) return
    const rows = this.db.peek(this.window - this.inFlight, this.lastId)
    for (const r of rows) {
      this.lastId = r.id
      this.inFlight++
      c.publish(r.topic, r.payload, { qos: 1 }, (err) => {
        this.inFlight = Math.max(0, this.inFlight - 1)
        if (!err) this.db.ack(r.id)
        this.kick()
      })
    }
  }
}
