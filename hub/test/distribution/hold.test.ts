// Plain deployments honour maintenance windows and conditions [EF-8.16]: a
// real in-process hub on a fake clock, devices as real MQTT clients that
// record the commands they get. Outside the window nothing is sent; the hold
// tick sends it once the window opens (or the conditions hold); `now` and a
// newer deployment behave as the protocol says; reconciliation never resends a
// held assignment.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { MqttClient } from 'mqtt'
import { PROTOCOL_VERSION, topics } from '@edgefleet/shared'
import { connectDevice, provision, startTestHub, waitFor, type TestHub } from '../fixtures/hub.js'
import { FakeClock, registerVersions } from '../fixtures/rollouts.js'
import { HoldClock, windowOpensAt } from '../../src/distribution/hold.js'
import { main } from '../../src/cli/edgefleet.js'
import { EXIT_PENDING } from '../../src/cli/deployments.js'

// 12:00 UTC on a winter weekday: gateway-rpi4's window (01:00 Europe/Amsterdam, 240 min) is closed,
// and opens at 00:00 UTC the next day; phone-android-arm64's (03:00 Europe/London, 180 min, charging) too.
const NOON = Date.parse('2026-01-15T12:00:00Z')
const RPI_OPENS = Date.parse('2026-01-16T00:00:00Z')
const PHONE_OPENS = Date.parse('2026-01-16T03:00:00Z')

interface Progress {
  deviceId: string
  state: string
  code: string | null
  message: string | null
  windowOpensAt?: number | null
}

const clock = new FakeClock(NOON)
let testHub: TestHub
const devices = new Map<string, { client: MqttClient; cmds: { type: string; deploymentId?: string }[] }>()

async function device(id: string, profile: string, conditions: { power?: 'charging' | 'battery' } = {}) {
  const secret = await provision(testHub.hub, id, profile)
  const client = await connectDevice(testHub.hub.mqttUrl, id, secret)
  const cmds: { type: string; deploymentId?: string }[] = []
  client.on('message', (_topic, payload) => cmds.push(JSON.parse(payload.toString()) as (typeof cmds)[number]))
  await client.subscribeAsync(topics.cmd(id), { qos: 1 })
  devices.set(id, { client, cmds })
  await publishState(id, profile, conditions)
}

async function publishState(id: string, profile: string, conditions: { power?: 'charging' | 'battery' }) {
  const state = { v: PROTOCOL_VERSION, deviceId: id, online: true, ts: clock.t, profile, models: [], ...conditions }
  await devices.get(id)?.client.publishAsync(topics.state(id), JSON.stringify(state), { qos: 1, retain: true })
  await waitFor(
    () => {
      const row = testHub.hub.store.devices.get(id)
      return row?.online === true && row.state?.power === conditions.power
    },
    5000,
    `${id}'s state on the hub`,
  )
}

async function deploy(body: Record<string, unknown>): Promise<{ deployment: { id: string }; devices: Progress[] }> {
  const res = await testHub.hub.api.inject({ method: 'POST', url: '/api/v1/deployments', payload: body })
  expect(res.statusCode, res.body).toBe(201)
  return res.json()
}

async function show(id: string): Promise<Progress[]> {
  const res = await testHub.hub.api.inject({ method: 'GET', url: `/api/v1/deployments/${id}` })
  return res.json<{ devices: Progress[] }>().devices
}

const deploysTo = (id: string, deploymentId: string) =>
  (devices.get(id)?.cmds ?? []).filter((c) => c.type === 'deploy' && c.deploymentId === deploymentId).length

beforeAll(async () => {
  testHub = await startTestHub({ now: clock.now, windows: true })
  await registerVersions(testHub, 'm', ['1.0.0', '2.0.0', '3.0.0'])
  await device('gw-1', 'gateway-rpi4')
  await device('ph-1', 'phone-android-arm64', { power: 'battery' })
})
afterAll(async () => {
  for (const d of devices.values()) d.client.end(true)
  await testHub?.close()
})

describe('the hold decision', () => {
  it('names the next window start, in the window zone (Amsterdam is UTC+1 in January)', () => {
    const rpi = testHub.hub.profiles.get('gateway-rpi4')
    expect(rpi && windowOpensAt(rpi, NOON)).toBe(RPI_OPENS)
    const gw = testHub.hub.store.devices.get('gw-1')
    const hold = gw && new HoldClock(testHub.hub.profiles, NOON).holdFor(gw)
    expect(hold).toMatchObject({ state: 'waiting_window' })
    expect(hold?.message).toContain('opens 2026-01-16T00:00:00.000Z')
    // Inside the window (02:00 Amsterdam) a device is due.
    expect(gw && new HoldClock(testHub.hub.profiles, RPI_OPENS + 3_600_000).holdFor(gw)).toBeNull()
  })
})

