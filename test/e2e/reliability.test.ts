// Issue 18: faults that used to leave a device or a deployment stuck, each
// reproduced against real processes: a full disk (a real tmpfs) under the
// agent, a broker outage at the start of a download, a hub restart in the
// middle of a broadcast, and a device event the broker acknowledged but never
// delivered.
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { existsSync, linkSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { execFileSync } from 'node:child_process'
import {
  startHub,
  startDevice,
  startFleet,
  provision,
  api,
  waitFor,
  waitAllOnline,
  waitOnline,
  MODELS,
} from '../support/fleet.mjs'
import { startMosquitto, freePort, type Mosquitto } from '../support/mosquitto.mjs'
import { matmulModel } from '../support/models.mjs'
import { canMount, mountTmpfs, fillDisk, freeBytes } from '../support/faults.mjs'

const FP32 = encodeURIComponent(JSON.stringify({ precision: 'fp32' }))
interface Ev {
  kind: string
  code?: string
  deploymentId?: string
  receivedBytes?: number
}
interface Assignment {
  deviceId: string
  state: string
  bytes: number
  code: string | null
}
type Hub = Awaited<ReturnType<typeof startHub>>

const deploy = async (hub: Hub, model: string, version: string, target: string) =>
  (await api(hub.httpUrl, 'POST', '/api/v1/deployments', { model, version, target })).deployment.id as string
const assignments = async (hub: Hub, id: string): Promise<Assignment[]> =>
  (await api(hub.httpUrl, 'GET', `/api/v1/deployments/${id}`)).devices as Assignment[]
const finished = (hub: () => Hub, id: string, timeoutMs = 90_000) =>
  waitFor(
    async () => {
      const v = await api(hub().httpUrl, 'GET', `/api/v1/deployments/${id}`)
      return v.deployment.done ? (v.devices as Assignment[]) : undefined
    },
    { timeoutMs, what: `deployment ${id} done` },
  )
const events = async (hub: Hub, deviceId: string): Promise<Ev[]> =>
  (await api(hub.httpUrl, 'GET', `/api/v1/devices/${deviceId}`)).events as Ev[]
const bigInput = () => ({
  x: { type: 'float32', dims: [1, 1024], data: Array.from({ length: 1024 }, (_, i) => i / 1024) },
})
const alive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

describe.skipIf(!canMount())('a full disk under the agent (real tmpfs)', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'ef-full-'))
  const dataDir = join(tmp, 'disk')
  let unmount: () => void = () => undefined // replaced once a tmpfs is mounted
  let hub: Hub
  let agent: Awaited<ReturnType<typeof startDevice>>
  let secret: string
  const launch = () => startDevice(hub, { id: 'full', secret, profile: 'industrial-x86', dataDir })
  const filler = join(dataDir, 'filler.bin')
  const serveAll = async (n: number) => {
    let ok = 0
    for (let i = 0; i < n; i++) {
      const r = await api(`http://127.0.0.1:${agent.apiPort}`, 'POST', '/v1/models/big/infer', { inputs: bigInput() })
      if (r.outputs) ok++
    }
    return ok
  }

  beforeAll(async () => {
    unmount = mountTmpfs(dataDir, 48 * 1024 * 1024)
    hub = await startHub({ dataDir: join(tmp, 'hub') })
    secret = await provision(hub, { id: 'full', profile: 'industrial-x86' })
    for (let v = 1; v <= 4; v++)
      await api(
        hub.httpUrl,
        'POST',
        `/api/v1/models?name=big&version=${v}.0.0&options=${FP32}`,
        await matmulModel(6e6, v),
      )
    agent = await launch()
  })

  afterAll(async () => {
    await agent?.stop()
    await hub?.stop()
    unmount()
    rmSync(tmp, { recursive: true, force: true })
  })

  it('refuses a build that does not fit with EF_ERR_STORAGE_FULL, keeps serving, survives a restart and resumes when space returns', async () => {
    for (const v of ['1.0.0', '2.0.0']) await finished(() => hub, await deploy(hub, 'big', v, 'device=full'))
    // Slot a holds 1.0.0 (the rollback target), b serves 2.0.0; leave less than the 1 MiB margin free.
    fillDisk(filler, 256 * 1024)
    const id = await deploy(hub, 'big', '3.0.0', 'device=full')
    const deferred = await waitFor(
      async () => (await events(hub, 'full')).find((e) => e.kind === 'deferred' && e.deploymentId === id),
      { what: 'deferred event' },
    )
    expect(deferred.code).toBe('EF_ERR_STORAGE_FULL')
    const row = (await assignments(hub, id))[0]
    expect(row.code).toBe('EF_ERR_STORAGE_FULL')
    expect(['sent', 'received']).toContain(row.state)
    // Nothing was touched: the rollback target is still in slot a.
    expect(existsSync(join(dataDir, 'models', 'big', 'a', 'model.onnx'))).toBe(true)
    expect(await serveAll(30)).toBe(30)
    // The same process: no crash.
    expect(alive(agent.pid)).toBe(true)
    // A restart on the full disk comes up and serves (no crash loop).
    agent.kill9()
    await new Promise((r) => agent.proc.once('exit', r))
    agent = await launch()
    const pid = agent.pid
    expect(await serveAll(20)).toBe(20)
    // Space returns: the agent finishes the deploy by itself.
    rmSync(filler)
    const done = await finished(() => hub, id, 60_000)
    expect(done[0].state).toBe('activated')
    expect(agent.pid).toBe(pid)
    expect(alive(pid)).toBe(true)
    expect((await api(`http://127.0.0.1:${agent.apiPort}`, 'GET', '/v1/models')).items[0].version).toBe('3.0.0')
  })

  it('discards a partial artifact when the disk fills during the download, then completes it', async () => {
    const slot = (JSON.parse(readFileSync(join(dataDir, 'models', 'big', 'active.json'), 'utf8')) as { slot: string })
      .slot
    const staging = join(dataDir, 'models', 'big', slot === 'a' ? 'b' : 'a')
    // The free-space check counts the inactive slot as reclaimable; a hard link keeps its blocks in use,
    // so the check passes but the disk fills part-way through the download.
    const pinned = join(dataDir, 'pinned.onnx')
    linkSync(join(staging, 'model.onnx'), pinned)
    fillDisk(filler, 3 * 1024 * 1024)
    const before = freeBytes(dataDir)
    const id = await deploy(hub, 'big', '4.0.0', 'device=full')
    const deferred = await waitFor(
      async () => (await events(hub, 'full')).find((e) => e.kind === 'deferred' && e.deploymentId === id),
      { what: 'deferred event' },
    )
    expect(deferred.code).toBe('EF_ERR_STORAGE_FULL')
    // The partial file was discarded: the space is back (the slot is empty, the pinned link remains).
    await waitFor(() => !readdirSync(staging).some((f) => f.endsWith('.part')), { what: 'partial discarded' })
    expect(freeBytes(dataDir)).toBeGreaterThan(before - 512 * 1024)
    expect(await serveAll(20)).toBe(20)
    expect(alive(agent.pid)).toBe(true)
    rmSync(pinned)
    rmSync(filler)
    const done = await finished(() => hub, id, 60_000)
    expect(done[0].state).toBe('activated')
    expect(alive(agent.pid)).toBe(true)
  })
})

