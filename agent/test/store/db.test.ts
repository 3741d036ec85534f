// The agent's journal file (agent.db): outbox order and eviction, counters, command log.
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { AgentDb } from '../../src/store/db.js'
import { tempDir } from '../fixtures/agent.js'

describe('AgentDb', () => {
  let tmp: ReturnType<typeof tempDir>
  let db: AgentDb
  beforeEach(() => {
    tmp = tempDir()
    db = new AgentDb(join(tmp.dir, 'agent.db'))
  })
  afterEach(() => {
    db.close()
    tmp.cleanup()
  })

  const put = (kind: string, n: number, max = 1000) =>
    db.enqueue(`ef/v1/dev/d/${kind}`, Buffer.from(`${kind}-${n}`), kind, n, max)
  const contents = () => db.peek(1000).map((r) => r.payload.toString())

  it('peeks in insertion order, pages with afterId, and ack removes one row', () => {
    put('event', 1)
    put('telemetry', 2)
    put('event', 3)
    const rows = db.peek(10)
    expect(rows.map((r) => [r.topic, r.payload.toString(), r.kind])).toEqual([
      ['ef/v1/dev/d/event', 'event-1', 'event'],
      ['ef/v1/dev/d/telemetry', 'telemetry-2', 'telemetry'],
      ['ef/v1/dev/d/event', 'event-3', 'event'],
    ])
    expect(Buffer.isBuffer(rows[0].payload)).toBe(true)
    expect(db.peek(1).map((r) => r.payload.toString())).toEqual(['event-1'])
    expect(db.peek(10, rows[0].id).map((r) => r.payload.toString())).toEqual(['telemetry-2', 'event-3'])
    db.ack(rows[1].id)
    expect(contents()).toEqual(['event-1', 'event-3'])
    expect(db.outboxSize()).toBe(2)
    db.ack(rows[1].id) // acking twice is harmless
    expect(db.outboxSize()).toBe(2)
  })

  it('beyond maxRows evicts the oldest telemetry before any event and counts evictions', () => {
    put('event', 1, 4)
    put('telemetry', 2, 4)
    put('event', 3, 4)
    put('telemetry', 4, 4)
    expect(db.counter('outbox_evicted')).toBe(0)
    expect(put('event', 5, 4)).toBe(1)
    expect(contents()).toEqual(['event-1', 'event-3', 'telemetry-4', 'event-5'])
    expect(put('event', 6, 4)).toBe(1)
    expect(contents()).toEqual(['event-1', 'event-3', 'event-5', 'event-6'])
    // Events outrank telemetry even when the telemetry is newer: a batch arriving at a queue full of events is dropped itself...
    expect(put('telemetry', 7, 4)).toBe(1)
    expect(contents()).toEqual(['event-1', 'event-3', 'event-5', 'event-6'])
    // ...and with no telemetry at all, the oldest event goes.
    expect(put('event', 8, 4)).toBe(1)
    expect(contents()).toEqual(['event-3', 'event-5', 'event-6', 'event-8'])
    expect(db.counter('outbox_evicted')).toBe(4)
    // A smaller limit evicts several at once, still telemetry first.
    put('telemetry', 9, 5)
    expect(put('event', 10, 3)).toBe(3)
    expect(contents()).toEqual(['event-6', 'event-8', 'event-10'])
    expect(db.counter('outbox_evicted')).toBe(7)
  })

  it('counters add up and start at 0', () => {
    expect(db.counter('x')).toBe(0)
    db.bump('x')
    db.bump('x', 4)
    expect(db.counter('x')).toBe(5)
  })

  it('records command status and result across a reopen [EF-2.3.2]', () => {
    expect(db.cmdStatus('cmd-1')).toBeUndefined()
    db.setCmd('cmd-1', 'running', undefined, 1)
    expect(db.cmdStatus('cmd-1')).toEqual({ status: 'running', result: null })
    db.setCmd('cmd-1', 'done', { kind: 'activated', version: '2' }, 2)
    db.close()
    db = new AgentDb(join(tmp.dir, 'agent.db'))
    const s = db.cmdStatus('cmd-1')!
    expect(s.status).toBe('done')
    expect(JSON.parse(s.result!)).toEqual({ kind: 'activated', version: '2' })
    put('event', 9)
    expect(db.outboxSize()).toBe(1)
  })

  it('makes room under the size cap: queued telemetry goes (counted), the command log and events stay [EF-7.3]', () => {
    db.setMaxBytes(128 * 1024)
    const big = Buffer.alloc(3000, 1)
    db.enqueue('e', Buffer.from('event-0'), 'event', 0, 1_000_000)
    let full = false
    for (let i = 1; i < 1000 && !full; i++) {
      try {
        db.enqueue('t', big, 'telemetry', i, 1_000_000)
      } catch (err) {
        expect((err as { code?: string }).code).toBe('EF_ERR_STORAGE_FULL')
        full = true
      }
    }
    expect(full).toBe(true)
    const queued = db.outboxSize()
    // A command arriving at a full database still gets logged (it must run once, EF-2.3.2).
    db.setCmd('cmd-full', 'running', undefined, 1)
    expect(db.cmdStatus('cmd-full')?.status).toBe('running')
    db.withRoom(() => db.enqueue('t', big, 'telemetry', 2000, 1_000_000))
    expect(db.spaceDrops).toBeGreaterThan(0)
    expect(db.outboxSize()).toBe(queued + 1 - db.spaceDrops)
    expect(db.peek(1)[0].payload.toString()).toBe('event-0')
  })

  it('withRoom gives up with EF_ERR_STORAGE_FULL when only events are left to evict', () => {
    db.setMaxBytes(64 * 1024)
    const big = Buffer.alloc(3000, 2)
    expect(() => {
      for (let i = 0; i < 1000; i++) db.withRoom(() => db.enqueue('e', big, 'event', i, 1_000_000))
    }).toThrow(expect.objectContaining({ code: 'EF_ERR_STORAGE_FULL' }))
    expect(db.spaceDrops).toBe(0)
  })
})
