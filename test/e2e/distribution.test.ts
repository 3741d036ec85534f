// Distribution end to end, against the embedded aedes and an external
// Mosquitto 2 (with the ACL the hub generates): broadcast once to many agents,
// delta updates, and the transfer surviving a broker or hub restart.
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startHub, startFleet, api, waitFor, MODELS, ROOT } from '../support/fleet.mjs'
import { startMosquitto, freePort, type Mosquitto } from '../support/mosquitto.mjs'
import { matmulModel } from '../support/models.mjs'

interface Ev {
  kind: string
  version?: string
  receivedBytes?: number
  deploymentId?: string
}
interface Stats {
  broadcastBytes: number
  repairBytes: number
  broadcastChunks: number
  repairChunks: number
}
const FP32 = encodeURIComponent(JSON.stringify({ precision: 'fp32' }))

async function headVariant(seed: number): Promise<{ bytes: Uint8Array; changed: number }> {
  const { decodeModel, encodeModel } = (await import(join(ROOT, 'hub', 'dist', 'compiler', 'onnx', 'proto.js'))) as {
    decodeModel: (b: Uint8Array) => { graph: { initializer: { name: string; raw_data: Uint8Array }[] } }
    encodeModel: (m: unknown) => Uint8Array
  }
  const m = decodeModel(readFileSync(MODELS.wakeHello))
  const w = m.graph.initializer.find((t) => t.name === 'last_layer.weight')!
  const f = new Float32Array(w.raw_data.length / 4).map((_, i) => Math.sin(seed * 31 + i) * 0.1)
  w.raw_data = new Uint8Array(f.buffer)
  return { bytes: encodeModel(m), changed: w.raw_data.length }
}