describe('transport faults during deployments (embedded broker)', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'ef-transport-'))
  let hub: Hub
  let agents: Awaited<ReturnType<typeof startFleet>>
  let mqttPort = 0
  let httpPort = 0
  const launchHub = () => startHub({ dataDir: join(tmp, 'hub'), mqttPort, httpPort })
  const killHub = async () => {
    hub.proc.kill('SIGKILL')
    await new Promise((r) => hub.proc.once('exit', r))
  }

  beforeAll(async () => {
    mqttPort = await freePort()
    httpPort = await freePort()
    hub = await launchHub()
    agents = await startFleet(
      hub,
      [1, 2, 3].map((i) => ({ id: `t${i}`, profile: 'industrial-x86', tags: { fleet: 't' } })),
      { tmp },
    )
    await waitAllOnline(hub)
  })

  afterAll(async () => {
    await Promise.all((agents ?? []).map((a) => a.stop()))
    await hub?.stop()
    rmSync(tmp, { recursive: true, force: true })
  })

  it('a broker outage at the start of a download still ends activated (hub kill -9 0-300 ms after deploy)', async () => {
    for (let v = 1; v <= 4; v++)
      await api(
        hub.httpUrl,
        'POST',
        `/api/v1/models?name=s&version=${v}.0.0&options=${FP32}`,
        await matmulModel(3e6, 10 + v),
      )
    for (const [i, delayMs] of [0, 100, 200, 300].entries()) {
      const id = await deploy(hub, 's', `${i + 1}.0.0`, 'tag=fleet=t')
      await new Promise((r) => setTimeout(r, delayMs))
      await killHub()
      hub = await launchHub()
      const done = await finished(() => hub, id, 90_000)
      expect(
        done.map((d) => d.state),
        `kill ${delayMs} ms after deploy`,
      ).toEqual(['activated', 'activated', 'activated'])
    }
    for (const a of agents) expect((await api(a.url, 'GET', '/v1/models')).items[0].version).toBe('4.0.0')
  })

  it('a hub restart mid-broadcast finishes within 2x an uninterrupted transfer, repairing at most what agents lacked', async () => {
    // Large enough that the kill lands mid-transfer on a quiet machine: 16 MB took 2.4 s there, and the
    // progress rows (every 500 ms) lagged so far behind that the agents already held every byte at the kill.
    const size = 48e6
    for (let v = 1; v <= 2; v++)
      await api(
        hub.httpUrl,
        'POST',
        `/api/v1/models?name=r&version=${v}.0.0&options=${FP32}`,
        await matmulModel(size, 20 + v),
      )
    let started = Date.now()
    await finished(() => hub, await deploy(hub, 'r', '1.0.0', 'tag=fleet=t'))
    const uninterruptedMs = Date.now() - started

    started = Date.now()
    const id = await deploy(hub, 'r', '2.0.0', 'tag=fleet=t')
    const held = await waitFor(
      async () => {
        const rows = await assignments(hub, id)
        return rows.some((d) => d.bytes > size * 0.1) ? rows : undefined
      },
      { intervalMs: 20, what: 'transfer under way' },
    )
    const killedAt = Date.now()
    await killHub()
    hub = await launchHub()
    const downMs = Date.now() - killedAt
    const done = await finished(() => hub, id, 120_000)
    const interruptedMs = Date.now() - started - downMs
    expect(done.map((d) => d.state)).toEqual(['activated', 'activated', 'activated'])
    const stats = (await api(hub.httpUrl, 'GET', '/api/v1/hub')).distribution as {
      repairBytes: number
      broadcastBytes: number
    }
    // What the agents lacked at the kill (progress rows lag a little, so this over-counts slightly).
    const lacked = held.reduce((s, d) => s + Math.max(0, size - d.bytes), 0)
    console.log(
      `[reliability] uninterrupted ${uninterruptedMs} ms, interrupted ${interruptedMs} ms (+${downMs} ms hub down); after restart broadcast ${stats.broadcastBytes} B, repair ${stats.repairBytes} B, lacked ${lacked} B`,
    )
    expect(stats.repairBytes).toBeLessThanOrEqual(lacked)
    expect(stats.broadcastBytes).toBeGreaterThan(0) // the restarted hub broadcast to the re-joined agents
    expect(interruptedMs).toBeLessThanOrEqual(2 * uninterruptedMs)
  })
})

