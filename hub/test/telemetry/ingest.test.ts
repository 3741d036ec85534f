// The ingestor [EF-9.1] on real SQLite files, with both writers (the worker
// thread with its own connection, and the hub's connection): redeliveries are
// stored once, a record's callback runs only after its commit, transactions
// stay small, readers wait while the queue is full, a failed transaction
// acknowledges nothing and a resend stores everything, and the hub's own
// read-then-write transactions keep working while the thread commits.
import { join } from 'node:path'
import { statSync } from 'node:fs'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import pino from 'pino'
import { FEATURE_BUCKETS } from '@edgefleet/shared'
import { HubStore } from '../../src/store/index.js'
import { Ingestor, type IngestOptions } from '../../src/telemetry/ingest.js'
import { ThreadWriter } from '../../src/telemetry/writer.js'
import { DriftMonitor } from '../../src/telemetry/drift.js'
import { tempDir } from '../fixtures/hub.js'
import { batch, sample } from '../fixtures/telemetry.js'

const log = pino({ level: 'silent' })
const MIN = 60_000
const T0 = Date.UTC(2026, 10, 25, 12, 0, 0)
const bytesOf = (o: unknown) => Buffer.from(JSON.stringify(o))

/** Collects callbacks: how many ran, and their errors' codes. */
function acks() {
  const seen = { ok: 0, errors: [] as string[] }
  const done = (err?: Error) => (err ? seen.errors.push((err as { code?: string }).code ?? err.message) : seen.ok++)
  return { seen, done }
}

describe.each(['thread', 'inline'] as const)('ingest with the %s writer', (writer) => {
  let store: HubStore
  let dir: string
  let cleanup: () => void
  const open: Ingestor[] = []
  const ingestor = (o: Partial<IngestOptions> = {}) => {
    const ing = new Ingestor({ store, now: () => T0, log }, { writer, ...o })
    open.push(ing)
    return ing
  }

  beforeEach(() => {
    const t = tempDir('ef-ingest-')
    dir = t.dir
    cleanup = t.cleanup
    store = HubStore.open(join(dir, 'hub.db'))
    store.devices.insert('d1', 'gateway-rpi4', {}, 'x', T0)
  })
  afterEach(async () => {
    for (const ing of open.splice(0)) await ing.close()
    store.close()
    cleanup()
  })

  it('stores a redelivered batch and sample once: one row, one rollup count, one feed record', async () => {
    const ing = ingestor()
    const { seen, done } = acks()
    const b = batch('d1', T0 + 1000, { confidence: [0, 0, 0, 0, 0, 50, 50, 0, 0, 0] })
    ing.pushTelemetry(b, 100, done)
    ing.pushTelemetry(b, 100, done) // redelivered before the first copy committed
    ing.pushSample(bytesOf(sample('d1', 'sample-0001', T0)), done)
    await ing.flush()
    expect(seen).toEqual({ ok: 3, errors: [] })
    expect(ing.stats).toMatchObject({ batches: 1, duplicateBatches: 1, samples: 1, duplicateSamples: 0 })
    ing.pushTelemetry(b, 100, done) // and again later (an offline resend): acknowledged at once
    expect(seen.ok).toBe(4)
    ing.pushSample(bytesOf(sample('d1', 'sample-0001', T0)), done)
    await ing.flush()
    expect(seen).toEqual({ ok: 5, errors: [] })
    expect(ing.stats).toMatchObject({ batches: 1, duplicateBatches: 2, samples: 1, duplicateSamples: 1 })
    expect(store.telemetry.countRows()).toEqual({ batches: 1, rows: 1 })
    const rows = store.telemetry.rollups.rows('wake', null, 0, T0 + 10 * MIN)
    expect(rows).toHaveLength(1)
    expect(rows[0]).toMatchObject({
      profile: 'gateway-rpi4',
      bucket: T0,
      batches: 1,
      requests: 100,
      confidence: [0, 0, 0, 0, 0, 50, 50, 0, 0, 0],
    })
    expect(store.telemetry.feed.count()).toBe(1)
    const [line] = store.telemetry.feed.page({ limit: 10 })
    expect(JSON.parse(line.line)).toMatchObject({
      kind: 'sample',
      model: 'wake',
      deviceId: 'd1',
      sampleId: 'sample-0001',
      inputs: { x: { type: 'float32', dims: [1, 3] } },
      url: '/api/v1/samples/d1/sample-0001',
    })
  })

  it('acknowledges only after the commit, in transactions of at most maxRecords; readers wait while the queue is full', async () => {
    const ing = ingestor({ maxRecords: 10 })
    const { seen, done } = acks()
    let readerWaited = false
    for (let i = 0; i < 95; i++) ing.pushTelemetry(batch('d1', T0 + i), 100, done)
    // Nothing is acknowledged before its transaction commits.
    expect(seen.ok).toBe(0)
    expect(store.telemetry.countRows().batches).toBe(0)
    expect(ing.ready).toBe(false)
    ing.whenReady(() => (readerWaited = true))
    expect(readerWaited).toBe(false)
    expect(ing.stats.fullFlushes).toBe(1)
    await ing.flush()
    expect(readerWaited).toBe(true)
    expect(seen).toEqual({ ok: 95, errors: [] })
    expect(ing.stats.flushes).toBe(10) // 95 records, at most 10 per transaction
    expect(ing.stats.maxQueued).toBe(95)
    expect(store.telemetry.countRows().batches).toBe(95)
    expect(store.telemetry.rollups.rows('wake', null, 0, T0 + MIN).reduce((n, r) => n + r.batches, 0)).toBe(95)
  })

  it('refuses pushes after close with EF_ERR_INGEST_UNAVAILABLE, after committing what was queued', async () => {
    const ing = ingestor()
    const { seen, done } = acks()
    ing.pushTelemetry(batch('d1', T0 + 1), 100, done)
    await ing.close()
    ing.pushTelemetry(batch('d1', T0 + 2), 100, done)
    expect(seen).toEqual({ ok: 1, errors: ['EF_ERR_INGEST_UNAVAILABLE'] })
    expect(store.telemetry.countRows().batches).toBe(1)
  })

  it('keeps the hub’s own read-then-write transactions working while it commits (no SQLITE_BUSY)', async () => {
    const ing = ingestor({ maxRecords: 5 })
    const drift = new DriftMonitor(
      { store, now: () => T0 + 5 * MIN, log },
      { intervalMs: 0, fieldWindowMs: MIN, windowMs: 10 * MIN },
    )
    let evaluations = 0
    for (let i = 0; i < 400; i++) {
      ing.pushTelemetry(batch('d1', T0 + i, { confidence: [0, 0, 0, 0, 0, 50, 50, 0, 0, 0] }), 100)
      if (i % 20 === 0) {
        await new Promise((r) => setImmediate(r)) // let the writer commit meanwhile
        drift.evaluate() // reads rollups, then writes baselines and drift state in one transaction
        evaluations++
      }
    }
    await ing.flush()
    expect(evaluations).toBe(20)
    expect(store.telemetry.countRows().batches).toBe(400)
  })
})

