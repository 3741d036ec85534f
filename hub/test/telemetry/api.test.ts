// The retraining routes against a real in-process hub: intake lineage and
// parent checks [EF-9.11], posted baselines [EF-9.4], drift on demand
// [EF-9.5], shadow disagreements in the feed [EF-9.6] and the status summary.
import { readFileSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CONFIDENCE_BUCKETS, FEATURE_BUCKETS, LATENCY_BUCKETS_MS, type TelemetryBatch } from '@edgefleet/shared'
import { MODELS, provision, startTestHub, type TestHub } from '../fixtures/hub.js'

let testHub: TestHub
const inject = (method: 'GET' | 'POST' | 'PUT', url: string, payload?: unknown) =>
  testHub.hub.api.inject({
    method,
    url,
    ...(payload === undefined ? {} : { payload: payload as Record<string, unknown> }),
  })
const addModel = (q: Record<string, string>) =>
  testHub.hub.api.inject({
    method: 'POST',
    url: `/api/v1/models?${new URLSearchParams(q)}`,
    payload: readFileSync(MODELS.hello),
    headers: { 'content-type': 'application/octet-stream' },
  })

beforeAll(async () => {
  testHub = await startTestHub()
  await provision(testHub.hub, 'gw-1', 'gateway-rpi4')
})
afterAll(async () => testHub?.close())

