// The host tells who listens which provider a model version runs on [EF-5.7]:
// a fallback observer on activation (the agent turns it into a
// provider_fallback event) and the provider on every request's record (the
// telemetry batch carries it).
import { describe, expect, it } from 'vitest'
import { telemetryCodec, type Manifest } from '@edgefleet/shared'
import { ModelHost } from '../../src/runtime/host.js'
import { Aggregator } from '../../src/telemetry/aggregator.js'
import { WAKE, stubManifest, wakeTensor } from '../fixtures/runtime.js'

async function serve(host: ModelHost, agg: Aggregator) {
  const seen: { manifest: Manifest; provider: string; providers: string[]; reasons: string[] }[] = []
  host.onFallback((manifest, provider, fallbacks) =>
    seen.push({
      manifest,
      provider,
      providers: fallbacks.map((f) => f.provider),
      reasons: fallbacks.map((f) => f.reason),
    }),
  )
  host.onInfer((m, v, ms, ok, provider) => agg.record(m, v, ms, ok, provider))
  const manifest = stubManifest('wake', '1.0.0')
  host.activate(manifest, 'a', await host.open(WAKE))
  await host.infer('wake', { 'onnx::Flatten_0': wakeTensor() })
  const batch = agg.cut()
  await host.close()
  return { seen, batch: telemetryCodec.check(batch) }
}

describe('provider reporting', () => {
  it('a GPU profile on this CPU-only machine: one fallback report naming both GPU providers, telemetry says cpu', async () => {
    const host = new ModelHost({ threads: 1, executionProviders: ['tensorrt', 'cuda', 'cpu'] })
    const { seen, batch } = await serve(host, new Aggregator('dev-1'))
    expect(seen).toHaveLength(1)
    expect(seen[0].manifest.version).toBe('1.0.0')
    expect(seen[0].provider).toBe('cpu')
    expect(seen[0].providers).toEqual(['tensorrt', 'cuda'])
    expect(seen[0].reasons.join(' ')).toMatch(/failed to initialise/)
    expect(batch.models[0].provider).toBe('cpu')
    expect(batch.models[0].requests).toBe(1)
  })

  it('a cpu profile reports no fallback', async () => {
    const { seen, batch } = await serve(
      new ModelHost({ threads: 1, executionProviders: ['cpu'] }),
      new Aggregator('dev-1'),
    )
    expect(seen).toEqual([])
    expect(batch.models[0].provider).toBe('cpu')
  })

  it('the wasm backend reports wasm', async () => {
    const host = new ModelHost({ threads: 1, executionProviders: ['cpu'], backend: 'wasm' })
    expect(host.backend).toBe('wasm')
    const { seen, batch } = await serve(host, new Aggregator('dev-1'))
    expect(seen).toEqual([])
    expect(batch.models[0].provider).toBe('wasm')
  }, 30_000)
})