describe('the writer thread', () => {
  it('is started again when it exits; what it had not committed is refused, and sent again it is stored', async () => {
    const { dir, cleanup } = tempDir('ef-ingest-crash-')
    const store = HubStore.open(join(dir, 'hub.db'))
    store.devices.insert('d1', 'gateway-rpi4', {}, 'x', T0)
    const ing = new Ingestor({ store, now: () => T0, log })
    try {
      const first = acks()
      for (let i = 0; i < 10; i++) ing.pushTelemetry(batch('d1', T0 + i), 100, first.done)
      await ing.flush()
      expect(first.seen).toEqual({ ok: 10, errors: [] })
      const writer = ing.currentWriter
      if (!(writer instanceof ThreadWriter)) throw new Error('the ingestor should write on a thread here')
      await writer.kill() // as an out-of-memory crash would
      const lost = acks()
      const next = Array.from({ length: 10 }, (_, i) => batch('d1', T0 + 100 + i))
      for (const b of next) ing.pushTelemetry(b, 100, lost.done)
      await ing.flush()
      expect(lost.seen.ok).toBe(0)
      expect(lost.seen.errors).toEqual(new Array(10).fill('EF_ERR_INGEST_UNAVAILABLE'))
      expect(ing.stats.writerRestarts).toBe(1)
      const again = acks()
      for (const b of next) ing.pushTelemetry(b, 100, again.done)
      await ing.flush()
      expect(again.seen).toEqual({ ok: 10, errors: [] })
      expect(store.telemetry.countRows()).toEqual({ batches: 20, rows: 20 })
    } finally {
      await ing.close()
      store.close()
      cleanup()
    }
  })
})

describe('a failed ingest transaction (database at its size cap, as on a full disk)', () => {
  let store: HubStore
  let cleanup: () => void
  let path: string
  beforeEach(() => {
    const t = tempDir('ef-ingest-full-')
    cleanup = t.cleanup
    path = join(t.dir, 'hub.db')
    store = HubStore.open(path)
    store.devices.insert('d1', 'gateway-rpi4', {}, 'x', T0)
  })
  afterEach(() => {
    store.close()
    cleanup()
  })

  it('acknowledges nothing, reports EF_ERR_INGEST_UNAVAILABLE, and a resend after the cap is lifted stores everything', async () => {
    const capped = new Ingestor({ store, now: () => T0, log }, { maxDbBytes: statSync(path).size + 64 * 1024 })
    const { seen, done } = acks()
    const batches = Array.from({ length: 300 }, (_, i) =>
      batch('d1', T0 + i, { features: new Array(FEATURE_BUCKETS.length + 1).fill(i) }),
    )
    for (const b of batches) capped.pushTelemetry(b, 100, done)
    await capped.close()
    expect(seen.errors.length).toBeGreaterThan(0)
    expect(new Set(seen.errors)).toEqual(new Set(['EF_ERR_INGEST_UNAVAILABLE']))
    expect(capped.stats.failedFlushes).toBeGreaterThan(0)
    // Whatever was acknowledged is stored, whole; whatever was not is absent, whole.
    const stored = store.telemetry.countRows()
    expect(stored.batches).toBe(seen.ok)
    expect(stored.rows).toBe(seen.ok)

    // The devices send everything again (their outboxes kept what was not acknowledged).
    const again = new Ingestor({ store, now: () => T0, log })
    const second = acks()
    for (const b of batches) again.pushTelemetry(b, 100, second.done)
    await again.close()
    expect(second.seen).toEqual({ ok: 300, errors: [] })
    expect(again.stats).toMatchObject({ batches: 300 - seen.ok, duplicateBatches: seen.ok })
    expect(store.telemetry.countRows()).toEqual({ batches: 300, rows: 300 })
    expect(store.telemetry.rollups.rows('wake', null, 0, T0 + MIN).reduce((n, r) => n + r.batches, 0)).toBe(300)
  })
})