describe.each(['aedes', 'mosquitto'] as const)('distribution over %s', (mode) => {
  const tmp = mkdtempSync(join(tmpdir(), `ef-dist-${mode}-`))
  let hub: Awaited<ReturnType<typeof startHub>>
  let mosq: Mosquitto | undefined
  let agents: Awaited<ReturnType<typeof startFleet>>
  let mqttPort = 0
  let httpPort = 0

  const launchHub = () =>
    startHub({
      dataDir: join(tmp, 'hub'),
      mqttPort,
      httpPort,
      extraArgs: mosq ? ['--broker', mosq.url, '--mosquitto-dir', mosq.dir, '--mosquitto-pid-file', mosq.pidFile] : [],
    })
  const stats = async (): Promise<Stats> => (await api(hub.httpUrl, 'GET', '/api/v1/hub')).distribution
  const deploy = async (version: string, target = 'tag=fleet=d') =>
    (await api(hub.httpUrl, 'POST', '/api/v1/deployments', { model: 'm', version, target })).deployment.id as string
  const finished = (id: string, timeoutMs = 90_000) =>
    waitFor(
      async () => {
        const v = await api(hub.httpUrl, 'GET', `/api/v1/deployments/${id}`)
        return v.deployment.done ? v : undefined
      },
      { timeoutMs, what: `deployment ${id}` },
    )
  const downloaded = async (deviceId: string, deploymentId: string): Promise<Ev | undefined> =>
    ((await api(hub.httpUrl, 'GET', `/api/v1/devices/${deviceId}`)).events as Ev[]).find(
      (e) => e.kind === 'downloaded' && e.deploymentId === deploymentId,
    )
  const build = async (version: string) =>
    (await api(hub.httpUrl, 'GET', `/api/v1/models/m/versions/${version}`)).builds[0] as {
      artifact: string
      sizeBytes: number
    }
  const maxChunk = 256 * 1024

  beforeAll(async () => {
    httpPort = await freePort()
    if (mode === 'mosquitto') mosq = await startMosquitto(join(tmp, 'mosquitto'))
    else mqttPort = await freePort()
    hub = await launchHub()
    agents = await startFleet(
      hub,
      [1, 2, 3].map((i) => ({ id: `d${i}`, profile: 'industrial-x86', tags: { fleet: 'd' } })),
      { tmp },
    )
    await waitFor(
      async () => (await api(hub.httpUrl, 'GET', '/api/v1/devices')).items.every((d: { online: boolean }) => d.online),
      { what: 'agents online', timeoutMs: 30_000 },
    )
  })

  afterAll(async () => {
    await Promise.all((agents ?? []).map((a) => a.stop()))
    await hub?.stop()
    await mosq?.stop()
    rmSync(tmp, { recursive: true, force: true })
  })

  it('broadcasts each chunk once to every agent', async () => {
    await api(hub.httpUrl, 'POST', `/api/v1/models?name=m&version=1.0.0&options=${FP32}`, await matmulModel(12e6, 1))
    const built = await build('1.0.0')
    const before = await stats()
    const id = await deploy('1.0.0')
    const v = await finished(id)
    expect(v.devices.map((d: { state: string }) => d.state)).toEqual(['activated', 'activated', 'activated'])
    const after = await stats()
    // Three agents, one copy through the hub: the broker did the fan-out.
    expect(after.broadcastBytes - before.broadcastBytes).toBeLessThanOrEqual(built.sizeBytes)
    expect(after.broadcastBytes - before.broadcastBytes + after.repairBytes - before.repairBytes).toBeLessThan(
      1.2 * built.sizeBytes,
    )
    for (const a of agents) {
      const ev = await downloaded(a.id, id)
      expect(ev?.receivedBytes).toBeLessThanOrEqual(built.sizeBytes + 2 * maxChunk)
    }
  })

  it('moves only the changed tensor on a head-only update', async () => {
    await api(
      hub.httpUrl,
      'POST',
      `/api/v1/models?name=m&version=2.0.0&options=${FP32}`,
      readFileSync(MODELS.wakeHello),
    )
    await finished(await deploy('2.0.0'))
    const { bytes, changed } = await headVariant(5)
    await api(hub.httpUrl, 'POST', `/api/v1/models?name=m&version=2.1.0&options=${FP32}`, bytes)
    const before = await stats()
    const id = await deploy('2.1.0')
    const v = await finished(id)
    expect(v.devices.every((d: { state: string }) => d.state === 'activated')).toBe(true)
    const after = await stats()
    const moved = after.broadcastBytes - before.broadcastBytes + (after.repairBytes - before.repairBytes)
    expect(moved / changed).toBeLessThanOrEqual(1.1)
    for (const a of agents) expect((await downloaded(a.id, id))?.receivedBytes).toBeLessThanOrEqual(1.1 * changed)
  })

  it(
    mode === 'mosquitto'
      ? 'resumes after the broker is killed mid-transfer'
      : 'completes a deployment across a hub restart mid-transfer',
    async () => {
      await api(hub.httpUrl, 'POST', `/api/v1/models?name=m&version=3.0.0&options=${FP32}`, await matmulModel(60e6, 3))
      const built = await build('3.0.0')
      const id = await deploy('3.0.0')
      // Wait until the transfer is under way, then pull the rug.
      await waitFor(
        async () => {
          const v = await api(hub.httpUrl, 'GET', `/api/v1/deployments/${id}`)
          return v.devices.some((d: { bytes: number }) => d.bytes > 0)
        },
        { intervalMs: 20, what: 'transfer started' },
      )
      if (mosq) {
        const dir = mosq.dir
        const port = mosq.port
        await mosq.kill9()
        await new Promise((r) => setTimeout(r, 500))
        mosq = await startMosquitto(dir, port)
      } else {
        hub.proc.kill('SIGKILL')
        await new Promise((r) => hub.proc.once('exit', r))
        hub = await launchHub()
      }
      const v = await finished(id, 120_000)
      expect(v.devices.map((d: { state: string }) => d.state)).toEqual(['activated', 'activated', 'activated'])
      for (const a of agents) {
        const models = await api(a.url, 'GET', '/v1/models')
        expect(models.items[0].version).toBe('3.0.0')
        const ev = await downloaded(a.id, id)
        // Resumed, not restarted: at most the artifact plus two chunks crossed the network.
        expect(ev?.receivedBytes, a.id).toBeLessThanOrEqual(built.sizeBytes + 2 * maxChunk)
      }
    },
  )
})
