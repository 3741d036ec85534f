// Ingest idempotency with rollups and feed records [EF-9.1, EF-9.2], PSI
// against a hand-computed value, baselines and drift events with hysteresis
// [EF-9.4, EF-9.5], retention and the feed's floor [EF-9.3]. Real SQLite in
// a temp folder; a fake clock.
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import pino from 'pino'
import { FEATURE_BUCKETS } from '@edgefleet/shared'
import { HubStore } from '../../src/store/index.js'
import { psi } from '../../src/stats.js'
import { DriftMonitor } from '../../src/telemetry/drift.js'
import { Retention, type RetentionOptions } from '../../src/telemetry/retention.js'
import { featureBin } from '../../src/telemetry/sketch.js'
import { tempDir } from '../fixtures/hub.js'
import { batch, sample, sketch } from '../fixtures/telemetry.js'

const log = pino({ level: 'silent' })
const MIN = 60_000
const T0 = Date.UTC(2026, 10, 25, 12, 0, 0)

describe('PSI [EF-2.6.5, EF-9.5]', () => {
  it('equals the hand-computed value', () => {
    // Baseline 50/50 over two bins, window 25/75: (0.25−0.5)·ln(0.25/0.5) + (0.75−0.5)·ln(0.75/0.5) = 0.25·ln 3.
    const e = [50, 50, 0, 0, 0, 0, 0, 0, 0, 0]
    const a = [25, 75, 0, 0, 0, 0, 0, 0, 0, 0]
    expect(psi(e, a)).toBeCloseTo(0.2746530721670274, 12)
    expect(psi(e, e)).toBe(0)
  })

  it('floors empty bins at 1e-4 so a new bin gives a finite, large index', () => {
    // Window mass moves entirely into a bin the baseline never saw.
    const v = psi([100, 0], [0, 100])!
    const expected = (1e-4 - 1) * Math.log(1e-4 / 1) + (1 - 1e-4) * Math.log(1 / 1e-4)
    expect(v).toBeCloseTo(expected, 9)
    expect(psi([0, 0], [1, 1])).toBeNull()
  })

  it('bins values as the agent does (bound[i-1] < x ≤ bound[i])', () => {
    expect(featureBin(-5000)).toBe(0)
    expect(featureBin(-1000)).toBe(0)
    expect(featureBin(0)).toBe(9)
    expect(featureBin(0.005)).toBe(10)
    expect(featureBin(1e9)).toBe(FEATURE_BUCKETS.length)
  })
})

