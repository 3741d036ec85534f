// Guard of the broadcast's efficiency (issue 12, no timing): 50 real agents
// (createAgent, 25 per process, one MQTT connection each) take a 20 MB model
// through the embedded aedes and through Mosquitto; the hub must publish every
// byte of it exactly once (no chunk twice, no repair) and no agent may receive
// a byte twice. Pacing, premature repairs and a session closed under the
// receivers' feet each showed up here as repair bytes.
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { ChildProcess } from 'node:child_process'
import { startHub, api, waitFor, spawnJson, stopProcess, ROOT } from '../support/fleet.mjs'
import { startMosquitto, type Mosquitto } from '../support/mosquitto.mjs'
import { matmulModel } from '../support/models.mjs'

const AGENTS = 50
const PROCS = 2
const FP32 = encodeURIComponent(JSON.stringify({ precision: 'fp32' }))

interface Stats {
  broadcastBytes: number
  broadcastChunks: number
  repairBytes: number
  repairChunks: number
}
interface Ev {
  kind: string
  deploymentId?: string
  receivedBytes?: number
}

describe.each(['aedes', 'mosquitto'] as const)(`fan-out to ${AGENTS} agents over %s`, (mode) => {
  const tmp = mkdtempSync(join(tmpdir(), `ef-fanout-${mode}-`))
  let hub: Awaited<ReturnType<typeof startHub>>
  let mosq: Mosquitto | undefined
  const pools: ChildProcess[] = []
  const ids = Array.from({ length: AGENTS }, (_, i) => `fan-${String(i).padStart(2, '0')}`)

  beforeAll(async () => {
    if (mode === 'mosquitto') mosq = await startMosquitto(join(tmp, 'mosquitto'))
    hub = await startHub({
      dataDir: join(tmp, 'hub'),
      logLevel: 'info', // the broadcast's own log lines explain a failure
      extraArgs: mosq ? ['--broker', mosq.url, '--mosquitto-dir', mosq.dir, '--mosquitto-pid-file', mosq.pidFile] : [],
    })
    const specs = []
    for (const id of ids) {
      const d = await api(hub.httpUrl, 'POST', '/api/v1/devices', { id, profile: 'industrial-x86', tags: { g: 'fan' } })
      specs.push({ deviceId: id, secret: d.secret, profile: 'industrial-x86', dataDir: join(tmp, 'agents', id) })
    }
    const per = Math.ceil(AGENTS / PROCS)
    for (let p = 0; p < PROCS; p++) {
      const file = join(tmp, `pool-${p}.json`)
      writeFileSync(file, JSON.stringify(specs.slice(p * per, (p + 1) * per)))
      const pool = await spawnJson(
        join(ROOT, 'test', 'bench', 'support', 'agent-pool.mjs'),
        [mosq?.url ?? hub.mqttUrl, hub.publicKey, file, 'mqtt'],
        'ready',
        { timeoutMs: 120_000 },
      )
      pools.push(pool.proc)
    }
    await waitFor(
      async () =>
        (await api(hub.httpUrl, 'GET', '/api/v1/devices?limit=1000')).items.filter((d: { online: boolean }) => d.online)
          .length >= AGENTS,
      { timeoutMs: 120_000, what: 'agents online' },
    )
  })

  afterAll(async () => {
    await Promise.all(pools.map((p) => stopProcess(p, 20_000)))
    await hub?.stop()
    await mosq?.stop()
    rmSync(tmp, { recursive: true, force: true })
  })

  // 50 agents verifying and health-checking a 20 MB model take minutes on 2 busy cores.
  it('publishes each chunk once and repairs nothing', { timeout: 420_000 }, async () => {
    const reg = await api(
      hub.httpUrl,
      'POST',
      `/api/v1/models?name=fan&version=1.0.0&options=${FP32}`,
      await matmulModel(20e6, 7),
    )
    const size = reg.builds[0].sizeBytes as number
    const before = (await api(hub.httpUrl, 'GET', '/api/v1/hub')).distribution as Stats
    const dep = await api(hub.httpUrl, 'POST', '/api/v1/deployments', {
      model: 'fan',
      version: '1.0.0',
      target: 'tag=g=fan',
    })
    const id = dep.deployment.id as string
    const v = await waitFor(
      async () => {
        const r = await api(hub.httpUrl, 'GET', `/api/v1/deployments/${id}`)
        return r.deployment.done ? r : undefined
      },
      { timeoutMs: 400_000, intervalMs: 500, what: 'fan-out deployment' },
    )
    expect(v.deployment.counts).toEqual({ activated: AGENTS })
    const after = (await api(hub.httpUrl, 'GET', '/api/v1/hub')).distribution as Stats
    const story = hub
      .stderr()
      .split('\n')
      .filter((l) => /broadcast|reconnect|offline|repair/.test(l))
      .slice(-40)
      .join('\n')
    // Every byte of the artifact left the hub once, on the broadcast topics.
    expect(after.broadcastBytes - before.broadcastBytes, story).toBe(size)
    expect(after.repairChunks - before.repairChunks, story).toBe(0)
    expect(after.repairBytes - before.repairBytes).toBe(0)
    // ...and reached each agent once.
    for (const device of ids) {
      const evs = (await api(hub.httpUrl, 'GET', `/api/v1/devices/${device}`)).events as Ev[]
      const downloaded = evs.find((e) => e.kind === 'downloaded' && e.deploymentId === id)
      expect(downloaded?.receivedBytes, device).toBe(size)
    }
  })
})
