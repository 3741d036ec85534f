// Capture caps hold under a flood of low-confidence requests [EF-2.9.2], and a
// full agent database drops records with a count while inference goes on [EF-7.3].
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { sampleCodec, topics } from '@edgefleet/shared'
import { ModelHost } from '../src/runtime/host.js'
import { Capture } from '../src/capture/capture.js'
import { confidenceOf } from '../src/runtime/outputs.js'
import { AgentDb } from '../src/store/db.js'
import { WAKE, stubManifest, wakeTensor } from './fixtures/runtime.js'

const tick = () => new Promise((r) => setImmediate(r))

describe('capture under a flood of low-confidence requests', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'ef-capture-'))
  const host = new ModelHost({ threads: 1, executionProviders: ['cpu'] })
  let db: AgentDb
  let clock = Date.UTC(2026, 10, 25, 10, 0, 0)

  beforeAll(async () => {
    host.activate(stubManifest('wake', '1.0.0'), 'a', await host.open(WAKE))
    db = new AgentDb(join(tmp, 'agent.db'))
  })
  afterAll(async () => {
    db.close()
    await host.close()
    rmSync(tmp, { recursive: true, force: true })
  })

  it('never captures more than the hourly cap, nor more than the on-disk cap while offline', async () => {
    const enqueue = (p: Buffer) => {
      db.enqueue(topics.samples('dev-1'), p, 'sample', clock, 100_000)
      return true
    }
    const cap = new Capture({
      deviceId: 'dev-1',
      now: () => clock,
      enqueue,
      queuedBytes: () => db.queuedBytes('sample'),
    })
    // Random input: hundreds of the wake head's answers fall below 0.99, each one a capture candidate.
    cap.setPolicies([{ random: 0, confidenceBelow: 0.99, maxBytesPerHour: 200_000, maxBytesOnDisk: 500_000 }])
    let low = 0
    host.onResult((rec) => {
      const c = rec.outputs ? confidenceOf(rec.model.manifest, rec.outputs) : undefined
      if (c !== undefined && c < 0.99) low++
      cap.observe(rec, c)
    })

    const flood = async (n: number) => {
      for (let i = 0; i < n; i++) {
        await host.infer('wake', { 'onnx::Flatten_0': wakeTensor(i) })
        if (i % 50 === 0) await tick()
      }
      await tick()
      await tick()
    }
    await flood(1000)
    const oneSample = sampleCodec.encode(JSON.parse(db.peek(1)[0].payload.toString()) as never).length
    expect(oneSample).toBeGreaterThan(10_000) // 2400 float32 inputs in base64
    expect(db.queuedBytes('sample')).toBeLessThanOrEqual(200_000)
    expect(cap.stats.captured).toBe(Math.floor(200_000 / oneSample))
    expect(low).toBeGreaterThan(100)
    expect(cap.stats.capped).toBe(low - cap.stats.captured)

    // Next hours (compressed clock), still offline: the on-disk cap stops capture, whatever the hourly budget.
    for (let h = 1; h <= 5; h++) {
      clock += 3_600_000
      await flood(300)
      expect(db.queuedBytes('sample')).toBeLessThanOrEqual(500_000)
    }
    expect(db.queuedBytes('sample')).toBeGreaterThan(500_000 - 2 * oneSample)
    // Back online: the queue drains (PUBACKs), and capture resumes within the caps.
    for (const r of db.peek(10_000)) db.ack(r.id)
    clock += 3_600_000
    const before = cap.stats.captured
    await flood(300)
    expect(cap.stats.captured - before).toBe(Math.floor(200_000 / oneSample))
  })
})

describe('agent database size cap (disk full)', () => {
  it('refuses writes past its size cap with EF_ERR_STORAGE_FULL; the file stays bounded', () => {
    const tmp = mkdtempSync(join(tmpdir(), 'ef-dbcap-'))
    const db = new AgentDb(join(tmp, 'agent.db'))
    db.setMaxBytes(256 * 1024)
    const payload = Buffer.alloc(4096, 7)
    let ok = 0
    let full = 0
    for (let i = 0; i < 500; i++) {
      try {
        db.enqueue('t', payload, 'telemetry', i, 1_000_000)
        ok++
      } catch (err) {
        expect((err as { code?: string }).code).toBe('EF_ERR_STORAGE_FULL')
        full++
      }
    }
    expect(ok).toBeGreaterThan(20)
    expect(full).toBeGreaterThan(0)
    // Evicting the oldest makes room again [EF-7.3].
    expect(db.evictOldest(8)).toBe(8)
    db.enqueue('t', payload, 'telemetry', 999, 1_000_000)
    db.close()
    expect(statSync(join(tmp, 'agent.db')).size).toBeLessThanOrEqual(256 * 1024 + 4096)
    rmSync(tmp, { recursive: true, force: true })
  })
})
