// Devices on a 3-node NATS cluster [EF-4.12]: the hub keeps the cluster's
// authorization (a user per device) and reloads every node; agents spread over
// the three nodes get a deploy (chunks broadcast once, fanned out by the
// cluster), send telemetry, and a device's credentials cannot read another's
// commands. Killing the node a third of the fleet and the hub are on moves them
// to the next node in their list, and the transfer in progress finishes.
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import mqtt from 'mqtt'
import { startHub, startFleet, api, waitFor, wakeInput, MODELS } from '../support/fleet.mjs'
import { startNatsCluster, type NatsCluster } from '../support/nats.mjs'
import { matmulModel } from '../support/models.mjs'

const FP32 = encodeURIComponent(JSON.stringify({ precision: 'fp32' }))

/** The node list starting at node `first`: each agent prefers its own node and moves on to the next. */
const rotated = (urls: string[], first: number) => [...urls.slice(first), ...urls.slice(0, first)].join(',')

describe('devices on a 3-node NATS cluster', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'ef-nats-e2e-'))
  let cluster: NatsCluster
  let hub: Awaited<ReturnType<typeof startHub>>
  let agents: Awaited<ReturnType<typeof startFleet>>

  const deploy = async (version: string) =>
    (await api(hub.httpUrl, 'POST', '/api/v1/deployments', { model: 'm', version, target: 'tag=fleet=n' })).deployment
      .id as string
  const finished = (id: string, timeoutMs = 60_000) =>
    waitFor(
      async () => {
        const v = await api(hub.httpUrl, 'GET', `/api/v1/deployments/${id}`)
        return v.deployment.done ? v : undefined
      },
      { timeoutMs, what: `deployment ${id}` },
    )
  const nodeOf = async (deviceId: string) => {
    for (const n of cluster.nodes)
      if (n.proc.exitCode === null && n.proc.signalCode === null && (await n.mqttClients()).includes(deviceId))
        return n.name
    return undefined
  }

  beforeAll(async () => {
    cluster = await startNatsCluster(join(tmp, 'nats'))
    hub = await startHub({
      dataDir: join(tmp, 'hub'),
      extraArgs: [
        '--broker',
        cluster.urls.join(','),
        '--nats-dir',
        cluster.authDir,
        ...cluster.pidFiles.flatMap((f) => ['--nats-pid-file', f]),
      ],
    })
    agents = await startFleet(
      hub,
      [0, 1, 2].map((i) => ({
        id: `d${i + 1}`,
        profile: 'industrial-x86',
        tags: { fleet: 'n' },
        args: ['--hub', rotated(cluster.urls, i)],
      })),
      { tmp },
    )
    await waitFor(
      async () => (await api(hub.httpUrl, 'GET', '/api/v1/devices')).items.every((d: { online: boolean }) => d.online),
      { what: 'agents online', timeoutMs: 30_000 },
    )
  }, 90_000)

  afterAll(async () => {
    await Promise.all((agents ?? []).map((a) => a.stop()))
    await hub?.stop()
    await cluster?.stop()
    rmSync(tmp, { recursive: true, force: true })
  })

  it('agents on three nodes get a deploy and send telemetry', async () => {
    expect(await Promise.all(agents.map((a) => nodeOf(a.id)))).toEqual(['n1', 'n2', 'n3'])
    await api(
      hub.httpUrl,
      'POST',
      `/api/v1/models?name=m&version=1.0.0&options=${FP32}`,
      readFileSync(MODELS.wakeHello),
    )
    const v = await finished(await deploy('1.0.0'))
    expect(v.devices.map((d: { state: string }) => d.state)).toEqual(['activated', 'activated', 'activated'])
    for (const a of agents)
      for (let i = 0; i < 5; i++) await api(a.url, 'POST', '/v1/models/m/infer', { inputs: wakeInput(i) })
    const db = new Database(join(tmp, 'hub', 'hub.db'), { readonly: true })
    try {
      const rows = await waitFor(
        () => {
          const r = db
            .prepare('SELECT device_id, sum(requests) AS n FROM telemetry WHERE model = ? GROUP BY device_id')
            .all('m') as { device_id: string; n: number }[]
          return r.length === 3 && r.every((x) => x.n >= 5) ? r : undefined
        },
        { timeoutMs: 20_000, what: 'telemetry from every node' },
      )
      expect(rows.map((r) => r.device_id).sort()).toEqual(['d1', 'd2', 'd3'])
    } finally {
      db.close()
    }
  })

  it("a device's credentials cannot read another device's commands", async () => {
    const probe = await mqtt.connectAsync(cluster.urls[1], {
      clientId: 'd1-probe',
      username: 'd1',
      password: agents[0].secret,
      reconnectPeriod: 0,
    })
    try {
      const own = await probe.subscribeAsync('ef/v1/dev/d1/cmd', { qos: 1 })
      expect(own[0].qos).toBe(1)
      const other = await probe.subscribeAsync('ef/v1/dev/d2/cmd', { qos: 1 }).then(
        (g) => g[0].qos,
        () => 128, // mqtt.js rejects a SUBACK that refused everything
      )
      expect(other).toBe(128)
    } finally {
      await probe.endAsync(true)
    }
  })

  it('killing a node mid-transfer moves its agents (and the hub) to another node; the deploy finishes', async () => {
    await api(hub.httpUrl, 'POST', `/api/v1/models?name=m&version=2.0.0&options=${FP32}`, await matmulModel(12e6, 2))
    const id = await deploy('2.0.0')
    await waitFor(
      async () =>
        (await api(hub.httpUrl, 'GET', `/api/v1/deployments/${id}`)).devices.some(
          (d: { bytes: number }) => d.bytes > 0,
        ),
      { intervalMs: 20, what: 'transfer started' },
    )
    await cluster.nodes[0].kill9()
    const finishedDeployment = await finished(id, 90_000).catch(async (err: unknown) => {
      const now = await api(hub.httpUrl, 'GET', `/api/v1/deployments/${id}`)
      const where = await Promise.all(agents.map((a) => nodeOf(a.id)))
      throw new Error(
        `${(err as Error).message}\n${JSON.stringify(now.devices)}\nnodes: ${where.join(',')}\n${cluster
          .stderr()
          .split('\n')
          .filter((l) => /ERR|WRN/.test(l))
          .slice(-60)
          .join('\n')}`,
      )
    })
    expect(finishedDeployment.devices.map((d: { state: string }) => d.state)).toEqual([
      'activated',
      'activated',
      'activated',
    ])
    // Each reconnect tries the next node in d1's list (n1 → n2 → n3): if n2 refused while the cluster was
    // electing new JetStream leaders, d1 is on n3. Either way it is on a live node, not the dead one.
    expect(['n2', 'n3']).toContain(await nodeOf('d1'))
    for (const a of agents) expect((await api(a.url, 'GET', '/v1/models')).items[0].version).toBe('2.0.0')
  })
})