describe('ingest, rollups, baselines and drift', () => {
  let store: HubStore
  let cleanup: () => void
  let now = T0
  const clock = () => now

  beforeEach(() => {
    const t = tempDir('ef-drift-')
    cleanup = t.cleanup
    store = HubStore.open(join(t.dir, 'hub.db'))
    store.devices.insert('d1', 'gateway-rpi4', {}, 'x', T0)
    store.devices.insert('d2', 'phone-android-arm64', {}, 'x', T0)
    now = T0
  })
  afterEach(() => {
    store.close()
    cleanup()
  })

  it('rolls up per profile and bucket; windows merge by adding counts [EF-9.2]', () => {
    store.telemetry.ingestMany([batch('d1', T0 + 10), batch('d1', T0 + MIN + 10), batch('d2', T0 + 20)], [], now)
    const w = store.telemetry.rollups.window('wake', '1.0.0', T0, T0 + 2 * MIN)
    expect(w.get('1.0.0\u0000gateway-rpi4')?.requests).toBe(200)
    expect(w.get('1.0.0\u0000phone-android-arm64')?.requests).toBe(100)
    expect(w.get('1.0.0\u0000*')?.requests).toBe(300)
    expect(store.telemetry.rollups.rows('wake', null, 0, T0 + 2 * MIN).map((r) => [r.profile, r.bucket])).toEqual([
      ['gateway-rpi4', T0],
      ['phone-android-arm64', T0],
      ['gateway-rpi4', T0 + MIN],
    ])
  })

  it('freezes a field baseline after the first window, then emits one drift event per rising subject [EF-9.4, EF-9.5]', () => {
    const drift = new DriftMonitor(
      { store, now: clock, log },
      {
        fieldWindowMs: 10 * MIN,
        baselineRequests: Number.POSITIVE_INFINITY, // the time rule alone; the count rule has its own test
        windowMs: 10 * MIN,
        minRequests: 200,
        minOutputCount: 100,
        minInputCount: 1000,
        intervalMs: 0,
      },
    )
    const calm = { confidence: [0, 0, 0, 0, 0, 0, 0, 10, 40, 50], features: sketch({ 9: 500, 10: 500 }) }
    const drifted = { confidence: [0, 0, 10, 40, 50, 0, 0, 0, 0, 0], features: sketch({ 14: 500, 15: 500 }) }
    // First 10 minutes in the field: calm traffic on both profiles.
    for (let m = 0; m < 10; m++)
      store.telemetry.ingestMany(
        [batch('d1', T0 + m * MIN + 5, calm), batch('d2', T0 + m * MIN + 7, calm)],
        [],
        T0 + m * MIN + 10,
      )
    now = T0 + 9 * MIN
    expect(drift.evaluate().events).toHaveLength(0)
    expect(store.telemetry.baselines.has('wake', '1.0.0', 'field')).toBe(false) // window not over yet
    now = T0 + 10 * MIN + 1
    const calmEval = drift.evaluate()
    expect(store.telemetry.baselines.effective('wake', '1.0.0', 'gateway-rpi4')).toMatchObject({
      source: 'field',
      profile: 'gateway-rpi4',
      requests: 1000,
    })
    expect(calmEval.events).toHaveLength(0)
    expect(calmEval.values.every((v) => v.psi !== null && v.psi < 0.01)).toBe(true)

    // Then d1's traffic shifts (inputs and confidence); d2's does not.
    for (let m = 10; m < 20; m++)
      store.telemetry.ingestMany(
        [batch('d1', T0 + m * MIN + 5, drifted), batch('d2', T0 + m * MIN + 7, calm)],
        [],
        T0 + m * MIN + 10,
      )
    now = T0 + 20 * MIN + 1
    const r = drift.evaluate()
    const subjects = r.events.map(
      (e) =>
        JSON.parse(e.line) as {
          kind: string
          profile: string
          subject: string
          psi: number
          baseline: { source: string }
        },
    )
    expect(subjects.map((s) => `${s.profile} ${s.subject}`).sort()).toEqual([
      'gateway-rpi4 input:x',
      'gateway-rpi4 output:confidence',
    ])
    expect(subjects.every((s) => s.kind === 'drift' && s.psi > 0.2 && s.baseline.source === 'field')).toBe(true)
    // The event's PSI is the PSI of the window's bins against the baseline's.
    const conf = subjects.find((s) => s.subject === 'output:confidence')!
    expect(conf.psi).toBeCloseTo(psi(calm.confidence, drifted.confidence)!, 9)

    // Still drifting at the next evaluation: no second event (hysteresis) …
    now += MIN
    expect(drift.evaluate().events).toHaveLength(0)
    expect(store.telemetry.baselines.listDrift({ model: 'wake' }).filter((d) => d.open)).toHaveLength(2)
    // … until it recovered below threshold/2 and drifted again.
    for (let m = 21; m < 31; m++)
      store.telemetry.ingestMany([batch('d1', T0 + m * MIN + 5, calm)], [], T0 + m * MIN + 10)
    now = T0 + 31 * MIN + 1
    expect(drift.evaluate().events).toHaveLength(0)
    expect(store.telemetry.baselines.listDrift({ model: 'wake' }).filter((d) => d.open)).toHaveLength(0)
    for (let m = 31; m < 41; m++)
      store.telemetry.ingestMany([batch('d1', T0 + m * MIN + 5, drifted)], [], T0 + m * MIN + 10)
    now = T0 + 41 * MIN + 1
    expect(drift.evaluate().events).toHaveLength(2)
  })

  it('measures nothing against a synthetic build baseline: "no baseline yet" until the field one is frozen [EF-9.4]', () => {
    store.telemetry.baselines.put({
      model: 'wake',
      version: '1.0.0',
      profile: '*',
      source: 'build',
      fromMs: null,
      toMs: null,
      requests: 1,
      confidence: [0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
      features: {},
      createdAt: T0,
    })
    const drift = new DriftMonitor(
      { store, now: clock, log },
      { fieldWindowMs: 60 * MIN, windowMs: 10 * MIN, intervalMs: 0, baselineRequests: 1000, minRequests: 200 },
    )
    store.telemetry.ingestMany([batch('d1', T0 + 5, { confidence: [100, 0, 0, 0, 0, 0, 0, 0, 0, 0] })], [], T0)
    now = T0 + MIN
    const r = drift.evaluate()
    expect(r.events).toHaveLength(0)
    expect(r.values[0]).toMatchObject({
      subject: 'output:confidence',
      baselineSource: null,
      psi: null,
      drifting: false,
    })
    expect(store.telemetry.baselines.listDrift({ model: 'wake' })[0]).toMatchObject({ psi: null, baselineSource: null })
  })

  it("freezes the version's first N requests as its baseline before the time window ends [EF-9.4]", () => {
    const drift = new DriftMonitor(
      { store, now: clock, log },
      { fieldWindowMs: 60 * MIN, windowMs: 10 * MIN, intervalMs: 0, baselineRequests: 500, minRequests: 200 },
    )
    const calm = { confidence: [0, 0, 0, 0, 0, 0, 0, 10, 40, 50], features: sketch({ 9: 500, 10: 500 }) }
    // 100 requests a minute: the 500th arrives in minute 4.
    for (let m = 0; m < 4; m++) store.telemetry.ingestMany([batch('d1', T0 + m * MIN + 5, calm)], [], T0 + m * MIN + 10)
    now = T0 + 4 * MIN
    expect(drift.evaluate().values.every((v) => v.psi === null && v.baselineSource === null)).toBe(true)
    expect(store.telemetry.baselines.has('wake', '1.0.0', 'field')).toBe(false)
    for (let m = 4; m < 7; m++) store.telemetry.ingestMany([batch('d1', T0 + m * MIN + 5, calm)], [], T0 + m * MIN + 10)
    now = T0 + 7 * MIN
    const evaluated = drift.evaluate()
    // Minutes 0-4 (500 requests) are the baseline, not the later ones; then PSI is measured against it.
    expect(store.telemetry.baselines.effective('wake', '1.0.0', 'gateway-rpi4')).toMatchObject({
      source: 'field',
      requests: 500,
      fromMs: T0,
      toMs: T0 + 4 * MIN + 1,
    })
    expect(evaluated.values.length).toBeGreaterThan(0)
    expect(evaluated.values.every((v) => v.baselineSource === 'field' && v.psi !== null && v.psi < 0.01)).toBe(true)
  })

  it('retention deletes raw rows, samples, feed records and rollups by age and raises the feed floor [EF-9.3]', () => {
    const DAY = 24 * 60 * MIN
    store.telemetry.ingestMany(
      [batch('d1', T0 + 5)],
      [
        {
          sample: sample('d1', 'sample-old1', T0),
          bytes: 10,
          payload: JSON.stringify(sample('d1', 'sample-old1', T0)),
        },
      ],
      T0,
    )
    store.telemetry.ingestMany(
      [batch('d1', T0 + 20 * DAY)],
      [
        {
          sample: sample('d1', 'sample-new1', T0 + 20 * DAY),
          bytes: 10,
          payload: JSON.stringify(sample('d1', 'sample-new1', T0 + 20 * DAY)),
        },
      ],
      T0 + 20 * DAY,
    )
    now = T0 + 35 * DAY
    const r = new Retention(
      { store, now: clock, log },
      { rawDays: 7, sampleDays: 30, feedDays: 30, rollupDays: 31 },
    ).run()
    expect(r).toMatchObject({ telemetry: 2, samples: 1, feed: 1, rollups: 1, batches: 1 })
    const floor = store.telemetry.feed.floor()
    expect(floor).toBe(1)
    expect(() => store.telemetry.feed.page({ since: 0, limit: 10 })).toThrow(
      expect.objectContaining({ code: 'EF_ERR_FEED_CURSOR_EXPIRED' }),
    )
    expect(store.telemetry.feed.page({ limit: 10 }).map((l) => l.cursor)).toEqual([2])
    expect(store.telemetry.feed.page({ since: floor, limit: 10 }).map((l) => l.cursor)).toEqual([2])
    // The surviving batch id still dedupes a late resend (batch ids live as long as rollups).
    expect(store.telemetry.countRows().batches).toBe(1)
  })

  it('retention expires device events by age and keeps at most eventMaxRows, newest first [EF-9.3]', () => {
    const DAY = 24 * 60 * MIN
    const event = (i: number, at: number) =>
      store.deployments.insertEvent({ v: 1, deviceId: 'd1', ts: at, kind: 'received', message: `e${i}` }, at)
    for (let i = 0; i < 5; i++) event(i, T0) // old
    for (let i = 5; i < 15; i++) event(i, T0 + 80 * DAY + i) // recent
    now = T0 + 100 * DAY
    const retention = (o: Partial<RetentionOptions>) =>
      new Retention({ store, now: clock, log }, { eventDays: 90, sliceRows: 3, ...o })
    expect(retention({}).run().events).toBe(5) // older than 90 days, in slices of 3
    const left = () => store.deployments.eventsForDevice('d1', 100).map((e) => e.message)
    expect(left()).toHaveLength(10)
    expect(retention({ eventMaxRows: 4 }).run().events).toBe(6)
    expect(left()).toEqual(['e14', 'e13', 'e12', 'e11'])
    expect(() => retention({ eventMaxRows: 0 })).toThrow(expect.objectContaining({ code: 'EF_ERR_CONFIG_INVALID' }))
  })
})
