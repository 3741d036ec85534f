// Plain deploys honour maintenance windows and device conditions [EF-8.16],
// with a real hub process and real agent processes. The hub reads a profiles
// folder written at test time: gateway-rpi4's window starts at a whole minute
// half an hour ahead (UTC), the phone's window is always open but asks for
// `charging`. The window opening is then reached without waiting half an
// hour: the hub is restarted under libfaketime with its clock set a few
// seconds before the window start, which also shows the held assignment
// survives a restart (it lives in SQLite). Agents keep the real clock.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ROOT, MODELS, api, cli, startFleet, startHub, waitAllOnline, waitFor } from '../support/fleet.mjs'
import { freePort } from '../support/mosquitto.mjs'

const FAKETIME_LIB = '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1'
const MINUTE = 60_000

type Hub = Awaited<ReturnType<typeof startHub>>
interface Progress {
  deviceId: string
  state: string
  code: string | null
  updatedAt: number
  windowOpensAt?: number | null
}

/** A copy of the repository's profiles with the window of gateway-rpi4 at `opensAt` (UTC) and the phone's always open. */
function writeProfiles(dir: string, opensAt: Date): void {
  mkdirSync(dir, { recursive: true })
  const source = join(ROOT, 'firmware-profiles')
  for (const file of readdirSync(source).filter((f) => f.endsWith('.json') && !f.endsWith('.schema.json'))) {
    const profile = JSON.parse(readFileSync(join(source, file), 'utf8')) as {
      id: string
      maintenanceWindow: { cron: string; durationMinutes: number; timezone: string; conditions?: string[] }
    }
    if (profile.id === 'gateway-rpi4')
      profile.maintenanceWindow = {
        cron: `${opensAt.getUTCMinutes()} ${opensAt.getUTCHours()} * * *`,
        durationMinutes: 10,
        timezone: 'UTC',
      }
    if (profile.id === 'phone-android-arm64')
      profile.maintenanceWindow = { cron: '* * * * *', durationMinutes: 1, timezone: 'UTC', conditions: ['charging'] }
    writeFileSync(join(dir, file), JSON.stringify(profile))
  }
}

