// Which of a profile's execution providers a session asks for: the ones this
// onnxruntime-node build ships, in the profile's order, cpu last.
import { describe, expect, it } from 'vitest'
import { createSession, sessionProviders } from '../../src/runtime/ort.js'
import { MODELS } from '../fixtures/agent.js'

describe('sessionProviders', () => {
  const nodeBuild = [
    { name: 'cpu', bundled: true },
    { name: 'webgpu', bundled: true },
    { name: 'cuda', bundled: false },
    { name: 'tensorrt', bundled: false },
  ]

  it('leaves out providers the build does not ship or needs extra libraries for', () => {
    expect(sessionProviders(['tensorrt', 'cuda', 'cpu'], nodeBuild)).toEqual(['cpu'])
    expect(sessionProviders(['nnapi', 'xnnpack', 'cpu'], nodeBuild)).toEqual(['cpu'])
  })

  it('keeps shipped providers in the profile order and puts cpu last', () => {
    const gpuBuild = [...nodeBuild, { name: 'xnnpack', bundled: true }, { name: 'cuda', bundled: true }]
    expect(sessionProviders(['cuda', 'cpu', 'xnnpack'], gpuBuild)).toEqual(['cuda', 'xnnpack', 'cpu'])
    expect(sessionProviders([], gpuBuild)).toEqual(['cpu'])
  })

  it('a GPU profile opens a session on the installed runtime (cuda is not tried without its libraries)', async () => {
    const s = await createSession(MODELS.hello, { threads: 1, executionProviders: ['tensorrt', 'cuda', 'cpu'] })
    expect(s.inputs.length).toBeGreaterThan(0)
    await s.release()
  })
})
