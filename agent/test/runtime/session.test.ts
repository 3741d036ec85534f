// The runtime interface [EF-5.6, EF-5.7]: which backend a profile gets, the
// order a session tries the profile's execution providers in, the fallback
// to the CPU with its reason when one fails (on this CPU-only machine cuda
// and tensorrt really fail to load), and the WebAssembly backend answering
// as onnxruntime-node does within a build's health-check tolerance.
import { describe, expect, it } from 'vitest'
import { tensorsClose } from '@edgefleet/shared'
import { chooseBackend, createSession, providerPlan, type Tensor } from '../../src/runtime/session.js'
import { knownProviders } from '../../src/runtime/ort.js'
import { healthCheck } from '../../src/updater/health.js'
import { generateKeyPairSync } from 'node:crypto'
import { MODELS, WAKE_INPUT, buildWake, wakeInput } from '../fixtures/agent.js'

const nodeBuild = [
  { name: 'cpu', bundled: true },
  { name: 'webgpu', bundled: true },
  { name: 'cuda', bundled: false },
  { name: 'tensorrt', bundled: false },
]

describe('backend choice', () => {
  it('armv7 profiles run on WebAssembly, the others on onnxruntime-node; config can force either', () => {
    expect(chooseBackend('armv7')).toBe('wasm')
    expect(chooseBackend('arm64')).toBe('native')
    expect(chooseBackend('x86_64', 'auto')).toBe('native')
    expect(chooseBackend(undefined)).toBe('native')
    expect(chooseBackend('x86_64', 'wasm')).toBe('wasm')
    expect(chooseBackend('armv7', 'native')).toBe('native')
  })
})

describe('providerPlan', () => {
  it('tries every provider the build lists (cuda and tensorrt need libraries: tried, not assumed), in profile order', () => {
    const plan = providerPlan(['tensorrt', 'cuda', 'cpu'], knownProviders(nodeBuild), 'onnxruntime-node')
    expect(plan.tries).toEqual(['tensorrt', 'cuda'])
    expect(plan.skipped).toEqual([])
  })

  it('skips providers the runtime does not have, saying so, and never lists cpu as a try', () => {
    const plan = providerPlan(['nnapi', 'cuda', 'xnnpack', 'cpu'], knownProviders(nodeBuild), 'onnxruntime-node')
    expect(plan.tries).toEqual(['cuda'])
    expect(plan.skipped.map((s) => s.provider)).toEqual(['nnapi', 'xnnpack'])
    expect(plan.skipped[0].reason).toMatch(/nnapi is not available in onnxruntime-node/)
    expect(providerPlan(['cpu'], knownProviders(nodeBuild), 'x')).toEqual({ tries: [], skipped: [] })
  })
})

describe('provider fallback on a CPU-only machine', () => {
  it('a GPU profile opens its session on cpu and says why tensorrt and cuda were passed over', async () => {
    const session = await createSession(MODELS.hello, { threads: 1, executionProviders: ['tensorrt', 'cuda', 'cpu'] })
    try {
      expect(session.provider).toBe('cpu')
      expect(session.fallbacks?.map((f) => f.provider)).toEqual(['tensorrt', 'cuda'])
      for (const f of session.fallbacks ?? [])
        expect(f.reason).toMatch(new RegExp(`^${f.provider} failed to initialise: .*load`, 'i'))
      const out = await session.run({ [WAKE_INPUT]: wakeInput() })
      expect(Object.keys(out).length).toBeGreaterThan(0)
    } finally {
      await session.release()
    }
  })

  it('a cpu profile runs on cpu with no fallback', async () => {
    const s = await createSession(MODELS.hello, { threads: 1, executionProviders: ['cpu'] })
    expect(s.provider).toBe('cpu')
    expect(s.fallbacks).toEqual([])
    await s.release()
  })
})

describe('WebAssembly backend', () => {
  const key = generateKeyPairSync('ed25519').privateKey

  it('serves on wasm, passes the health check of a build made with onnxruntime-node, and answers within its tolerance', async () => {
    for (const file of [MODELS.hello, MODELS.namaste]) {
      const build = await buildWake(file, { key, version: '1.0.0' })
      const native = await createSession(file, { threads: 1, executionProviders: ['cpu'] })
      const wasm = await createSession(file, { threads: 2, executionProviders: ['xnnpack', 'cpu'], backend: 'wasm' })
      try {
        expect(wasm.provider).toBe('wasm')
        expect(wasm.fallbacks?.map((f) => f.provider)).toEqual(['xnnpack'])
        expect(wasm.inputs).toEqual(native.inputs)
        expect(wasm.outputs).toEqual(native.outputs)
        await healthCheck((i) => wasm.run(i), build.manifest)
        const { atol, rtol } = build.manifest.healthCheck
        for (const seed of [1, 2, 3, 4, 5]) {
          const input: Tensor = wakeInput(native.inputs[0].shape as number[], seed)
          const [a, b] = await Promise.all([wasm.run({ [WAKE_INPUT]: input }), native.run({ [WAKE_INPUT]: input })])
          for (const k of Object.keys(b)) {
            expect(a[k].dims).toEqual(b[k].dims)
            expect(tensorsClose(a[k].data, b[k].data, atol, rtol).ok).toBe(true)
          }
        }
      } finally {
        await wasm.release()
        await native.release()
      }
    }
  }, 60_000)

  it('a corrupt model fails on wasm as on native (no session, an error)', async () => {
    await expect(
      createSession(MODELS.hello + '.missing', { threads: 1, executionProviders: ['cpu'], backend: 'wasm' }),
    ).rejects.toThrow()
  })
})
