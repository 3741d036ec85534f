// The agent as a device installs it [EF-11]: the linux-x64 package, unpacked
// into a folder with no node_modules above it and no pnpm, started with the
// system's `node`, connects to a real hub, receives a model and serves it;
// the linux-armv7 package (no native file at all) does the same on this
// machine on the WebAssembly backend its profile selects [EF-5.6], answering
// within the build's tolerance of onnxruntime-node. Also measured here, in
// packaged form: start-up to first inference (model already installed) and
// idle RSS with one model against the floor (bare node + onnxruntime-node +
// the same session), the ≤ 25 MiB overhead target of docs/BENCHMARKS.md.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { createInterface } from 'node:readline'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import * as ort from 'onnxruntime-node'
import { MODELS, api, cli, provision, startHub, stopProcess, waitFor, wakeInput } from '../support/fleet.mjs'
import { agentArgs } from './fixtures/agent-packages.js'

const tmp = mkdtempSync(join(tmpdir(), 'ef-pkg-e2e-'))
type Hub = Awaited<ReturnType<typeof startHub>>

/** Starts the packaged agent the way the systemd unit does: system node, the unit's flag, cwd = the package. */
async function startPackaged(top: string, hub: Hub, device: { id: string; secret: string; profile: string }) {
  const proc = spawn(
    'node',
    [
      '--max-semi-space-size=1',
      join(top, 'dist', 'edgefleet-agent.mjs'),
      ...agentArgs(hub, { ...device, data: join(tmp, `data-${device.id}`) }),
      '--json',
    ],
    // Only PATH and HOME: no NODE_PATH, no pnpm/npm variables from the test runner.
    { cwd: top, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: tmp }, stdio: ['ignore', 'pipe', 'pipe'] },
  )
  let stderr = ''
  proc.stderr?.on('data', (c: Buffer) => (stderr += c.toString()))
  const line = await new Promise<string>((resolve, reject) => {
    const rl = createInterface({ input: proc.stdout })
    rl.on('line', (l) => l.includes('apiPort') && resolve(l))
    proc.once('exit', (code) => reject(new Error(`packaged agent exited ${code}: ${stderr}`)))
  })
  const { apiPort } = JSON.parse(line) as { apiPort: number }
  return { proc, url: `http://127.0.0.1:${apiPort}`, stderr: () => stderr }
}

const rssMiB = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]) / 1024

async function deviceView(
  hub: Hub,
  id: string,
): Promise<{ online: boolean; models: unknown[]; agentVersion?: string } | undefined> {
  const list = (await api(hub.httpUrl, 'GET', '/api/v1/devices')) as {
    items: { id: string; online: boolean; models: unknown[] }[]
  }
  return list.items.find((d) => d.id === id)
}

async function directRun(seed: number): Promise<number[]> {
  const s = await ort.InferenceSession.create(MODELS.wakeHello)
  const t = wakeInput(seed)['onnx::Flatten_0']
  const out = await s.run({ 'onnx::Flatten_0': new ort.Tensor('float32', Float32Array.from(t.data), t.dims) })
  await s.release()
  return Array.from(out['39'].data as Float32Array)
}

