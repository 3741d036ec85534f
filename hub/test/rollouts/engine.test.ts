// The rollout engine end to end inside one hub process: real store, broker,
// dispatcher and deployer; simulated MQTT devices; a fake clock [EF-8].
import { afterEach, describe, expect, it } from 'vitest'
import { startRolloutBench, sleep, type RolloutBench } from '../fixtures/rollouts.js'
import { provision } from '../fixtures/hub.js'
import { startSimFleet } from '../../../test/support/sim-devices.mjs'

const fleetOf = (n: number, extra: Record<string, unknown> = {}) =>
  Array.from({ length: n }, (_, i) => ({
    id: `d${String(i).padStart(2, '0')}`,
    profile: 'gateway-rpi4',
    model: 'm',
    version: '1.0.0',
    tags: { fleet: 't' },
    ...extra,
  }))

let bench: RolloutBench | undefined
afterEach(async () => {
  await bench?.close()
  bench = undefined
})

const noWindows = { maintenanceWindows: false }
const FINAL = new Set(['completed', 'aborted', 'rolled_back', 'paused'])

describe('rollout engine', () => {
  it('moves through cumulative waves, soaks, passes its gates with the numbers recorded, and completes', async () => {
    bench = await startRolloutBench({ devices: fleetOf(10) })
    const rollout = bench.t.hub.rollouts.create(
      {
        model: 'm',
        version: '2.0.0',
        selector: 'tag=fleet=t',
        waves: [{ percent: 10 }, { percent: 50 }, { percent: 100 }],
        soakMs: 60_000,
        gates: { minRequests: 5 },
        schedule: noWindows,
      },
      'test',
    )
    const seen: number[] = []
    await bench.drive(() => {
      const x = bench!.rollout(rollout.id)
      if (!seen.includes(x.wave)) seen.push(x.wave)
      return x.state === 'completed'
    })
    expect(seen).toEqual([0, 1, 2])
    const devs = bench.t.hub.store.rollouts.devices(rollout.id)
    expect(devs.every((d) => d.status === 'activated')).toBe(true)
    // Wave sizes follow the cumulative percentages: 1, 4, 5.
    expect([0, 1, 2].map((w) => devs.filter((d) => d.wave === w).length)).toEqual([1, 4, 5])
    const passes = bench.t.hub.store.rollouts
      .decisions(rollout.id)
      .filter((d) => d.kind === 'gate' && d.decision === 'pass')
    expect(passes).toHaveLength(3)
    expect(passes[0].detail).toMatchObject({ errorRate: 0, p95Ratio: expect.closeTo(1, 1) })
    expect(bench.t.hub.store.rollouts.gateSamples(rollout.id).length).toBeGreaterThan(3)
    // Every device ran 2.0.0 in the end, each deployed once.
    expect(bench.fleet.deploys.filter((d) => d.version === '2.0.0')).toHaveLength(10)
  })

  it('a version that raises the error rate fails its first wave and is rolled back with signed rollback deploys', async () => {
    bench = await startRolloutBench({
      devices: fleetOf(10),
      behavior: (v) => ({ requests: 20, errors: v === '2.0.0' ? 6 : 0, latencyMs: 1 }),
    })
    const rollout = bench.t.hub.rollouts.create(
      {
        model: 'm',
        version: '2.0.0',
        selector: { tag: 'fleet=t' },
        waves: [{ count: 2 }, { percent: 100 }],
        soakMs: 120_000,
        gates: { minRequests: 10 },
        onFail: 'rollback',
        schedule: noWindows,
      },
      'test',
    )
    await bench.drive(() => bench!.rollout(rollout.id).state === 'rolled_back')
    const fail = bench.t.hub.store.rollouts
      .decisions(rollout.id)
      .find((d) => d.kind === 'gate' && d.decision === 'fail')!
    expect(fail.wave).toBe(0)
    expect((fail.detail.values as { errorRate: number }).errorRate).toBeCloseTo(0.3, 5)
    expect(fail.detail.failed).toEqual([expect.objectContaining({ gate: 'maxErrorRateDelta' })])
    const rollbacks = bench.fleet.deploys.filter((d) => d.rollback)
    expect(rollbacks.map((d) => d.version)).toEqual(['1.0.0', '1.0.0'])
    // Only the first wave ever saw 2.0.0; everyone runs 1.0.0 again.
    expect(bench.fleet.deploys.filter((d) => d.version === '2.0.0')).toHaveLength(2)
    await sleep(100)
    expect([...bench.fleet.sims.values()].every((s) => s.state.models[0].version === '1.0.0')).toBe(true)
    expect(bench.t.hub.store.rollouts.devices(rollout.id).filter((d) => d.status === 'rolled_back')).toHaveLength(2)
  })

  it('pauses by default on a failed latency gate, and the operator can resume, promote or abort', async () => {
    bench = await startRolloutBench({
      devices: fleetOf(4),
      behavior: (v) => ({ requests: 20, errors: 0, latencyMs: v === '2.0.0' ? 40 : 4 }),
    })
    const rollout = bench.t.hub.rollouts.create(
      {
        model: 'm',
        version: '2.0.0',
        selector: 'tag=fleet=t',
        waves: [{ count: 1 }, { percent: 100 }],
        soakMs: 60_000,
        gates: { minRequests: 5 },
        schedule: noWindows,
      },
      'test',
    )
    await bench.drive(() => bench!.rollout(rollout.id).state === 'paused')
    const x = bench.rollout(rollout.id)
    expect(x.reason).toMatch(/maxP95Ratio/)
    expect(() => bench!.t.hub.rollouts.action(rollout.id, 'approve', 'op')).toThrow(
      expect.objectContaining({ code: 'EF_ERR_ROLLOUT_STATE' }),
    )
    // The operator overrides: promote skips the failed wave's gates and starts the next wave.
    bench.t.hub.rollouts.action(rollout.id, 'promote', 'op')
    expect(bench.rollout(rollout.id)).toMatchObject({ state: 'running', wave: 1 })
    bench.t.hub.rollouts.action(rollout.id, 'abort', 'op')
    expect(bench.rollout(rollout.id).state).toBe('aborted')
    expect(() => bench!.t.hub.rollouts.action(rollout.id, 'resume', 'op')).toThrow(
      expect.objectContaining({ code: 'EF_ERR_ROLLOUT_STATE' }),
    )
    const actions = bench.t.hub.store.rollouts
      .decisions(rollout.id)
      .filter((d) => d.kind === 'action')
      .map((d) => `${d.decision}:${d.actor}`)
    expect(actions).toEqual(['create:test', 'promote:op', 'abort:op'])
  })

  it('deploys only inside the profile maintenance window and to devices showing the conditions; others are shown waiting', async () => {
    // 12:00 UTC: outside gateway-rpi4's window (01:00-05:00 Europe/Amsterdam).
    bench = await startRolloutBench({
      devices: [
        ...fleetOf(2),
        {
          id: 'phone',
          profile: 'gateway-rpi4',
          model: 'm',
          version: '1.0.0',
          tags: { fleet: 't' },
          conditions: { power: 'battery' },
        },
      ],
    })
    const rollout = bench.t.hub.rollouts.create(
      {
        model: 'm',
        version: '2.0.0',
        selector: 'tag=fleet=t',
        waves: [{ percent: 100 }],
        soakMs: 0,
        gates: { minRequests: 1 },
        schedule: { conditions: ['charging'] },
      },
      'test',
    )
    await bench.drive(() => false, { maxSteps: 3, stepMs: 60_000 }).catch(() => undefined)
    expect(bench.fleet.deploys).toHaveLength(0)
    expect(new Set(bench.t.hub.store.rollouts.devices(rollout.id).map((d) => d.status))).toEqual(
      new Set(['waiting_window']),
    )
    // Jump to 01:10 Amsterdam (00:10 UTC) the next night: the window is open.
    bench.clock.t = Date.parse('2026-01-11T00:10:00Z')
    await bench.drive(() => bench!.fleet.deploys.length === 2, { stepMs: 1000 })
    const st = Object.fromEntries(bench.t.hub.store.rollouts.devices(rollout.id).map((d) => [d.deviceId, d.status]))
    expect(st.phone).toBe('waiting_conditions')
    await bench.fleet.sims.get('phone')!.setConditions({ power: 'charging' })
    await sleep(100)
    await bench.drive(() => bench!.rollout(rollout.id).state === 'completed', { stepMs: 1000 })
    expect(bench.fleet.deploys.map((d) => d.deviceId).sort()).toEqual(['d00', 'd01', 'phone'])
    expect(bench.fleet.deploys.every((d) => new Date(d.at).getUTCHours() === 0)).toBe(true)
  })

  it("holds devices for their profile window's conditions as plain deploys do: waiting, not failed, the wave waits", async () => {
    // 03:10 UTC: inside phone-android-arm64's window (03:00 Europe/London, 180 min), which also asks for charging
    // [EF-8.16]; inside gateway-rpi4's (01:00-05:00 Europe/Amsterdam) too, which asks for nothing.
    const phone = (id: string, power: 'charging' | 'battery') => ({
      id,
      profile: 'phone-android-arm64',
      model: 'm',
      version: '1.0.0',
      tags: { fleet: 't' },
      conditions: { power },
    })
    bench = await startRolloutBench({
      devices: [...fleetOf(1), phone('ph-chg', 'charging'), phone('ph-bat', 'battery')],
      startMs: Date.parse('2026-01-16T03:10:00Z'),
      versions: ['1.0.0', '2.0.0', '3.0.0'],
    })
    const create = (version: string, schedule: Record<string, unknown>) =>
      bench!.t.hub.rollouts.create(
        {
          model: 'm',
          version,
          selector: 'tag=fleet=t',
          waves: [{ percent: 100 }],
          soakMs: 0,
          gates: { minRequests: 1, maxFailedDevices: 0 },
          schedule,
        },
        'test',
      )
    // The rollout asks for no condition itself: the profile's window does.
    const rollout = create('2.0.0', {})
    await bench.drive(() => bench!.fleet.deploys.length === 2, { stepMs: 1000 })
    await bench.drive(() => false, { maxSteps: 3, stepMs: 1000 }).catch(() => undefined)
    const status = () =>
      Object.fromEntries(bench!.t.hub.store.rollouts.devices(rollout.id).map((d) => [d.deviceId, d.status]))
    expect(status()).toEqual({ d00: 'activated', 'ph-chg': 'activated', 'ph-bat': 'waiting_conditions' })
    expect(bench.fleet.deploys.map((d) => d.deviceId).sort()).toEqual(['d00', 'ph-chg'])
    // Held is pending, not failed: the wave keeps deploying (no soak, no gate judged, nothing failed).
    const held = bench.rollout(rollout.id)
    expect(held).toMatchObject({ state: 'running', phase: 'deploy' })
    expect(bench.t.hub.store.rollouts.decisions(rollout.id).filter((d) => d.kind === 'gate')).toEqual([])
    await bench.fleet.sims.get('ph-bat')!.setConditions({ power: 'charging' })
    await sleep(100)
    await bench.drive(() => bench!.rollout(rollout.id).state === 'completed', { stepMs: 1000 })
    expect(status()['ph-bat']).toBe('activated')
    expect(bench.t.hub.store.rollouts.decisions(rollout.id).filter((d) => d.decision === 'fail')).toEqual([])

    // Without maintenance windows (the rollout's "now") the profile's conditions do not hold it either.
    await bench.fleet.sims.get('ph-bat')!.setConditions({ power: 'battery' })
    await sleep(100)
    const now = create('3.0.0', { maintenanceWindows: false })
    expect(now.state).toBe('running')
    const before = bench.fleet.deploys.length
    await bench.drive(() => bench!.fleet.deploys.length === before + 3, { stepMs: 1000 })
  })

  it('a cron start holds the rollout until its time; jitter spreads a wave; devices joining later are included', async () => {
    let k = 0
    bench = await startRolloutBench({ devices: fleetOf(4), random: () => [0.1, 0.5, 0.9, 0.3][k++ % 4] })
    const rollout = bench.t.hub.rollouts.create(
      {
        model: 'm',
        version: '2.0.0',
        selector: 'tag=fleet=t',
        waves: [{ percent: 100 }],
        soakMs: 0,
        gates: { minRequests: 1 },
        schedule: { start: '0 14 * * *', timezone: 'UTC', maintenanceWindows: false, jitterMs: 100_000 },
      },
      'test',
    )
    expect(rollout.state).toBe('scheduled')
    await bench.drive(() => bench!.rollout(rollout.id).state === 'running', { stepMs: 10 * 60_000 })
    expect(new Date(bench.clock.t).getUTCHours()).toBe(14)
    const started = bench.clock.t
    await bench.t.hub.rollouts.tick()
    const due = bench.t.hub.store.rollouts.devices(rollout.id).map((d) => d.dueAt! - started)
    expect(due.sort((x, y) => x - y)).toEqual([10_000, 30_000, 50_000, 90_000])
    // A device provisioned now, matching the selector, joins the running wave.
    const secret = await provision(bench.t.hub, 'late', 'gateway-rpi4', { fleet: 't' })
    const late = await startSimFleet({
      mqttUrl: bench.t.hub.mqttUrl,
      devices: [{ id: 'late', secret, profile: 'gateway-rpi4', model: 'm', version: '1.0.0' }],
      now: bench.clock.now,
    })
    await bench
      .drive(() => bench!.rollout(rollout.id).state === 'completed', { stepMs: 5000 })
      .finally(() => late.close())
    expect(late.deploys.map((d) => d.version)).toEqual(['2.0.0'])
    const devs = bench.t.hub.store.rollouts.devices(rollout.id)
    expect(devs.map((d) => d.deviceId)).toContain('late')
    const at = bench.fleet.deploys.map((d) => d.at - started).sort((x, y) => x - y)
    expect(at[0]).toBeGreaterThanOrEqual(10_000)
    expect(at[3]).toBeGreaterThanOrEqual(90_000)
  })

  it('a shadow stage stops a candidate that disagrees with the live version before anything is deployed', async () => {
    bench = await startRolloutBench({
      devices: fleetOf(10),
      behavior: (v) => ({ requests: 20, errors: 0, latencyMs: 1, agreement: v === '2.0.0' ? 0.6 : 1 }),
    })
    const rollout = bench.t.hub.rollouts.create(
      {
        model: 'm',
        version: '2.0.0',
        selector: 'tag=fleet=t',
        waves: [{ percent: 20 }, { percent: 100 }],
        soakMs: 30_000,
        shadow: { fraction: 0.25, soakMs: 60_000 },
        gates: { minRequests: 10, minShadowAgreement: 0.95 },
        onFail: 'rollback',
        schedule: noWindows,
      },
      'test',
    )
    await bench.drive(() => FINAL.has(bench!.rollout(rollout.id).state))
    expect(bench.rollout(rollout.id)).toMatchObject({ state: 'rolled_back', wave: 0 })
    expect(bench.rollout(rollout.id).reason).toMatch(/shadow gate failed: minShadowAgreement 0\.6/)
    expect(bench.fleet.shadows).toHaveLength(2) // the first wave only
    expect(bench.fleet.deploys).toHaveLength(0) // nothing was activated anywhere
    await sleep(200)
    expect([...bench.fleet.sims.values()].every((s) => s.state.shadow === undefined)).toBe(true) // candidates discarded
  })

  it('a shadow stage lets an agreeing candidate through to its deploy', async () => {
    bench = await startRolloutBench({
      devices: fleetOf(5),
      behavior: () => ({ requests: 20, errors: 0, latencyMs: 1, agreement: 0.9 }),
    })
    const rollout = bench.t.hub.rollouts.create(
      {
        model: 'm',
        version: '2.0.0',
        selector: 'tag=fleet=t',
        waves: [{ percent: 100 }],
        soakMs: 10_000,
        shadow: { fraction: 0.5, soakMs: 30_000 },
        gates: { minRequests: 10, minShadowAgreement: 0.85 },
        schedule: noWindows,
      },
      'test',
    )
    await bench.drive(() => bench!.rollout(rollout.id).state === 'completed')
    const pass = bench.t.hub.store.rollouts
      .decisions(rollout.id)
      .find((d) => d.decision === 'pass' && d.detail.stage === 'shadow')!
    expect(pass.detail.shadowAgreement).toBeCloseTo(0.9, 5)
    expect(bench.fleet.deploys).toHaveLength(5)
  })

  it('a shift of the confidence distribution fails its gate; approval between waves waits for an operator', async () => {
    bench = await startRolloutBench({
      devices: fleetOf(6),
      behavior: (v) => ({ requests: 20, errors: 0, latencyMs: 1, confidenceBin: v === '3.0.0' ? 3 : 9 }),
      versions: ['1.0.0', '2.0.0', '3.0.0'],
    })
    // 2.0.0 behaves like 1.0.0: wave 1 passes, then the rollout waits for approval.
    const ok = bench.t.hub.rollouts.create(
      {
        model: 'm',
        version: '2.0.0',
        selector: 'tag=fleet=t',
        waves: [{ count: 2 }, { percent: 100 }],
        soakMs: 30_000,
        approval: true,
        gates: { minRequests: 5 },
        schedule: noWindows,
      },
      'test',
    )
    await bench.drive(() => bench!.rollout(ok.id).state === 'awaiting_approval')
    expect(bench.fleet.deploys).toHaveLength(2)
    await bench.drive(() => false, { maxSteps: 3 }).catch(() => undefined)
    expect(bench.fleet.deploys).toHaveLength(2) // nothing moves without the approval
    bench.t.hub.rollouts.action(ok.id, 'approve', 'op')
    await bench.drive(() => bench!.rollout(ok.id).state === 'completed')
    expect(bench.fleet.deploys).toHaveLength(6)
    // 3.0.0 answers with much lower confidence: PSI against 2.0.0's bins fails the gate.
    const bad = bench.t.hub.rollouts.create(
      {
        model: 'm',
        version: '3.0.0',
        selector: 'tag=fleet=t',
        waves: [{ count: 2 }, { percent: 100 }],
        soakMs: 30_000,
        gates: { minRequests: 5 },
        schedule: noWindows,
      },
      'test',
    )
    await bench.drive(() => bench!.rollout(bad.id).state === 'paused')
    const fail = bench.t.hub.store.rollouts.decisions(bad.id).find((d) => d.decision === 'fail')!
    expect(fail.detail.failed).toEqual([expect.objectContaining({ gate: 'maxConfidencePsi', threshold: 0.25 })])
    expect((fail.detail.values as { confidencePsi: number }).confidencePsi).toBeGreaterThan(5)
    expect((fail.detail.values as { confidenceShift: number }).confidenceShift).toBeCloseTo(-0.6, 5)
  })

  it('the confidence gate is one-sided: a version that answers with more confidence passes it [EF-8.5]', async () => {
    bench = await startRolloutBench({
      devices: fleetOf(4),
      behavior: (v) => ({ requests: 20, errors: 0, latencyMs: 1, confidenceBin: v === '2.0.0' ? 9 : 4 }),
      versions: ['1.0.0', '2.0.0'],
    })
    const rollout = bench.t.hub.rollouts.create(
      {
        model: 'm',
        version: '2.0.0',
        selector: 'tag=fleet=t',
        waves: [{ count: 2 }, { percent: 100 }],
        soakMs: 30_000,
        gates: { minRequests: 5 },
        schedule: noWindows,
      },
      'test',
    )
    await bench.drive(() => bench!.rollout(rollout.id).state === 'completed')
    const pass = bench.t.hub.store.rollouts.decisions(rollout.id).find((d) => d.decision === 'pass')!
    // The shift is large (PSI far above 0.25), but towards higher confidence.
    expect((pass.detail as { confidencePsi: number }).confidencePsi).toBeGreaterThan(5)
    expect((pass.detail as { confidenceShift: number }).confidenceShift).toBeCloseTo(0.5, 5)
    expect(bench.fleet.deploys).toHaveLength(4)
  })
})
