// Property-based fuzzing of every topic the hub reads [EF-2.8]: arbitrary
// topics and payloads (random bytes, broken JSON, structurally valid messages
// with hostile field values) go through the real dispatcher, the real ingestor
// (writer thread, SQLite file) and the real distributor of a started hub.
// Properties: nothing throws out of dispatch, `done` runs exactly once and in
// time, a refusal is counted under a catalogue code (never EF_ERR_INTERNAL),
// no ingest transaction fails (a hostile record would roll back its
// neighbours), and the hub keeps answering.
import { readFileSync } from 'node:fs'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { LATENCY_BUCKETS_MS, isErrorCode, topics } from '@edgefleet/shared'
import { dispatch, type HandlerContext } from '../../src/mqtt/dispatch.js'
import { MODELS, markSent, provision, startTestHub, type TestHub } from '../fixtures/hub.js'
import { anyTopic, DEVICE, hubContext, knownArtifacts, structured } from '../fixtures/fuzz-messages.js'
import { deadline, fuzzParams, junkPayload } from '../../../test/support/fuzz.mjs'

const junk = fc.record({ topic: anyTopic, payload: junkPayload })

describe('fuzz: every topic the hub reads', () => {
  let testHub: TestHub
  let ctx: HandlerContext
  let failure: unknown

  beforeAll(async () => {
    testHub = await startTestHub()
    await provision(testHub.hub, DEVICE)
    // A built artifact, so that fetches (join, repair, ack) reach the distributor's real chunk layout.
    const added = await testHub.hub.registry.add({
      name: 'wake',
      version: '1.0.0',
      bytes: readFileSync(MODELS.hello),
      options: { precision: 'fp32' },
    })
    knownArtifacts.push(...added.builds.flatMap((b) => (b.artifact ? [b.artifact] : [])))
    expect(knownArtifacts.length).toBe(1)
    await provision(testHub.hub, 'dev-2', 'industrial-x86')
    // Telemetry is accepted only for versions the hub sent the device [EF-2.6.8].
    for (const dev of [DEVICE, 'dev-2'])
      for (const model of ['wake', 'm', 'big']) markSent(testHub.hub, dev, model, '1')
    ctx = hubContext(testHub.hub, (err) => (failure ??= err))
  })
  afterAll(async () => {
    await testHub?.close()
  })

  /** Dispatches one message and waits for its `done`: never a throw, exactly one call, a coded error if any. */
  async function deliver(topic: string, payload: Buffer): Promise<void> {
    let calls = 0
    let doneErr: Error | undefined
    const settled = new Promise<void>((resolve) => {
      dispatch(ctx, topic, payload, (err) => {
        calls++
        doneErr = err
        resolve()
      })
    })
    await deadline(settled, 5000, `done for ${topic}`)
    await new Promise((r) => setImmediate(r)) // a second call would land here
    expect(calls).toBe(1)
    if (doneErr) expect(isErrorCode((doneErr as { code?: unknown }).code), doneErr.message).toBe(true)
    expect(ctx.metrics.dropped.EF_ERR_INTERNAL ?? 0).toBe(0)
    expect(failure).toBeUndefined()
  }

  it('random topics and junk payloads are dropped with a code, never thrown', async () => {
    await fc.assert(
      fc.asyncProperty(junk, ({ topic, payload }) => deliver(topic, payload)),
      fuzzParams('dispatch junk', 400),
    )
    expect(ctx.metrics.messagesIn).toBeGreaterThan(0)
  })

  it('schema-shaped messages with hostile values are stored or refused with a code', async () => {
    await fc.assert(
      fc.asyncProperty(structured, ({ topic, payload }) => deliver(topic, payload)),
      fuzzParams('dispatch structured', 600),
    )
    // Some cases must have got through validation, or the property tested only the schema.
    const stats = testHub.hub.retraining.ingest.stats
    expect(stats.batches + stats.samples).toBeGreaterThan(15)
    expect(stats.failedFlushes).toBe(0)
    // Fetches for the real artifact reached the distributor and it sent chunks.
    const dist = testHub.hub.distributor.stats
    expect(dist.broadcastChunks + dist.repairChunks).toBeGreaterThan(0)
    console.log('[fuzz] dispatch drops by code', JSON.stringify(ctx.metrics.dropped), JSON.stringify(stats))
  })

  // Found by the .npy write-read property: the schema let a sample's dims and data disagree, the hub stored it,
  // and its .npy files (and the model's dataset export) then failed [EF-2.9.4].
  it.each([
    ['dims of 1e21 next to a 0', { type: 'float32', dims: [0, 1e21], b64: '' }],
    ['data shorter than its dims', { type: 'float32', dims: [2, 2], data: [1, 2, 3] }],
    ['b64 longer than its dims', { type: 'int16', dims: [1], b64: 'AAAAAA==' }],
    ['a word among float data', { type: 'float32', dims: [1], data: ['x'] }],
  ])('a sample with %s → EF_ERR_MSG_SCHEMA, not stored', async (_what, tensor) => {
    const before = testHub.hub.retraining.ingest.stats.samples
    const dropped = ctx.metrics.dropped.EF_ERR_MSG_SCHEMA ?? 0
    const sample = {
      v: 1,
      deviceId: DEVICE,
      sampleId: `bad-${Math.random()}`,
      ts: 1,
      model: 'm',
      version: '1',
      reason: 'random',
    }
    await deliver(
      topics.samples(DEVICE),
      Buffer.from(JSON.stringify({ ...sample, inputs: { x: tensor }, outputs: {} })),
    )
    expect(ctx.metrics.dropped.EF_ERR_MSG_SCHEMA).toBe(dropped + 1)
    expect(testHub.hub.retraining.ingest.stats.samples).toBe(before)
  })

  // Found by the long run (test/bench/fuzz.mjs): counts near 1e308 passed the schema, two of them summed to
  // Infinity and GET /api/v1/telemetry/summary answered 500 [EF-2.6.9].
  it('telemetry counts past 2^53 → EF_ERR_MSG_SCHEMA; at 2^53 − 1 the summary still serializes', async () => {
    const batch = (requests: number, bin: number) => ({
      v: 1,
      deviceId: DEVICE,
      batchId: `big-${Math.random()}`,
      from: 1,
      to: 2,
      models: [
        {
          model: 'big',
          version: '1',
          requests,
          errors: 0,
          latency: LATENCY_BUCKETS_MS.map(() => bin).concat([bin]),
          latencySumMs: requests,
        },
      ],
    })
    const dropped = ctx.metrics.dropped.EF_ERR_MSG_SCHEMA ?? 0
    await deliver(topics.telemetry(DEVICE), Buffer.from(JSON.stringify(batch(Number.MAX_VALUE, Number.MAX_VALUE))))
    expect(ctx.metrics.dropped.EF_ERR_MSG_SCHEMA).toBe(dropped + 1)
    for (let i = 0; i < 2; i++)
      await deliver(
        topics.telemetry(DEVICE),
        Buffer.from(JSON.stringify(batch(Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER))),
      )
    const res = await testHub.hub.api.inject({ method: 'GET', url: '/api/v1/telemetry/summary?model=big' })
    expect(res.statusCode, res.body).toBe(200)
    const item = res.json<{ items: { requests: number; p50Ms: number | null }[] }>().items[0]
    expect(Number.isFinite(item.requests) && Number.isFinite(item.p50Ms)).toBe(true)
  })

  it('the hub still answers and its store still reads after all of that', async () => {
    const res = await testHub.hub.api.inject({ method: 'GET', url: '/healthz' })
    expect(res.statusCode).toBe(200)
    expect(testHub.hub.store.devices.get(DEVICE)).toBeDefined()
    const list = await testHub.hub.api.inject({ method: 'GET', url: '/api/v1/devices' })
    expect(list.statusCode).toBe(200)
  })
})
