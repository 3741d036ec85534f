// Rollouts with real agents [EF-8]: a deliberately worse version (fails every
// batch-of-2 request on the devices, though it passes the hub's health check)
// is stopped by its error-rate gate at the first wave and rolled back with
// signed rollback deploys; a good version goes through every wave with the
// CLI's --wait progress.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { api, cli, startFleet, startHub, waitFor, type FleetAgent, type HubProc } from '../support/fleet.mjs'
import { batchInput, batchModel } from '../support/rollout-models.mjs'

const tmp = mkdtempSync(join(tmpdir(), 'ef-e2e-rollout-'))
let hub: HubProc
let agents: FleetAgent[] = []
let traffic: NodeJS.Timeout | undefined
const served = { ok: 0, failed: 0 }

async function register(version: string, strictBatch: boolean, seed: number) {
  const q = new URLSearchParams({ name: 'clf', version, options: JSON.stringify({ precision: 'fp32' }) })
  const r = await api(hub.httpUrl, 'POST', `/api/v1/models?${q}`, await batchModel({ strictBatch, seed }))
  expect(r.builds.every((b: { status: string }) => b.status === 'ok')).toBe(true)
}

const versions = async () =>
  (await api(hub.httpUrl, 'GET', '/api/v1/devices')).items.map(
    (d: { models: { version: string }[] }) => d.models[0]?.version,
  )

beforeAll(async () => {
  hub = await startHub({ dataDir: join(tmp, 'hub') })
  agents = await startFleet(
    hub,
    ['a', 'b', 'c', 'd'].map((x) => ({ id: `ro-${x}`, profile: 'gateway-rpi4', tags: { fleet: 'ro' } })),
    { tmp, telemetryMs: 300 },
  )
  await waitFor(
    async () => (await api(hub.httpUrl, 'GET', '/api/v1/devices')).items.every((d: { online: boolean }) => d.online),
    { what: 'agents online' },
  )
  await register('1.0.0', false, 1)
  const dep = await api(hub.httpUrl, 'POST', '/api/v1/deployments', {
    model: 'clf',
    version: '1.0.0',
    target: 'tag=fleet=ro',
  })
  await waitFor(
    async () => (await api(hub.httpUrl, 'GET', `/api/v1/deployments/${dep.deployment.id}`)).deployment.done,
    { timeoutMs: 60_000, what: 'initial deployment' },
  )
  // Live traffic on every device: batches of 1 and 2, alternating on each device.
  let n = 0
  traffic = setInterval(() => {
    n++
    for (const a of agents) {
      const body = batchInput(1 + (n % 2), n)
      fetch(`${a.url}/v1/models/clf/infer`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      })
        .then((r) => (r.ok ? served.ok++ : served.failed++))
        .catch(() => served.failed++)
    }
  }, 40)
})

afterAll(async () => {
  clearInterval(traffic)
  await Promise.all(agents.map((a) => a.stop()))
  await hub?.stop()
  rmSync(tmp, { recursive: true, force: true })
})

describe('rollouts with real agents', () => {
  it('a version that raises the error rate is stopped at its first wave and rolled back automatically', async () => {
    await register('2.0.0', true, 1)
    const created = await api(hub.httpUrl, 'POST', '/api/v1/rollouts', {
      model: 'clf',
      version: '2.0.0',
      selector: 'tag=fleet=ro',
      waves: [{ count: 1 }, { percent: 50 }, { percent: 100 }],
      soakMs: 20_000,
      gates: { minRequests: 20, maxErrorRateDelta: 0.05 },
      onFail: 'rollback',
      schedule: { maintenanceWindows: false },
    })
    const id = created.rollout.id
    const final = await waitFor(
      async () => {
        const v = await api(hub.httpUrl, 'GET', `/api/v1/rollouts/${id}`)
        return v.rollout.state === 'rolled_back' ? v : undefined
      },
      { timeoutMs: 90_000, intervalMs: 500, what: 'rollout rolled back' },
    )
    const fail = final.decisions.find(
      (d: { kind: string; decision: string }) => d.kind === 'gate' && d.decision === 'fail',
    )
    expect(fail.wave).toBe(0)
    expect(fail.detail.failed[0].gate).toBe('maxErrorRateDelta')
    expect(fail.detail.values.errorRate).toBeGreaterThan(0.3) // every batch of 2 fails
    expect(fail.detail.values.baselineErrorRate).toBe(0)
    expect(fail.detail.values.baselineDevices).toBe(3)
    // Exactly one device ever received 2.0.0, and it was rolled back by a signed rollback deploy.
    const deps = (await api(hub.httpUrl, 'GET', '/api/v1/deployments')).items as {
      version: string
      rollback: boolean
      counts: Record<string, number>
    }[]
    const v2 = deps.filter((d) => d.version === '2.0.0')
    expect(v2.reduce((a, d) => a + Object.values(d.counts).reduce((x, y) => x + y, 0), 0)).toBe(1)
    expect(deps.filter((d) => d.rollback && d.version === '1.0.0')).toHaveLength(1)
    await waitFor(async () => (await versions()).every((v: string) => v === '1.0.0'), {
      timeoutMs: 30_000,
      what: 'every device on 1.0.0',
    })
    expect(final.rollout.totals).toMatchObject({ rolled_back: 1 })
    // The CLI shows the same rollout.
    const shown = await cli(['rollout', 'show', id, '--hub', hub.httpUrl, '--json'])
    expect(shown.code).toBe(0)
    expect(JSON.parse(shown.out).rollout.state).toBe('rolled_back')
  })

  it('a good version goes through every wave; the CLI waits with progress bars', async () => {
    await register('3.0.0', false, 3)
    const result = await cli([
      'rollout',
      'create',
      'clf@3.0.0',
      '--selector',
      'tag=fleet=ro',
      '--waves',
      '1,50%,100%',
      '--soak',
      '3s',
      '--min-requests',
      '10',
      '--no-windows',
      '--wait',
      '--hub',
      hub.httpUrl,
    ])
    expect(result.code, result.err + result.out).toBe(0)
    expect(result.err).toMatch(/\[#+\.*\] \d+\/4 devices on 3\.0\.0/)
    expect(result.out).toMatch(/state completed/)
    expect(await versions()).toEqual(['3.0.0', '3.0.0', '3.0.0', '3.0.0'])
    const list = await cli(['rollout', 'list', '--hub', hub.httpUrl, '--json'])
    expect(JSON.parse(list.out).map((x: { state: string }) => x.state)).toEqual(['completed', 'rolled_back'])
    const devs = await cli(['devices', 'list', '--hub', hub.httpUrl, '--json'])
    expect(JSON.parse(devs.out)).toHaveLength(4)
  })
})