describe('retraining routes', () => {
  it('keeps lineage, refuses a bad parent, records a build baseline [EF-9.4, EF-9.11]', async () => {
    const v1 = await addModel({
      name: 'wake',
      version: '1.0.0',
      options: JSON.stringify({ precision: 'fp32', outputs: { '39': 'probability' } }),
    })
    expect(v1.statusCode, v1.body).toBe(201)
    expect(v1.json()).toMatchObject({ intake: { rollout: null, skipped: null } })
    for (const parent of ['wake', 'wake@x', 'wake@2.0.0', 'other@1.0.0']) {
      const r = await addModel({ name: 'wake', version: '1.1.0', parent })
      expect(r.statusCode, parent).toBe(400)
      expect(r.json()).toMatchObject({ error: { code: 'EF_ERR_PARENT_INVALID' } })
    }
    // Canary policy with no device serving the model yet: taken in and built, no rollout, and the answer says why.
    const v11 = await addModel({
      name: 'wake',
      version: '1.1.0',
      parent: 'wake@1.0.0',
      runId: 'run-42',
      policy: 'canary',
      options: JSON.stringify({ precision: 'fp32' }),
    })
    expect(v11.statusCode, v11.body).toBe(201)
    expect(v11.json()).toMatchObject({
      version: { parent: 'wake@1.0.0', runId: 'run-42' },
      intake: { rollout: null, skipped: expect.stringContaining('no device serves wake') },
    })
    const lin = (await inject('GET', '/api/v1/models/wake/lineage')).json<{
      items: {
        version: string
        parent: string | null
        runId: string | null
        builds: { status: string }[]
        baselines: { source: string }[]
      }[]
    }>()
    expect(lin.items.map((v) => [v.version, v.parent, v.runId])).toEqual([
      ['1.0.0', null, null],
      ['1.1.0', 'wake@1.0.0', 'run-42'],
    ])
    expect(lin.items[0].builds.map((b) => b.status)).toEqual(['ok'])
    expect(lin.items[0].baselines).toEqual([{ profile: '*', source: 'build', requests: 1 }])
    expect((await inject('GET', '/api/v1/models/nope/lineage')).statusCode).toBe(404)
  })

  it('takes a pipeline baseline and refuses one that does not fit the model [EF-9.4]', async () => {
    const url = '/api/v1/models/wake/versions/1.0.0/baseline'
    // Only the build's health-check baseline so far: nothing is measured against it [EF-9.4].
    expect((await inject('GET', url)).json()).toMatchObject({ status: 'no_baseline_yet', items: [{ source: 'build' }] })
    const bad = [
      { features: { nope: new Array(FEATURE_BUCKETS.length + 1).fill(1) } },
      { features: { 'onnx::Flatten_0': [1, 2, 3] } },
      { confidence: [1, 2, 3] },
      {},
    ]
    for (const body of bad) {
      const r = await inject('PUT', url, body)
      expect(r.statusCode, JSON.stringify(body)).toBe(400)
      expect(r.json()).toMatchObject({ error: { code: 'EF_ERR_BASELINE_INVALID' } })
    }
    const ok = await inject('PUT', url, {
      profile: 'gateway-rpi4',
      confidence: new Array(CONFIDENCE_BUCKETS.length).fill(10),
      features: { 'onnx::Flatten_0': new Array(FEATURE_BUCKETS.length + 1).fill(5) },
    })
    expect(ok.statusCode, ok.body).toBe(200)
    expect(ok.json()).toMatchObject({ baseline: { source: 'api', profile: 'gateway-rpi4', requests: 100 } })
    expect(testHub.hub.store.telemetry.baselines.effective('wake', '1.0.0', 'gateway-rpi4')?.source).toBe('api')
    expect(testHub.hub.store.telemetry.baselines.effective('wake', '1.0.0', 'phone-android-arm64')?.source).toBe(
      'build',
    )
  })

  it('evaluates drift on demand against the pipeline baseline and lists shadow disagreements in the feed [EF-9.5, EF-9.6]', async () => {
    const latency = new Array(LATENCY_BUCKETS_MS.length + 1).fill(0)
    latency[3] = 200
    const batch: TelemetryBatch = {
      v: 1,
      deviceId: 'gw-1',
      batchId: 'batch-api-0001',
      from: Date.now() - 1000,
      to: Date.now(),
      models: [
        {
          model: 'wake',
          version: '1.0.0',
          requests: 200,
          errors: 0,
          latency,
          latencySumMs: 60,
          confidence: [200, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        },
      ],
      shadow: [
        {
          model: 'wake',
          version: '1.0.0',
          candidate: '1.1.0',
          runs: 10,
          skipped: 0,
          errors: 0,
          top1Agree: 7,
          maxAbsDiff: 0.4,
          cosineSum: 9.5,
          latency,
          latencySumMs: 3,
        },
      ],
    }
    testHub.hub.retraining.ingest.pushTelemetry(batch, 1000)
    await testHub.hub.retraining.ingest.flush()
    const ev = await inject('POST', '/api/v1/drift/evaluate')
    expect(ev.statusCode, ev.body).toBe(200)
    expect(ev.json<{ events: number[] }>().events).toHaveLength(1)
    const drift = (await inject('GET', '/api/v1/drift?model=wake')).json<{
      items: { subject: string; profile: string; open: boolean; baselineSource: string; psi: number }[]
    }>()
    expect(drift.items).toEqual([
      expect.objectContaining({
        subject: 'output:confidence',
        profile: 'gateway-rpi4',
        open: true,
        baselineSource: 'api',
        status: 'drifting',
      }),
    ])
    expect((await inject('GET', '/api/v1/models/wake/versions/1.0.0/baseline')).json()).toMatchObject({
      status: 'ready',
    })
    const feed = (await inject('GET', '/api/v1/feed?model=wake')).body
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>)
    expect(feed.map((r) => r.kind)).toEqual(['shadow_disagreement', 'drift'])
    expect(feed[0]).toMatchObject({ deviceId: 'gw-1', candidate: '1.1.0', runs: 10, top1Agree: 7, meanCosine: 0.95 })
    const status = (await inject('GET', '/api/v1/retraining/status')).json<{
      feed: { last: number; byKind: Record<string, number> }
      drift: { open: unknown[] }
    }>()
    expect(status.feed.byKind).toMatchObject({ shadow_disagreement: 1, drift: 1, sample: 0, label: 0 })
    expect(status.drift.open).toHaveLength(1)
    expect((await inject('GET', '/api/v1/rollups?model=wake')).json()).toMatchObject({
      items: [expect.objectContaining({ profile: 'gateway-rpi4', requests: 200, batches: 1 })],
    })
    expect((await inject('GET', '/api/v1/feed?since=-1')).statusCode).toBe(400)
  })
})
