// Agent rollouts and lost agent updates [EF-8.17, EF-11.9], with real
// packages, a real hub and agents installed from the linux-x64 package into
// empty folders, each run by the package's launcher (--supervise): a
// two-wave agent rollout that completes; a rollout of an agent that crashes
// at start, which pauses after its first wave with that device back on the
// previous agent and the second wave's device never sent anything; an
// agent-update sent to a device that was offline, delivered when it comes
// back, and resent while it works without being run twice.
import type { ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { api, cli, startHub, stopProcess, waitFor } from '../support/fleet.mjs'
import {
  CRASHING,
  agentPackages,
  agentUpdate,
  eventFor,
  events,
  slotState,
  view,
  type Device,
} from './fixtures/agent-packages.js'

const tmp = mkdtempSync(join(tmpdir(), 'ef-agent-rollout-e2e-'))
type Hub = Awaited<ReturnType<typeof startHub>>
const { buildPackage, derivedPackage, install, device, supervised } = agentPackages(tmp)

interface RolloutView {
  rollout: { id: string; state: string; wave: number; reason: string | null; model: string; version: string }
  decisions: { kind: string; decision: string; detail: Record<string, unknown> }[]
}
interface RolloutDevice {
  deviceId: string
  status: string
  wave: number | null
  code: string | null
}

describe('agent rollouts', () => {
  let hub: Hub
  let base = ''
  const running: ChildProcess[] = []
  const fleet: Device[] = []

  /** Creates an agent rollout over the two rollout devices: wave 1 one device, wave 2 all, a 2 s soak. */
  async function rollout(version: string): Promise<string> {
    const created = await cli([
      'rollout',
      'create',
      '--agent',
      version,
      '--selector',
      `devices=${fleet.map((d) => d.id).join(',')}`,
      '--waves',
      '1,100%',
      '--soak',
      '2s',
      '--no-windows',
      '--hub',
      hub.httpUrl,
      '--json',
    ])
    expect(created.code, created.err + created.out).toBe(0)
    return (JSON.parse(created.out) as RolloutView).rollout.id
  }

  const show = async (id: string) => (await api(hub.httpUrl, 'GET', `/api/v1/rollouts/${id}`)) as RolloutView
  const members = async (id: string) =>
    ((await api(hub.httpUrl, 'GET', `/api/v1/rollouts/${id}/devices`)) as { items: RolloutDevice[] }).items

  beforeAll(async () => {
    const v010 = await buildPackage('linux-x64', '0.1.0')
    const v020 = await buildPackage('linux-x64', '0.2.0')
    const v030 = await derivedPackage(v020, '0.3.0', CRASHING, 'crashing-0.3.0')
    base = install(v010, 'base')
    // Resends of idle open commands every 2 s: the lost-update test sees them arrive while the device works.
    hub = await startHub({ dataDir: join(tmp, 'hub'), extraArgs: ['--reconcile-ms', '2000'] })
    for (const [file, version] of [
      [v010, '0.1.0'],
      [v020, '0.2.0'],
      [v030, '0.3.0'],
    ]) {
      const r = await cli(['agent', 'release', file, '--version', version, '--hub', hub.httpUrl, '--json'])
      expect(r.code, r.err).toBe(0)
    }
    for (const id of ['ar-1', 'ar-2']) {
      const d = await device(hub, id)
      fleet.push(d)
      running.push(supervised(hub, base, d))
    }
    for (const d of fleet)
      await waitFor(async () => (await view(hub, d.id)).agentVersion === '0.1.0', { what: `${d.id} on 0.1.0` })
  }, 300_000)

  afterAll(async () => {
    await Promise.all(running.map((p) => stopProcess(p)))
    await hub?.stop()
    rmSync(tmp, { recursive: true, force: true })
  })

  it('a two-wave agent rollout completes: each wave waits for its devices to confirm the new agent', async () => {
    const id = await rollout('0.2.0')
    await waitFor(async () => (await show(id)).rollout.state === 'completed', {
      timeoutMs: 150_000,
      what: 'agent rollout 0.2.0 completed',
    })
    for (const d of fleet) {
      expect((await view(hub, d.id)).agentVersion).toBe('0.2.0')
      expect(slotState(d)).toEqual({ v: 1, current: 'a' })
    }
    const view_ = await show(id)
    expect(view_.rollout).toMatchObject({ model: 'edgefleet-agent', version: '0.2.0' })
    const waves = view_.decisions.filter((x) => x.kind === 'wave').map((x) => x.decision)
    // Wave 1 deployed and passed, wave 2 started, deployed, and the rollout completed.
    expect(waves).toEqual(expect.arrayContaining(['deployed', 'start', 'completed']))
    expect(view_.decisions.filter((x) => x.kind === 'gate' && x.decision === 'pass')).toHaveLength(2)
    expect((await members(id)).map((x) => x.status)).toEqual(['activated', 'activated'])
  }, 180_000)

  it('a rollout of an agent that crashes at start pauses after wave 1, that device back on 0.2.0', async () => {
    const id = await rollout('0.3.0')
    await waitFor(async () => (await show(id)).rollout.state === 'paused', {
      timeoutMs: 120_000,
      what: 'agent rollout 0.3.0 paused',
    })
    const paused = await show(id)
    expect(paused.rollout.wave).toBe(0)
    expect(paused.rollout.reason).toContain('maxFailedDevices')
    const fail = paused.decisions.find((x) => x.kind === 'gate' && x.decision === 'fail')
    expect(fail?.detail.action).toBe('pause')
    const list = await members(id)
    const first = list.find((x) => x.wave === 0)
    const second = list.find((x) => x.deviceId !== first?.deviceId)
    expect(first).toMatchObject({ status: 'failed', code: 'EF_ERR_AGENT_ROLLED_BACK' })
    // The second wave's device was never sent the broken agent.
    expect(second?.status).toBe('pending')
    for (const d of fleet)
      await waitFor(async () => (await view(hub, d.id)).online && (await view(hub, d.id)).agentVersion === '0.2.0', {
        what: `${d.id} on 0.2.0`,
      })
    const firstDevice = fleet.find((d) => d.id === first?.deviceId)
    expect(firstDevice && slotState(firstDevice)).toEqual({ v: 1, current: 'a' })
  }, 150_000)

  it('an older agent needs --rollback: EF_ERR_ROLLOUT_DOWNGRADE without it', async () => {
    const refused = await cli([
      'rollout',
      'create',
      '--agent',
      '0.1.0',
      '--selector',
      'devices=ar-1',
      '--hub',
      hub.httpUrl,
      '--json',
    ])
    expect(refused.code).not.toBe(0)
    expect(refused.err + refused.out).toContain('EF_ERR_ROLLOUT_DOWNGRADE')
    const unknown = await cli([
      'rollout',
      'create',
      '--agent',
      '9.9.9',
      '--selector',
      'devices=ar-1',
      '--hub',
      hub.httpUrl,
    ])
    expect(unknown.err + unknown.out).toContain('EF_ERR_AGENT_RELEASE_NOT_FOUND')
  })

  it('an agent update sent while the device was offline reaches it when it connects, and runs once', async () => {
    const late = await device(hub, 'ar-late')
    const sent = await agentUpdate(hub, ['--target', `device=${late.id}`, '--version', '0.2.0'])
    // Nothing runs the device yet: the command waits on the hub.
    await new Promise((r) => setTimeout(r, 3000))
    expect(await events(hub, late.id)).toEqual([])
    running.push(supervised(hub, base, late))
    const ev = await eventFor(hub, late.id, sent.cmdId, ['agent_updated', 'agent_rolled_back', 'rejected'], 120_000)
    expect(ev).toMatchObject({ kind: 'agent_updated', version: '0.2.0' })
    await waitFor(async () => (await view(hub, late.id)).agentVersion === '0.2.0', { what: 'ar-late on 0.2.0' })
    // Resent on connect and every 2 s while open, it was staged once: one download, one hand-over, slot b never used.
    const log = (await events(hub, late.id)).filter((e) => e.cmdId === sent.cmdId)
    expect(log.filter((e) => e.kind === 'downloaded')).toHaveLength(1)
    expect(slotState(late)).toEqual({ v: 1, current: 'a' })
    expect(existsSync(join(late.data, 'agent-slots', 'b'))).toBe(false)
  }, 180_000)
})
