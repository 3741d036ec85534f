// The retraining feed against a real hub (embedded aedes, SQLite, fastify):
// samples arrive over MQTT once however often they are sent; resuming by
// cursor while records are being written never skips or repeats one
// [EF-9.6]; sample tensors as .npy [EF-9.8]; labels [EF-9.10]; the live
// feed over MQTT and HTTP follow [EF-9.7]; the export read by NumPy [EF-9.9].
import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { get as httpGet, type IncomingMessage } from 'node:http'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import mqtt from 'mqtt'
import { encodeTensor, topics, type Sample } from '@edgefleet/shared'
import { issueToken } from '../../src/api/auth.js'
import { FEED_USERNAME } from '../../src/broker/embedded.js'
import { exportDataset } from '../../src/feed/export.js'
import { connectDevice, provision, startTestHub, tempDir, waitFor, type TestHub } from '../fixtures/hub.js'

/** The reference Python with NumPy (see scripts/bootstrap.sh --test-deps). */
const PY = [process.env.EF_PYREF, join(process.cwd(), '.venv-ref/bin/python'), '/work/pyref/bin/python'].find(
  (p) => p && existsSync(p),
)
const hasNumpy = (() => {
  if (!PY) return false
  try {
    execFileSync(PY, ['-c', 'import numpy'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
})()

let testHub: TestHub
let device: mqtt.MqttClient
const DEVICE = 'cam-1'

function sample(index: number): Sample {
  const input = new Float32Array(6).map((_, k) => index + k / 10)
  return {
    v: 1,
    deviceId: DEVICE,
    sampleId: `sample-${String(index).padStart(5, '0')}`,
    ts: 1_700_000_000_000 + index,
    model: 'wake',
    version: '1.0.0',
    reason: index % 2 ? 'low_confidence' : 'random',
    confidence: 0.3,
    inputs: { 'onnx::Flatten_0': encodeTensor('float32', [1, 2, 3], input, true) },
    outputs: {
      probs: { type: 'float32', dims: [1, 2], data: [0.25, 0.75] },
      cls: encodeTensor('int64', [1], new BigInt64Array([BigInt(index)]), true),
    },
  }
}

const get = async (url: string) => {
  const r = await testHub.hub.api.inject({ method: 'GET', url })
  return { status: r.statusCode, body: r.body, json: () => r.json<Record<string, unknown>>(), raw: r.rawPayload }
}
const feedCursors = (body: string) =>
  body
    .split('\n')
    .filter(Boolean)
    .map((l) => (JSON.parse(l) as { cursor: number }).cursor)

beforeAll(async () => {
  testHub = await startTestHub()
  const secret = await provision(testHub.hub, DEVICE, 'gateway-rpi4')
  device = await connectDevice(testHub.hub.mqttUrl, DEVICE, secret)
})
afterAll(async () => {
  await device?.endAsync()
  await testHub?.close()
})

describe('retraining feed', () => {
  it('stores a sample sent twice over MQTT once, with one feed record [EF-2.9.1, EF-9.1]', async () => {
    const s = JSON.stringify(sample(0))
    await device.publishAsync(topics.samples(DEVICE), s, { qos: 1 })
    await device.publishAsync(topics.samples(DEVICE), s, { qos: 1 })
    await waitFor(
      () => testHub.hub.retraining.ingest.stats.samples + testHub.hub.retraining.ingest.stats.duplicateSamples >= 2,
      5000,
      'both deliveries',
    )
    expect(testHub.hub.store.telemetry.feed.count({ kind: 'sample' })).toBe(1)
    const r = await get('/api/v1/feed?model=wake')
    expect(r.status).toBe(200)
    const [rec] = r.body
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>)
    expect(rec).toMatchObject({
      kind: 'sample',
      model: 'wake',
      version: '1.0.0',
      deviceId: DEVICE,
      sampleId: 'sample-00000',
      inputs: { 'onnx::Flatten_0': { type: 'float32', dims: [1, 2, 3] } },
      url: `/api/v1/samples/${DEVICE}/sample-00000`,
    })
  })

  it('resuming by cursor while records are written never skips or repeats one [EF-9.6]', async () => {
    // Writers: samples over MQTT and labels over HTTP, interleaved with a reader that pages with small, varying limits.
    const seen: number[] = []
    let since = 0
    let writing = true
    const writer = (async () => {
      for (let index = 1; index <= 150; index++) {
        device.publish(topics.samples(DEVICE), JSON.stringify(sample(index)), { qos: 1 })
        const labelled = `sample-${String(index - 5).padStart(5, '0')}`
        if (index % 10 === 0)
          await waitFor(
            () => testHub.hub.store.telemetry.samples.payloadText(DEVICE, labelled) !== undefined,
            5000,
            labelled,
          )
        if (index % 10 === 0)
          await testHub.hub.api
            .inject({
              method: 'POST',
              url: '/api/v1/labels',
              payload: {
                deviceId: DEVICE,
                sampleId: `sample-${String(index - 5).padStart(5, '0')}`,
                label: { cls: index % 3 },
                source: 'test-app',
              },
            })
            .then((r) => expect(r.statusCode, r.body).toBe(201))
        if (index % 7 === 0) await new Promise((r) => setTimeout(r, 3))
      }
      await waitFor(() => testHub.hub.store.telemetry.feed.count({ kind: 'sample' }) === 151, 10_000, 'all samples')
    })().finally(() => (writing = false))
    let limit = 1
    while (writing || since < testHub.hub.store.telemetry.feed.last()) {
      const r = await get(`/api/v1/feed?since=${since}&limit=${limit}`)
      expect(r.status).toBe(200)
      const cursors = feedCursors(r.body)
      seen.push(...cursors)
      if (cursors.length) since = cursors[cursors.length - 1]
      limit = (limit % 7) + 1
      await new Promise((r) => setTimeout(r, 1))
    }
    await writer
    const all = feedCursors((await get('/api/v1/feed?limit=100000')).body)
    expect(seen).toEqual(all)
    expect(new Set(seen).size).toBe(seen.length)
    expect(all.length).toBe(151 + 15)
    expect(all).toEqual([...all].sort((a, b) => a - b))
  })

  it('serves a sample as sent and each tensor as .npy [EF-9.8]', async () => {
    const r = await get(`/api/v1/samples/${DEVICE}/sample-00003`)
    expect(r.status).toBe(200)
    expect(r.json()).toEqual(sample(3))
    const npy = await get(`/api/v1/samples/${DEVICE}/sample-00003/tensors/inputs/onnx::Flatten_0.npy`)
    expect(npy.status).toBe(200)
    const b = npy.raw
    expect(b.subarray(0, 6).toString('latin1')).toBe('\x93NUMPY')
    const hlen = b.readUInt16LE(8)
    expect((10 + hlen) % 64).toBe(0)
    expect(b.subarray(10, 10 + hlen).toString('latin1')).toContain(
      "'descr': '<f4', 'fortran_order': False, 'shape': (1, 2, 3)",
    )
    expect(Array.from(new Float32Array(b.buffer.slice(b.byteOffset + 10 + hlen, b.byteOffset + b.length)))).toEqual(
      Array.from(new Float32Array(6).map((_, k) => 3 + k / 10)),
    )
    const missing = await get(`/api/v1/samples/${DEVICE}/sample-00003/tensors/outputs/nope.npy`)
    expect(missing.status).toBe(404)
    expect(missing.json()).toMatchObject({ error: { code: 'EF_ERR_SAMPLE_NOT_FOUND' } })
    expect((await get(`/api/v1/samples/${DEVICE}/sample-99999`)).status).toBe(404)
  })

  it('refuses a label for an unknown sample [EF-9.10]', async () => {
    const r = await testHub.hub.api.inject({
      method: 'POST',
      url: '/api/v1/labels',
      payload: { deviceId: DEVICE, sampleId: 'sample-nope1', label: 1, source: 'x' },
    })
    expect(r.statusCode).toBe(404)
    expect(r.json()).toMatchObject({ error: { code: 'EF_ERR_SAMPLE_NOT_FOUND' } })
  })

  it('publishes new records live to an authenticated feed consumer and wakes HTTP followers [EF-9.7]', async () => {
    const { id, token } = issueToken(testHub.hub.store, 'trainer', 'viewer', Date.now())
    // A wrong token is refused; a right one may subscribe to feed topics only.
    await expect(connectAs('wrong-token', id)).rejects.toThrow()
    const consumer = await connectAs(token, id)
    expect((await consumer.subscribeAsync(topics.feeds(), { qos: 1 })).map((g) => g.qos)).toEqual([1])
    await expect(consumer.subscribeAsync(topics.telemetry(DEVICE), { qos: 1 })).rejects.toThrow() // SUBACK 0x80: only feed topics
    const live: { cursor: number; sampleId?: string }[] = []
    consumer.on('message', (_topic, p) => live.push(JSON.parse(p.toString()) as { cursor: number; sampleId?: string }))

    const last = testHub.hub.store.telemetry.feed.last()
    // node:http without keep-alive: undici's fetch leaves a spare idle socket the server then waits on at close.
    const req = httpGet(`${testHub.hub.httpUrl}/api/v1/feed?model=wake&since=${last}&follow=true`, { agent: false })
    const res = await new Promise<IncomingMessage>((resolve, reject) =>
      req.once('response', resolve).once('error', reject),
    )
    expect(res.headers['content-type']).toContain('application/x-ndjson')
    const chunks = res[Symbol.asyncIterator]()
    const next = async () =>
      JSON.parse(
        String((await chunks.next()).value)
          .trim()
          .split('\n')[0],
      ) as { kind: string; cursor: number; sampleId?: string }
    expect(await next()).toEqual({ kind: 'heartbeat', cursor: last })
    await device.publishAsync(topics.samples(DEVICE), JSON.stringify(sample(500)), { qos: 1 })
    expect(await next()).toMatchObject({ cursor: last + 1, sampleId: 'sample-00500' })
    req.destroy()
    await waitFor(() => live.some((l) => l.sampleId === 'sample-00500'), 5000, 'the live record')
    expect(live.find((l) => l.sampleId === 'sample-00500')!.cursor).toBe(last + 1)
    await consumer.endAsync()
  })

  it.skipIf(!hasNumpy)(
    `exports a dataset NumPy reads directly [EF-9.9] (python: ${PY ?? 'none'}${hasNumpy ? '' : ', numpy missing: skipped'})`,
    async () => {
      const { dir, cleanup } = tempDir('ef-export-')
      try {
        const out = join(dir, 'dataset.tar')
        const src = { text: async (path: string) => (await get(path)).body }
        const result = await exportDataset(src, { model: 'wake', out, pageSize: 40 })
        expect(result.samples).toBe(152)
        expect(result.records).toBe(152 + 15)
        const check = `
import json, sys
sys.path.insert(0, ${JSON.stringify(join(process.cwd(), 'docs/examples'))})
import numpy as np
from read_dataset import load  # the example shown in docs/RETRAINING.md
recs, tensors = load(sys.argv[1])
assert len(recs) == ${result.records}, len(recs)
s3 = next(r for r in recs if r.get("sampleId") == "sample-00003")
x = tensors[s3["files"]["inputs"]["onnx::Flatten_0"]]
assert x.dtype == np.float32 and x.shape == (1, 2, 3), (x.dtype, x.shape)
assert np.allclose(x.ravel(), [3 + k / 10 for k in range(6)])
c = tensors[s3["files"]["outputs"]["cls"]]
assert c.dtype == np.int64 and c.tolist() == [3], c
labels = [r for r in recs if r["kind"] == "label"]
print(json.dumps({"records": len(recs), "labels": len(labels), "samples": sum(1 for r in recs if r["kind"] == "sample"), "last": recs[-1]["cursor"]}))
`
        const res = JSON.parse(execFileSync(PY!, ['-c', check, out], { encoding: 'utf8' })) as {
          records: number
          labels: number
          samples: number
          last: number
        }
        expect(res).toEqual({ records: result.records, labels: 15, samples: 152, last: result.last })
        // Resuming after the last cursor exports nothing new.
        const again = await exportDataset(src, { model: 'wake', since: result.last, out: join(dir, 'next.tar') })
        expect(again).toMatchObject({ records: 0, last: result.last })
      } finally {
        cleanup()
      }
    },
  )
})

function connectAs(token: string, tokenId: string): Promise<mqtt.MqttClient> {
  return new Promise((resolve, reject) => {
    const client = mqtt.connect(testHub.hub.mqttUrl, {
      // A feed consumer's client id is bound to its token [EF-1.3.4].
      clientId: `$feed-${tokenId}-trainer-${Math.random().toString(36).slice(2)}`,
      username: FEED_USERNAME,
      password: token,
      reconnectPeriod: 0,
      connectTimeout: 5000,
    })
    client.once('connect', () => resolve(client))
    client.once('error', (e) => {
      client.end(true)
      reject(e)
    })
  })
}