describe('a device event the broker acknowledged but never delivered (Mosquitto)', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'ef-lost-'))
  let hub: Hub
  let mosq: Mosquitto
  let agents: Awaited<ReturnType<typeof startFleet>>

  beforeAll(async () => {
    mosq = await startMosquitto(join(tmp, 'mosquitto'))
    hub = await startHub({
      dataDir: join(tmp, 'hub'),
      extraArgs: ['--broker', mosq.url, '--mosquitto-dir', mosq.dir, '--mosquitto-pid-file', mosq.pidFile],
    })
    agents = await startFleet(hub, [{ id: 'lossy', profile: 'industrial-x86' }], { tmp, mqttUrl: mosq.url })
    await waitOnline(hub, 'lossy')
  })

  afterAll(async () => {
    await Promise.all((agents ?? []).map((a) => a.stop()))
    await hub?.stop()
    await mosq?.stop()
    rmSync(tmp, { recursive: true, force: true })
  })

  it('repairs the deployment from the device state within 30 s', async () => {
    for (const v of ['1.0.0', '1.0.1'])
      await api(
        hub.httpUrl,
        'POST',
        `/api/v1/models?name=wake&version=${v}&options=${FP32}`,
        readFileSync(v === '1.0.0' ? MODELS.wakeHello : MODELS.wakeNamaste),
      )
    await finished(() => hub, await deploy(hub, 'wake', '1.0.0', 'device=lossy'))
    // Mosquitto acknowledges and drops what the ACL denies: the device's events vanish from here on.
    const acl = join(mosq.dir, 'acl')
    writeFileSync(acl, readFileSync(acl, 'utf8').replace(/^pattern write ef\/v1\/dev\/%u\/events$/m, ''))
    execFileSync('kill', ['-HUP', String(mosq.proc.pid)])
    await new Promise((r) => setTimeout(r, 300))
    const t = Date.now()
    const id = await deploy(hub, 'wake', '1.0.1', 'device=lossy')
    const done = await finished(() => hub, id, 30_000)
    expect(done[0].state).toBe('activated')
    expect(Date.now() - t).toBeLessThan(30_000)
    // The device's own events never arrived: only the reconciliation moved the row.
    const evs = (await events(hub, 'lossy')).filter((e) => e.deploymentId === id)
    expect(evs.map((e) => e.kind)).toEqual(['activated'])
    expect((await api(agents[0].url, 'GET', '/v1/models')).items[0].version).toBe('1.0.1')
  })
})
