// Shadow runs never delay live responses [EF-7.2]: with a candidate that takes
// hundreds of milliseconds per run and a shadow fraction of 1, every live HTTP
// response still comes back in a few milliseconds; sampled requests that find
// the candidate busy are counted as skipped, and comparisons reach telemetry.
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { once } from 'node:events'
import type { Server } from 'node:http'
import { ModelHost } from '../src/runtime/host.js'
import { ShadowRunner } from '../src/shadow/runner.js'
import { Aggregator } from '../src/telemetry/aggregator.js'
import { createApiServer } from '../src/api/server.js'
import { compareOutputs, confidenceOf } from '../src/runtime/outputs.js'
import { slowModel } from './fixtures/slow-model.js'
import { WAKE, stubManifest, wakeTensor } from './fixtures/runtime.js'

const body = JSON.stringify({
  inputs: { 'onnx::Flatten_0': { type: 'float32', dims: [1, 25, 96], data: Array.from(wakeTensor(3).data) } },
})

async function timedPost(url: string): Promise<number> {
  const t0 = performance.now()
  const r = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body })
  await r.json()
  expect(r.status).toBe(200)
  return performance.now() - t0
}

const percentile = (xs: number[], q: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))]

describe('shadow runs (champion/challenger)', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'ef-shadow-'))
  const host = new ModelHost({ threads: 1, executionProviders: ['cpu'] })
  const agg = new Aggregator('dev-1')
  const runner = new ShadowRunner({ agg })
  let server: Server
  let url: string

  beforeAll(async () => {
    host.activate(stubManifest('wake', '1.0.0'), 'a', await host.open(WAKE))
    host.onResult((rec) => runner.observe(rec))
    server = createApiServer({ host, maxBodyBytes: 1 << 20, deviceId: 'dev-1' })
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    url = `http://127.0.0.1:${(server.address() as { port: number }).port}/v1/models/wake/infer`
    for (let i = 0; i < 20; i++) await timedPost(url) // warm up
  })

  afterAll(async () => {
    await runner.close()
    await new Promise((r) => server.close(r))
    await host.close()
    rmSync(tmp, { recursive: true, force: true })
  })

  it('a slow candidate never delays the live response', async () => {
    const base: number[] = []
    for (let i = 0; i < 40; i++) base.push(await timedPost(url))

    const slow = slowModel(join(tmp, 'slow.onnx'), { rows: 2048, layers: 40 })
    await runner.start({ manifest: stubManifest('wake', '2.0.0'), manifestSig: 'x', path: slow, fraction: 1 })
    const t0 = performance.now()
    await runner.runOnce('wake', { 'onnx::Flatten_0': wakeTensor(1) })
    const shadowMs = performance.now() - t0
    expect(shadowMs, 'the candidate must be slow for this test to mean anything').toBeGreaterThan(60)

    const live: number[] = []
    for (let i = 0; i < 60; i++) live.push(await timedPost(url))
    await runner.idle()
    const batch = agg.cut()!
    const s = batch.shadow!.find((x) => x.candidate === '2.0.0')!
    // Every request was sampled (fraction 1): most found the candidate busy and were skipped, not queued.
    expect(s.runs + s.skipped + s.errors).toBe(60)
    expect(s.runs).toBeGreaterThan(0)
    expect(s.skipped).toBeGreaterThan(0)
    expect(s.latencySumMs / s.runs).toBeGreaterThan(shadowMs / 3)
    // The live path: no response waited for a shadow run.
    const maxLive = Math.max(...live)
    expect(
      maxLive,
      `live max ${maxLive.toFixed(2)} ms vs shadow run ${shadowMs.toFixed(0)} ms; live p50 ${percentile(live, 0.5).toFixed(2)} (no shadow ${percentile(base, 0.5).toFixed(2)})`,
    ).toBeLessThan(shadowMs / 2)
    expect(percentile(live, 0.5)).toBeLessThan(percentile(base, 0.5) * 3 + 2)
    await runner.stop('wake')
  })

  it('compares a real candidate: identical model agrees fully, another head differs', async () => {
    await runner.start({ manifest: stubManifest('wake', '1.0.1'), manifestSig: 'x', path: WAKE, fraction: 1 })
    for (let i = 0; i < 10; i++) {
      await host.infer('wake', { 'onnx::Flatten_0': wakeTensor(10 + i) })
      await runner.idle()
    }
    const same = agg.cut()!.shadow!.find((x) => x.candidate === '1.0.1')!
    expect(same).toMatchObject({ runs: 10, skipped: 0, errors: 0, top1Agree: 10, maxAbsDiff: 0 })
    expect(same.cosineSum).toBeCloseTo(10, 5)
    await runner.stop('wake')

    // Another model with the same interface: outputs differ.
    const live = await host.infer('wake', { 'onnx::Flatten_0': wakeTensor(5) })
    await runner.start({
      manifest: stubManifest('wake', '1.0.2'),
      manifestSig: 'x',
      path: slowModel(join(tmp, 'other.onnx'), { rows: 4, layers: 2 }),
      fraction: 1,
    })
    const cand = await runner.runOnce('wake', { 'onnx::Flatten_0': wakeTensor(5) })
    const cmp = compareOutputs(stubManifest('wake', '1.0.0'), live.outputs, cand)
    expect(cmp.maxAbsDiff).toBeGreaterThan(0)
    expect(confidenceOf(stubManifest('wake', '1.0.0'), live.outputs)).toBeGreaterThanOrEqual(0)
    await runner.stop('wake')
  })
})