describe('plain deploys: maintenance windows and conditions, real hub and agents [EF-8.16]', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'ef-window-'))
  const profilesDir = join(tmp, 'profiles')
  // A whole minute at least 30 minutes ahead: the window stays closed for the whole first part.
  const opensAt = new Date(Math.ceil((Date.now() + 30 * MINUTE) / MINUTE) * MINUTE)
  let hub: Hub
  let ports: { mqtt: number; http: number }
  let agents: Awaited<ReturnType<typeof startFleet>> = []
  let heldForWindow = ''

  const launchHub = (env: Record<string, string> = {}) =>
    startHub({
      dataDir: join(tmp, 'hub'),
      mqttPort: ports.mqtt,
      httpPort: ports.http,
      windows: true,
      env,
      extraArgs: ['--profiles', profilesDir, '--hold-tick-ms', '300'],
    })
  const progress = async (id: string): Promise<Progress[]> =>
    (await api(hub.httpUrl, 'GET', `/api/v1/deployments/${id}`)).devices as Progress[]
  const deviceState = async (id: string, device: string) => (await progress(id)).find((x) => x.deviceId === device)

  beforeAll(async () => {
    expect(existsSync(FAKETIME_LIB), `${FAKETIME_LIB} (scripts/bootstrap.sh --test-deps installs faketime)`).toBe(true)
    writeProfiles(profilesDir, opensAt)
    ports = { mqtt: await freePort(), http: await freePort() }
    hub = await launchHub()
    agents = await startFleet(
      hub,
      [
        { id: 'gw', profile: 'gateway-rpi4' },
        { id: 'ph', profile: 'phone-android-arm64' },
      ],
      { tmp },
    )
    await waitAllOnline(hub)
    for (const [file, version] of [
      [MODELS.wakeHello, '1.0.0'],
      [MODELS.wakeNamaste, '2.0.0'],
    ]) {
      const added = await cli([
        'model',
        'add',
        file,
        '--name',
        'm',
        '--version',
        version,
        '--precision',
        'fp32',
        '--hub',
        hub.httpUrl,
      ])
      expect(added.code, added.err).toBe(0)
    }
  })

  afterAll(async () => {
    await Promise.all(agents.map((a) => a.stop()))
    await hub?.stop()
    rmSync(tmp, { recursive: true, force: true })
  })

  it('deploy --wait holds a device outside its window, shows when it opens, and exits 3 at --timeout', async () => {
    const result = await cli([
      'deploy',
      'm@1.0.0',
      '--target',
      'device=gw',
      '--wait',
      '--timeout',
      '2',
      '--json',
      '--hub',
      hub.httpUrl,
    ])
    expect(result.code, result.err).toBe(3)
    const out = JSON.parse(result.out) as { deployment: { id: string }; devices: Progress[]; pending: string[] }
    heldForWindow = out.deployment.id
    expect(out.pending).toEqual(['gw'])
    expect(out.devices[0]).toMatchObject({ state: 'waiting_window', windowOpensAt: opensAt.getTime() })
    expect(result.err).toContain(`waiting for a maintenance window: gw (opens ${opensAt.toISOString()})`)
  })

  it('a device whose state lacks the profile condition waits for it, and gets the deploy once it shows', async () => {
    const created = await api(hub.httpUrl, 'POST', '/api/v1/deployments', {
      model: 'm',
      version: '1.0.0',
      target: 'device=ph',
    })
    expect(created.devices[0]).toMatchObject({ state: 'waiting_conditions' })
    await new Promise((r) => setTimeout(r, 1500)) // several hold ticks: still held
    expect((await deviceState(created.deployment.id, 'ph'))?.state).toBe('waiting_conditions')
    await api(hub.httpUrl, 'POST', '/api/v1/devices/ph/conditions', { power: 'charging' })
    await waitFor(async () => (await deviceState(created.deployment.id, 'ph'))?.state === 'activated', {
      timeoutMs: 60_000,
      what: 'ph activated after it started charging',
    })
  })

  it('--now sends at once and supersedes the held deployment of the model', async () => {
    await api(hub.httpUrl, 'POST', '/api/v1/devices/ph/conditions', { power: 'battery' })
    await waitFor(
      async () => (await api(hub.httpUrl, 'GET', '/api/v1/devices/ph/health')).conditions.power === 'battery',
      { what: 'ph on battery' },
    )
    const held = await api(hub.httpUrl, 'POST', '/api/v1/deployments', {
      model: 'm',
      version: '2.0.0',
      target: 'device=ph',
    })
    expect(held.devices[0].state).toBe('waiting_conditions')
    const result = await cli([
      'deploy',
      'm@2.0.0',
      '--target',
      'device=ph',
      '--now',
      '--wait',
      '--timeout',
      '60',
      '--hub',
      hub.httpUrl,
    ])
    expect(result.code, result.err + result.out).toBe(0)
    expect(await deviceState(held.deployment.id, 'ph')).toMatchObject({
      state: 'failed',
      code: 'EF_ERR_DEPLOY_SUPERSEDED',
    })
  })

  it('after a restart the held deploy is sent when the window opens at the hub clock', async () => {
    await hub.stop()
    // The restarted hub's clock: some seconds before the window start, running at normal speed.
    const offsetS = Math.floor((opensAt.getTime() - 12_000 - Date.now()) / 1000)
    hub = await launchHub({
      LD_PRELOAD: FAKETIME_LIB,
      FAKETIME: `+${offsetS}`,
      FAKETIME_DONT_FAKE_MONOTONIC: '1',
    })
    const beforeWindow = await deviceState(heldForWindow, 'gw')
    // Still held while the hub's clock is before the window (a restart slower than ~10 s leaves no time to look).
    if (Date.now() + offsetS * 1000 < opensAt.getTime() - 1000) expect(beforeWindow?.state).toBe('waiting_window')
    await waitFor(async () => (await deviceState(heldForWindow, 'gw'))?.state === 'activated', {
      timeoutMs: 90_000,
      what: 'gw activated once its window opened',
    })
    const done = await deviceState(heldForWindow, 'gw')
    // Its last change is stamped with the hub's (faked) clock: inside the window, not before it.
    expect(done?.updatedAt).toBeGreaterThanOrEqual(opensAt.getTime())
    expect(done?.updatedAt).toBeLessThan(opensAt.getTime() + 10 * MINUTE)
  })
})