describe('agent packages from an empty folder', () => {
  let hub: Hub
  const tops: Record<string, string> = {}
  const devices = {
    x64: { id: 'pkg-x64', profile: 'industrial-x86', secret: '' },
    armv7: { id: 'pkg-armv7', profile: 'gateway-armv7-small', secret: '' },
  }
  const running: ChildProcess[] = []

  beforeAll(async () => {
    const packaged = await cli([
      'agent-package',
      '--arch',
      'linux-x64',
      '--arch',
      'linux-armv7',
      '--out',
      join(tmp, 'out'),
      '--json',
    ])
    expect(packaged.code, packaged.err).toBe(0)
    for (const p of JSON.parse(packaged.out).packages as { arch: string; file: string }[]) {
      const dir = join(tmp, `device-${p.arch}`)
      mkdirSync(dir)
      execFileSync('tar', ['xzf', p.file, '-C', dir]) // as on a device: the system's tar
      tops[p.arch.replace('linux-', '')] = join(dir, readdirSync(dir)[0])
    }
    hub = await startHub({ dataDir: join(tmp, 'hub') })
    for (const d of Object.values(devices)) d.secret = await provision(hub, { id: d.id, profile: d.profile })
    const add = await cli([
      'model',
      'add',
      MODELS.wakeHello,
      '--name',
      'wake',
      '--version',
      '1.0.0',
      '--precision',
      'fp32',
      '--hub',
      hub.httpUrl,
      '--json',
    ])
    expect(add.code, add.err).toBe(0)
  }, 300_000)

  afterAll(async () => {
    await Promise.all(running.map((p) => stopProcess(p)))
    await hub?.stop()
    rmSync(tmp, { recursive: true, force: true })
  })

  it('nothing to resolve from: no node_modules above the unpacked folders, no pnpm needed', () => {
    for (const top of Object.values(tops)) {
      for (let d = dirname(top); d !== dirname(d); d = dirname(d))
        expect(existsSync(join(d, 'node_modules')), d).toBe(false)
      expect(existsSync(join(top, 'pnpm-lock.yaml'))).toBe(false)
    }
  })

  async function deployAndServe(arch: 'x64' | 'armv7') {
    const device = devices[arch]
    const agent = await startPackaged(tops[arch], hub, device)
    running.push(agent.proc)
    await waitFor(async () => (await deviceView(hub, device.id))?.online, { what: `${device.id} online` })
    const dep = await cli([
      'deploy',
      'wake@1.0.0',
      '--target',
      `device=${device.id}`,
      '--wait',
      '--timeout',
      '120',
      '--hub',
      hub.httpUrl,
      '--json',
    ])
    expect(dep.code, dep.err + dep.out + agent.stderr()).toBe(0)
    expect(JSON.parse(dep.out).devices).toEqual([expect.objectContaining({ deviceId: device.id, state: 'activated' })])
    return agent
  }

  it('linux-x64: the system node runs it; it connects, receives the model and answers as onnxruntime-node does', async () => {
    const agent = await deployAndServe('x64')
    for (const seed of [1, 2, 3]) {
      const want = await directRun(seed)
      const r = await api(agent.url, 'POST', '/v1/models/wake/infer', { inputs: wakeInput(seed) })
      expect(r.version).toBe('1.0.0')
      r.outputs['39'].data.forEach((v: number, i: number) => expect(Math.abs(v - want[i])).toBeLessThan(1e-6))
    }
    const d = await deviceView(hub, devices.x64.id)
    expect(d?.models).toEqual([expect.objectContaining({ name: 'wake', version: '1.0.0' })])
  }, 240_000)

  it('linux-armv7 (no native file): serves on WebAssembly within the build tolerance of onnxruntime-node', async () => {
    const agent = await deployAndServe('armv7')
    for (const seed of [1, 2, 3]) {
      const want = await directRun(seed)
      const r = await api(agent.url, 'POST', '/v1/models/wake/infer', { inputs: wakeInput(seed) })
      // fp32 build tolerance (hub/src/build/builder.ts): atol 1e-4, rtol 1e-3
      r.outputs['39'].data.forEach((v: number, i: number) =>
        expect(Math.abs(v - want[i])).toBeLessThanOrEqual(1e-4 + 1e-3 * Math.abs(want[i])),
      )
    }
    const metrics = await fetch(`${agent.url}/metrics`).then((x) => x.text())
    expect(metrics).toContain('wake')
  }, 240_000)

  it('packaged x64: start-up to first inference and idle RSS with one model (≤ floor + 25 MiB)', async () => {
    const x64 = running[0]
    await stopProcess(x64)
    const t0 = performance.now()
    const agent = await startPackaged(tops.x64, hub, devices.x64)
    running[0] = agent.proc
    await waitFor(
      async () => (await api(agent.url, 'POST', '/v1/models/wake/infer', { inputs: wakeInput(1) })).version === '1.0.0',
      {
        intervalMs: 10,
        what: 'first inference',
      },
    )
    const startupMs = performance.now() - t0
    for (let i = 0; i < 100; i++) await api(agent.url, 'POST', '/v1/models/wake/infer', { inputs: wakeInput(i) })
    await new Promise((r) => setTimeout(r, 2000))
    const idle = rssMiB(agent.proc.pid!)
    const floor = await floorMiB()
    console.log(
      JSON.stringify({
        packagedX64: {
          startupToFirstInferenceMs: Math.round(startupMs),
          idleRssMiB: idle,
          floorMiB: floor,
          overheadMiB: idle - floor,
        },
      }),
    )
    expect(idle - floor).toBeLessThanOrEqual(25)
  }, 120_000)
})

/** Bare node + onnxruntime-node + the same model's session (industrial-x86 options) after 100 runs, 2 s idle. */
async function floorMiB(): Promise<number> {
  const script = `
    import * as ort from 'onnxruntime-node'
    import { readFileSync } from 'node:fs'
    import { availableParallelism } from 'node:os'
    const s = await ort.InferenceSession.create(${JSON.stringify(MODELS.wakeHello)}, { executionProviders: ['cpu'], intraOpNumThreads: Math.min(4, availableParallelism()), interOpNumThreads: 1, graphOptimizationLevel: 'all', extra: { session: { intra_op: { allow_spinning: '0' } } } })
    const x = new Float32Array(25 * 96).fill(0.1)
    for (let i = 0; i < 100; i++) await s.run({ 'onnx::Flatten_0': new ort.Tensor('float32', x, [1, 25, 96]) })
    await new Promise((r) => setTimeout(r, 2000))
    console.log(Number(readFileSync('/proc/self/status', 'utf8').match(/VmRSS:\\s+(\\d+)/)[1]) / 1024)
  `
  const proc = spawn(process.execPath, ['--input-type=module', '-e', script], {
    cwd: process.cwd(),
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  let out = ''
  proc.stdout.on('data', (c: Buffer) => (out += c.toString()))
  await new Promise((r) => proc.once('exit', r))
  return Number(out.trim())
}
