// A hub restart mid-wave: the rollout continues from its stored wave, phase and
// absolute soak end, with no device deployed twice [EF-8.9].
import { readFileSync } from 'node:fs'
import { afterAll, describe, expect, it } from 'vitest'
import { startHub, type Hub } from '../../src/hub.js'
import { COMPILE_WORKER, MODELS, provision, tempDir } from '../fixtures/hub.js'
import { FakeClock, sleep } from '../fixtures/rollouts.js'
import { startSimFleet, type SimFleet } from '../../../test/support/sim-devices.mjs'

describe('rollout across a hub restart', () => {
  const { dir, cleanup } = tempDir('ef-rollout-restart-')
  const clock = new FakeClock(Date.parse('2026-01-10T12:00:00Z'))
  let hub: Hub | undefined
  let fleet: SimFleet | undefined
  afterAll(async () => {
    await fleet?.close()
    await hub?.close()
    cleanup()
  })
  const open = (mqttPort = 0) =>
    startHub({
      dataDir: dir,
      mqttPort,
      httpPort: 0,
      log: 'silent',
      compileWorkerUrl: COMPILE_WORKER,
      now: clock.now,
      rolloutTickMs: 0,
      auth: false,
    })
  const step = async (h: Hub) => {
    await h.rollouts.tick()
    await sleep(40)
    clock.advance(10_000)
    await fleet!.telemetry()
    await sleep(20)
  }

  it('resumes in the same wave and soak after a restart, then completes', async () => {
    hub = await open()
    const port = hub.broker!.port
    const specs = []
    for (let i = 0; i < 6; i++)
      specs.push({
        id: `r${i}`,
        secret: await provision(hub, `r${i}`, 'gateway-rpi4', { fleet: 'r' }),
        profile: 'gateway-rpi4',
        model: 'm',
        version: '1.0.0',
      })
    for (const v of ['1.0.0', '2.0.0'])
      await hub.registry.add({
        name: 'm',
        version: v,
        bytes: readFileSync(MODELS.hello),
        options: { precision: 'fp32' },
      })
    fleet = await startSimFleet({ mqttUrl: hub.mqttUrl, devices: specs, now: clock.now })
    await sleep(200)
    const rollout = hub.rollouts.create(
      {
        model: 'm',
        version: '2.0.0',
        selector: 'tag=fleet=r',
        waves: [{ count: 2 }, { percent: 100 }],
        soakMs: 300_000,
        gates: { minRequests: 5 },
        schedule: { maintenanceWindows: false },
      },
      'test',
    )
    for (let i = 0; i < 50 && hub.store.rollouts.get(rollout.id)!.phase !== 'soak'; i++) await step(hub)
    const before = hub.store.rollouts.get(rollout.id)!
    expect(before).toMatchObject({ state: 'running', wave: 0, phase: 'soak' })
    await step(hub)

    await hub.close()
    clock.advance(60_000) // the hub is down for a minute
    hub = await open(port)
    await sleep(1500) // simulated devices reconnect to the same port
    const after = hub.store.rollouts.get(rollout.id)!
    expect(after).toMatchObject({ state: 'running', wave: 0, phase: 'soak', soakUntil: before.soakUntil })
    for (let i = 0; i < 100 && hub.store.rollouts.get(rollout.id)!.state !== 'completed'; i++) await step(hub)
    expect(hub.store.rollouts.get(rollout.id)!.state).toBe('completed')
    // The wave passed no earlier than its stored soak end.
    const pass = hub.store.rollouts
      .decisions(rollout.id)
      .find((d) => d.kind === 'gate' && d.decision === 'pass' && d.wave === 0)!
    expect(pass.ts).toBeGreaterThanOrEqual(before.soakUntil!)
    const v2 = fleet.deploys.filter((d) => d.version === '2.0.0').map((d) => d.deviceId)
    expect(v2.sort()).toEqual(specs.map((s) => s.id).sort())
  })
})
