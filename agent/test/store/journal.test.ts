// agent.db as an append-only journal [EF-7.4]: a torn or corrupt tail is cut
// off at open (the state is always that of a prefix of the writes),
// compaction keeps exactly the live state, a process killed with SIGKILL
// mid-write reopens cleanly, and an SQLite agent.db of an older agent is
// moved aside.
import { spawn } from 'node:child_process'
import { appendFileSync, existsSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { AgentDb } from '../../src/store/db.js'
import { tempDir } from '../fixtures/agent.js'

describe('AgentDb journal', () => {
  let t: ReturnType<typeof tempDir>
  let path: string
  beforeEach(() => {
    t = tempDir()
    path = join(t.dir, 'agent.db')
  })
  afterEach(() => t.cleanup())

  const payloads = (db: AgentDb) => db.peek(100_000).map((r) => r.payload.toString())

  it('state survives a reopen: rows, acks, counters, command log', () => {
    let db = new AgentDb(path)
    for (let i = 0; i < 5; i++) db.enqueue('t', Buffer.from(`p${i}`), i % 2 ? 'event' : 'telemetry', i, 100)
    db.ack(db.peek(1)[0].id)
    db.bump('x', 3)
    db.setCmd('c1', 'done', { ok: true }, 7)
    db.close()
    db = new AgentDb(path)
    expect(payloads(db)).toEqual(['p1', 'p2', 'p3', 'p4'])
    expect(db.counter('x')).toBe(3)
    expect(db.cmdStatus('c1')).toEqual({ status: 'done', result: '{"ok":true}' })
    expect(db.queuedByKind()).toEqual({ event: 2, telemetry: 2 })
    expect(db.queuedBytes('telemetry')).toBe(4)
    expect(db.truncatedBytes).toBe(0)
    // ids keep growing after a reopen: the sender's afterId paging relies on it
    db.enqueue('t', Buffer.from('p5'), 'event', 5, 100)
    const ids = db.peek(100).map((r) => r.id)
    expect(ids).toEqual([...ids].sort((a, b) => a - b))
    db.close()
  })

  it('a frame cut at any byte, or a flipped bit in the last frame, reopens as the state before that write', () => {
    const db = new AgentDb(path)
    db.enqueue('t', Buffer.from('first'), 'event', 1, 100)
    db.setCmd('c1', 'running', undefined, 1)
    db.close()
    const good = readFileSync(path)
    const more = new AgentDb(path)
    more.enqueue('t', Buffer.from('second-payload'), 'event', 2, 100)
    more.close()
    const full = readFileSync(path)
    for (let cut = good.length; cut < full.length; cut++) {
      writeFileSync(path, full.subarray(0, cut))
      const r = new AgentDb(path)
      expect(payloads(r)).toEqual(['first'])
      expect(r.cmdStatus('c1')?.status).toBe('running')
      expect(r.truncatedBytes).toBe(cut - good.length)
      r.enqueue('t', Buffer.from('after'), 'event', 3, 100) // appends where the good prefix ends
      r.close()
      expect(payloads(new AgentDb(path))).toEqual(['first', 'after'])
    }
    const flipped = Buffer.from(full)
    flipped[full.length - 3] ^= 0x10
    writeFileSync(path, flipped)
    expect(payloads(new AgentDb(path))).toEqual(['first'])
    expect(statSync(path).size).toBe(good.length)
  })

  it('compaction keeps exactly the live state and bounds the file while rows come and go', () => {
    const db = new AgentDb(path)
    const big = Buffer.alloc(20_000, 3)
    for (let i = 0; i < 400; i++) {
      db.enqueue('t', Buffer.concat([Buffer.from(`${i}:`), big]), 'telemetry', i, 1000)
      if (i >= 3) db.ack(db.peek(1)[0].id) // three stay queued
    }
    db.setCmd('c', 'done', 'r', 1)
    expect(statSync(path).size).toBeLessThan(3 * 1024 * 1024) // 8 MB written, compacted along the way
    expect(db.peek(10).map((r) => r.payload.subarray(0, 4).toString())).toEqual(['397:', '398:', '399:'])
    db.close()
    const again = new AgentDb(path)
    expect(again.peek(10).map((r) => r.payload.length)).toEqual([big.length + 4, big.length + 4, big.length + 4])
    expect(again.cmdStatus('c')?.status).toBe('done')
    expect(existsSync(`${path}.compact`)).toBe(false)
    again.close()
  })

  it('a leftover PATH.compact from an unfinished compaction is ignored and removed', () => {
    const db = new AgentDb(path)
    db.enqueue('t', Buffer.from('kept'), 'event', 1, 100)
    db.close()
    writeFileSync(`${path}.compact`, 'half a compaction')
    const r = new AgentDb(path)
    expect(payloads(r)).toEqual(['kept'])
    expect(existsSync(`${path}.compact`)).toBe(false)
    r.close()
  })

  it('an SQLite agent.db of an older agent is moved to agent.db.sqlite and a new journal starts', () => {
    writeFileSync(path, Buffer.concat([Buffer.from('SQLite format 3\0'), Buffer.alloc(4080)]))
    const db = new AgentDb(path)
    expect(db.outboxSize()).toBe(0)
    expect(readFileSync(`${path}.sqlite`).subarray(0, 15).toString()).toBe('SQLite format 3')
    db.enqueue('t', Buffer.from('new'), 'event', 1, 100)
    db.close()
    expect(payloads(new AgentDb(path))).toEqual(['new'])
  })

  it('garbage appended by something else is cut off, not read as rows', () => {
    const db = new AgentDb(path)
    db.enqueue('t', Buffer.from('real'), 'event', 1, 100)
    db.close()
    appendFileSync(path, Buffer.from([0xff, 0xff, 0xff, 0x7f, 1, 2, 3]))
    const r = new AgentDb(path)
    expect(payloads(r)).toEqual(['real'])
    expect(r.truncatedBytes).toBe(7)
    r.close()
  })

  it('SIGKILL during writes, again and again: it always reopens, rows intact and in order', async () => {
    const dbUrl = pathToFileURL(join(import.meta.dirname, '../../dist/store/db.js')).href
    const script = `
      const { AgentDb } = await import(${JSON.stringify(dbUrl)})
      const db = new AgentDb(process.argv[1])
      db.setMaxBytes(256 * 1024)
      process.stdout.write('up\\n')
      for (let i = 0; ; i++) {
        const p = Buffer.alloc(100 + (i % 7) * 900, i % 251)
        db.withRoom(() => db.enqueue('t', p, i % 5 ? 'telemetry' : 'event', i, 400))
        if (i % 3 === 0) { const r = db.peek(1)[0]; if (r) db.ack(r.id) }
        if (i % 50 === 0) db.setCmd('c' + i, 'done', i, i)
      }`
    for (let round = 0; round < 8; round++) {
      const child = spawn(process.execPath, ['--input-type=module', '-e', script, path], {
        stdio: ['ignore', 'pipe', 'inherit'],
      })
      await new Promise<void>((res) => child.stdout.once('data', () => res()))
      await new Promise((r) => setTimeout(r, 50 + round * 37))
      child.kill('SIGKILL')
      await new Promise((r) => child.once('exit', r))
      const db = new AgentDb(path)
      const rows = db.peek(100_000)
      for (const r of rows) {
        const len = r.payload.length
        expect((len - 100) % 900).toBe(0)
        expect(r.payload.every((b) => b === r.payload[0])).toBe(true)
      }
      expect(rows.map((r) => r.id)).toEqual(rows.map((r) => r.id).sort((a, b) => a - b))
      expect(statSync(path).size).toBeLessThanOrEqual(256 * 1024 + 4096)
      db.close()
    }
    truncateSync(path, 0)
  }, 60_000)
})
