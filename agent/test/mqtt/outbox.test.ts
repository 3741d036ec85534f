// The outbox sender: rows leave only on PUBACK; a reconnect resends whatever
// the previous connection left unacknowledged, even when mqtt.js never calls
// the old publish callbacks [EF-2.6].
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { MqttClient } from 'mqtt'
import { AgentDb } from '../../src/store/db.js'
import { OutboxSender } from '../../src/mqtt/outbox.js'
import { tempDir } from '../fixtures/agent.js'

/** A client stand-in that records publishes and lets the test decide which PUBACKs arrive. */
function fakeClient() {
  const sent: { payload: string; cb: (err?: Error) => void }[] = []
  const c = {
    connected: true,
    publish: (_t: string, payload: Buffer, _o: unknown, cb: (err?: Error) => void) =>
      void sent.push({ payload: payload.toString(), cb }),
  }
  return { client: c as unknown as MqttClient, sent, state: c }
}
const tick = () => new Promise((r) => setTimeout(r, 0))

describe('OutboxSender', () => {
  let t: ReturnType<typeof tempDir>
  let db: AgentDb
  beforeEach(() => {
    t = tempDir()
    db = new AgentDb(join(t.dir, 'agent.db'))
  })
  afterEach(() => {
    db.close()
    t.cleanup()
  })
  const put = (n: number) => db.enqueue('ef/v1/dev/d/telemetry', Buffer.from(`b${n}`), 'telemetry', n, 1000)

  it('keeps at most 16 in flight and deletes a row only on its PUBACK', async () => {
    for (let i = 0; i < 40; i++) put(i)
    const fake = fakeClient()
    const o = new OutboxSender(db, () => fake.client)
    o.kick()
    await tick()
    expect(fake.sent.map((s) => s.payload)).toEqual(Array.from({ length: 16 }, (_, i) => `b${i}`))
    fake.sent[0].cb()
    fake.sent[1].cb(new Error('not acknowledged'))
    await tick()
    expect(db.outboxSize()).toBe(39)
    expect(fake.sent.length).toBe(18)
  })

  it('a reconnect resends rows whose callbacks never came, and late PUBACKs of the old round still count', async () => {
    for (let i = 0; i < 20; i++) put(i)
    const fake = fakeClient()
    const sender = new OutboxSender(db, () => fake.client)
    sender.kick()
    await tick()
    const firstRound = fake.sent.splice(0)
    expect(firstRound.length).toBe(16)
    // The link drops: no callback ever fires for the first round; publishing stops while disconnected.
    fake.state.connected = false
    put(20)
    sender.kick()
    await tick()
    expect(fake.sent.length).toBe(0)
    fake.state.connected = true
    sender.restart()
    await tick()
    expect(fake.sent.map((s) => s.payload)).toEqual(Array.from({ length: 16 }, (_, i) => `b${i}`))
    // A PUBACK from the old round arrives late: the row goes, the new round's window is untouched.
    firstRound[0].cb()
    for (const s of fake.sent.splice(0)) s.cb()
    await tick()
    for (const s of fake.sent.splice(0)) s.cb()
    await tick()
    expect(db.outboxSize()).toBe(0)
  })
})
