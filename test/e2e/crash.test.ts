// kill -9 at every step of an update, twice each: the agent always comes back
// serving a verified version, and the interrupted deployment completes.
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { once } from 'node:events'
import { startHub, startAgent, api, waitFor, wakeInput, MODELS, ROOT } from '../support/fleet.mjs'

const STEPS = ['received', 'downloaded', 'cleared', 'verified', 'staged', 'healthy', 'switched'] as const
const ITERATIONS = 2 * STEPS.length

/** A distinct model per version: the wake head with its last layer re-initialised from `seed`. */
async function variant(seed: number): Promise<Uint8Array> {
  const { decodeModel, encodeModel } = (await import(join(ROOT, 'hub', 'dist', 'compiler', 'onnx', 'proto.js'))) as {
    decodeModel: (b: Uint8Array) => { graph: { initializer: { name: string; raw_data: Uint8Array }[] } }
    encodeModel: (m: unknown) => Uint8Array
  }
  const model = decodeModel(readFileSync(MODELS.wakeHello))
  const w = model.graph.initializer.find((t) => t.name === 'last_layer.weight')!
  const f = new Float32Array(w.raw_data.length / 4)
  let a = seed
  for (let i = 0; i < f.length; i++) {
    a = (a * 1664525 + 1013904223) >>> 0
    f[i] = (a / 4294967296 - 0.5) * 0.2
  }
  w.raw_data = new Uint8Array(f.buffer)
  return encodeModel(model)
}

describe('crash safety of updates (kill -9 at each step)', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'ef-crash-'))
  let hub: Awaited<ReturnType<typeof startHub>>
  let secret: string

  const agentOpts = () => ({
    mqttUrl: hub.mqttUrl,
    deviceId: 'crashy',
    secret,
    hubKey: hub.publicKey,
    profile: 'industrial-x86',
    dataDir: join(tmp, 'crashy'),
  })

  beforeAll(async () => {
    hub = await startHub({ dataDir: join(tmp, 'hub') })
    secret = (await api(hub.httpUrl, 'POST', '/api/v1/devices', { id: 'crashy', profile: 'industrial-x86' })).secret
    const opts = encodeURIComponent(JSON.stringify({ precision: 'fp32' }))
    await api(
      hub.httpUrl,
      'POST',
      `/api/v1/models?name=wake&version=1.0.0&options=${opts}`,
      readFileSync(MODELS.wakeHello),
    )
    for (let i = 1; i <= ITERATIONS; i++)
      await api(hub.httpUrl, 'POST', `/api/v1/models?name=wake&version=1.0.${i}&options=${opts}`, await variant(i))
  })

  afterAll(async () => {
    await hub?.stop()
    rmSync(tmp, { recursive: true, force: true })
  })

  it(`survives ${ITERATIONS} kills spread over ${STEPS.length} steps`, async () => {
    let agent = await startAgent(agentOpts())
    const first = await api(hub.httpUrl, 'POST', '/api/v1/deployments', {
      model: 'wake',
      version: '1.0.0',
      target: 'device=crashy',
    })
    await waitFor(
      async () => (await api(hub.httpUrl, 'GET', `/api/v1/deployments/${first.deployment.id}`)).deployment.done,
      { what: 'first deploy' },
    )
    await agent.stop()
    let serving = '1.0.0'
    const killedAt: string[] = []
    for (let iteration = 1; iteration <= ITERATIONS; iteration++) {
      const step = STEPS[(iteration - 1) % STEPS.length]
      const version = `1.0.${iteration}`
      agent = await startAgent({ ...agentOpts(), env: { EF_FAULT_KILL_AT: step } })
      const exited = once(agent.proc, 'exit')
      const dep = await api(hub.httpUrl, 'POST', '/api/v1/deployments', {
        model: 'wake',
        version,
        target: 'device=crashy',
      })
      const [, signal] = (await exited) as [number | null, string | null]
      expect(signal, `iteration ${iteration}: agent should die at ${step}`).toBe('SIGKILL')
      killedAt.push(step)

      // Back up without the fault: it must serve a verified version at once…
      agent = await startAgent(agentOpts())
      const url = `http://127.0.0.1:${agent.apiPort}`
      const models = (await api(url, 'GET', '/v1/models')).items as { version: string }[]
      expect(models).toHaveLength(1)
      expect([serving, version], `iteration ${iteration} (killed at ${step})`).toContain(models[0].version)
      const r = await api(url, 'POST', '/v1/models/wake/infer', { inputs: wakeInput(iteration) })
      expect(r.outputs['39'].dims).toEqual([1, 1])
      // …and finish the interrupted update once the hub resends it.
      const done = await waitFor(
        async () => {
          const v = await api(hub.httpUrl, 'GET', `/api/v1/deployments/${dep.deployment.id}`)
          return v.deployment.done ? v : undefined
        },
        { timeoutMs: 30_000, what: `deployment ${version} after kill at ${step}` },
      )
      expect(done.devices[0].state).toBe('activated')
      await waitFor(async () => (await api(url, 'GET', '/v1/models')).items[0].version === version, {
        what: `serving ${version}`,
      })
      serving = version
      await agent.stop()
    }
    expect(new Set(killedAt)).toEqual(new Set(STEPS))
  })
})