describe('plain deployments [EF-8.16]', () => {
  let heldId = ''

  it('holds a device outside its window: waiting_window with windowOpensAt, no command sent', async () => {
    const created = await deploy({ model: 'm', version: '1.0.0', target: 'device=gw-1' })
    heldId = created.deployment.id
    expect(created.devices).toEqual([
      expect.objectContaining({ deviceId: 'gw-1', state: 'waiting_window', windowOpensAt: RPI_OPENS }),
    ])
    expect(await testHub.hub.holds.tick()).toBe(0)
    await new Promise((r) => setTimeout(r, 200))
    expect(deploysTo('gw-1', heldId)).toBe(0)
  })

  it('reconciliation never resends a held assignment, even one idle for long', () => {
    const idle = testHub.hub.store.deployments.idleOpen(clock.t + 3_600_000)
    expect(idle.map((a) => a.deploymentId)).not.toContain(heldId)
  })

  it('deploy --wait reports the held device as pending with its window and exits 3 at --timeout', async () => {
    let out = ''
    let err = ''
    const sink = (add: (s: string) => void) =>
      ({ write: (s: string | Uint8Array) => (add(String(s)), true) }) as unknown as NodeJS.WriteStream
    const argv = ['deploy', 'm@2.0.0', '--target', 'device=gw-1', '--wait', '--timeout', '1']
    const code = await main(
      [...argv, '--hub', testHub.hub.httpUrl],
      sink((s) => (out += s)),
      sink((s) => (err += s)),
    )
    expect(code).toBe(EXIT_PENDING)
    expect(out).toMatch(/gw-1\s+waiting_window \(opens 2026-01-16T00:00:00.000Z\)/)
    expect(err).toContain(
      'EF_ERR_DEPLOY_PENDING: 1 device(s) still pending after 1s (waiting for a maintenance window: gw-1 (opens 2026-01-16T00:00:00.000Z))',
    )
  })

  it('a newer deployment of the model ends the older held one with EF_ERR_DEPLOY_SUPERSEDED', async () => {
    const old = await show(heldId)
    expect(old[0]).toMatchObject({ state: 'failed', code: 'EF_ERR_DEPLOY_SUPERSEDED' })
    expect(old[0].message).toMatch(/^superseded by deployment /)
  })

  it('sends it when the window opens (hold tick), and only then', async () => {
    const held = await deploy({ model: 'm', version: '3.0.0', target: 'device=gw-1' })
    clock.t = RPI_OPENS - 60_000
    expect(await testHub.hub.holds.tick()).toBe(0)
    clock.t = RPI_OPENS + 30_000
    expect(await testHub.hub.holds.tick()).toBe(1)
    await waitFor(() => deploysTo('gw-1', held.deployment.id) === 1, 5000, 'the deploy command')
    expect((await show(held.deployment.id))[0]).toMatchObject({ state: 'sent', message: null })
    expect(await testHub.hub.holds.tick()).toBe(0) // released once
  })

  it('now: true sends at once outside the window', async () => {
    clock.t = NOON + 86_400_000
    const created = await deploy({ model: 'm', version: '3.0.0', target: 'device=gw-1', now: true })
    expect(created.devices[0].state).toBe('sent')
    await waitFor(() => deploysTo('gw-1', created.deployment.id) === 1, 5000, 'the deploy command')
  })

  it('inside the window a device whose state does not show the profile conditions waits for them', async () => {
    clock.t = PHONE_OPENS + 600_000
    const created = await deploy({ model: 'm', version: '1.0.0', target: 'device=ph-1' })
    expect(created.devices[0].state).toBe('waiting_conditions')
    expect(created.devices[0].message).toContain('waiting for charging')
    expect(created.devices[0].message).toContain('power battery')
    expect(await testHub.hub.holds.tick()).toBe(0)
    await publishState('ph-1', 'phone-android-arm64', { power: 'charging' })
    expect(await testHub.hub.holds.tick()).toBe(1)
    await waitFor(() => deploysTo('ph-1', created.deployment.id) === 1, 5000, 'the deploy command')
  })

  it('a held device whose window closes again before its conditions hold goes back to waiting_window', async () => {
    await publishState('ph-1', 'phone-android-arm64', { power: 'battery' })
    const created = await deploy({ model: 'm', version: '2.0.0', target: 'device=ph-1' })
    expect(created.devices[0].state).toBe('waiting_conditions')
    clock.t = PHONE_OPENS + 4 * 3_600_000 // 07:00 London: the 3-hour window is over
    expect(await testHub.hub.holds.tick()).toBe(0)
    const [progress] = await show(created.deployment.id)
    expect(progress).toMatchObject({ state: 'waiting_window', windowOpensAt: PHONE_OPENS + 86_400_000 })
  })
})
