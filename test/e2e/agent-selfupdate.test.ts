// Agent self-update over the fleet channel [EF-11.3 - EF-11.8], with real
// packages built by the packaging code, a real hub and agents installed from
// the linux-x64 package into an empty folder, run by the package's launcher:
// one update to three devices is one chunk broadcast, each chunk published
// once (a byte count, EF-11.4), and an agent killed halfway through the
// transfer resumes from its disk and ends on the new agent;
// an update to a new version (the served model survives), a new agent that
// crashes at start rolled back within its deadline, a wrong-architecture
// package and a downgrade refused before anything is written, bad releases
// refused by the hub, and kill -9 at each step of a self-update, restarted
// the way systemd's Restart=always would: the device always comes back on a
// working agent.
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { create as tarCreate } from 'tar'
import { DEFAULT_CHUNK_SIZE } from '@edgefleet/shared'
import { MODELS, api, cli, startHub, stopProcess, waitFor, wakeInput } from '../support/fleet.mjs'
import {
  CRASHING,
  HUNG,
  SILENT,
  agentArgs,
  agentPackages,
  agentUpdate,
  eventFor,
  portWatcher,
  slotState,
  view,
  type Device,
  type EventRow,
} from './fixtures/agent-packages.js'

/** The hub's distribution counters (GET /api/v1/hub). */
interface Stats {
  broadcastChunks: number
  broadcastBytes: number
  repairChunks: number
  repairBytes: number
}

const tmp = mkdtempSync(join(tmpdir(), 'ef-selfupdate-e2e-'))
type Hub = Awaited<ReturnType<typeof startHub>>
const { buildPackage, derivedPackage, install, cleanEnv, device, supervised } = agentPackages(tmp)

describe('agent self-update', () => {
  let hub: Hub
  const files: Record<string, string> = {}
  let base = ''
  const running: ChildProcess[] = []
  const stops: (() => Promise<void>)[] = []

  beforeAll(async () => {
    files.v010 = await buildPackage('linux-x64', '0.1.0')
    files.v020 = await buildPackage('linux-x64', '0.2.0')
    files.armv7 = await buildPackage('linux-armv7', '0.2.0')
    files.v030 = await derivedPackage(files.v020, '0.3.0', CRASHING, 'crashing-0.3.0')
    files.v040 = await derivedPackage(files.v020, '0.4.0', SILENT, 'silent-0.4.0')
    files.v050 = await derivedPackage(files.v020, '0.5.0', HUNG, 'hung-0.5.0')
    base = install(files.v010, 'base')
    hub = await startHub({ dataDir: join(tmp, 'hub') })
    for (const [file, version] of [
      [files.v010, '0.1.0'],
      [files.v020, '0.2.0'],
      [files.armv7, '0.2.0'],
      [files.v030, '0.3.0'],
      [files.v040, '0.4.0'],
      [files.v050, '0.5.0'],
    ]) {
      const r = await cli(['agent', 'release', file, '--version', version, '--hub', hub.httpUrl, '--json'])
      expect(r.code, r.err).toBe(0)
      expect(JSON.parse(r.out).created).toBe(true)
    }
    const add = await cli(
      ['model', 'add', MODELS.wakeHello, '--name', 'wake', '--version', '1.0.0', '--precision', 'fp32'].concat([
        '--hub',
        hub.httpUrl,
      ]),
    )
    expect(add.code, add.err).toBe(0)
  }, 300_000)

  afterAll(async () => {
    await Promise.all(running.map((p) => stopProcess(p)))
    await Promise.all(stops.map((stop) => stop()))
    await hub?.stop()
    rmSync(tmp, { recursive: true, force: true })
  })

  describe('over the chunk broadcast, as model builds travel [EF-11.4, EF-2.7]', () => {
    const wave: Device[] = []
    let killDevice: Device
    const mine: ChildProcess[] = []
    const stats = async (): Promise<Stats> =>
      ((await api(hub.httpUrl, 'GET', '/api/v1/hub')) as { distribution: Stats }).distribution
    const downloaded = async (id: string, cmdId: string) =>
      (await eventFor(hub, id, cmdId, ['downloaded'])) as EventRow & { receivedBytes?: number }
    const update = async (target: string): Promise<{ device: string; cmdId: string }[]> => {
      const r = await cli(['agent', 'update', '--target', target, '--version', '0.2.0', '--hub', hub.httpUrl, '--json'])
      expect(r.code, r.err + r.out).toBe(0)
      return (JSON.parse(r.out) as { sent: { device: string; cmdId: string }[] }).sent
    }

    beforeAll(async () => {
      for (const id of ['bc-1', 'bc-2', 'bc-3']) wave.push(await device(hub, id, 'industrial-x86', { group: 'wave' }))
      killDevice = await device(hub, 'bc-kill', 'industrial-x86', { group: 'kill' })
      // Every device starts at once (the starts dominate the time); each test updates its own group.
      for (const d of wave) mine.push(supervised(hub, base, d))
      // Its old agent kill -9s itself once half the package is on disk; the supervisor starts it again.
      mine.push(supervised(hub, base, killDevice, { EF_FAULT_KILL_AT: 'agent-receiving' }))
      for (const d of [...wave, killDevice])
        await waitFor(async () => (await view(hub, d.id)).agentVersion === '0.1.0', { what: `${d.id} on 0.1.0` })
    }, 120_000)

    afterAll(async () => {
      await Promise.all(mine.map((p) => stopProcess(p)))
    })

    it('three devices get one package: each chunk published once, no repairs, each device receives it exactly once', async () => {
      const size = statSync(files.v020).size
      const chunks = Math.ceil(size / DEFAULT_CHUNK_SIZE)
      const before = await stats()
      const sent = await update('tag=group=wave')
      expect(sent.map((s) => s.device).sort()).toEqual(['bc-1', 'bc-2', 'bc-3'])
      for (const s of sent) {
        const ev = await eventFor(hub, s.device, s.cmdId, ['agent_updated', 'agent_rolled_back', 'rejected'], 90_000)
        expect(ev).toMatchObject({ kind: 'agent_updated', version: '0.2.0' })
        // It came by the broadcast, not by HTTP, and nothing arrived twice.
        expect((await downloaded(s.device, s.cmdId)).message).toBe(`received from MQTT ${size} B`)
      }
      for (const d of wave)
        await waitFor(async () => (await view(hub, d.id)).agentVersion === '0.2.0', { what: `${d.id} on 0.2.0` })
      const after = await stats()
      expect(after.broadcastChunks - before.broadcastChunks).toBe(chunks)
      expect(after.broadcastBytes - before.broadcastBytes).toBe(size)
      expect(after.repairChunks - before.repairChunks).toBe(0)
      console.log(JSON.stringify({ packageBytes: size, chunks, devices: wave.length, ...after }))
    }, 150_000)

    it('an agent killed halfway through the transfer resumes from its disk after the restart and ends on the new agent', async () => {
      const size = statSync(files.v020).size
      const before = await stats()
      // The first wave's broadcast is over: this is a session of its own.
      const [sent] = await update('tag=group=kill')
      const ev = await eventFor(
        hub,
        killDevice.id,
        sent.cmdId,
        ['agent_updated', 'agent_rolled_back', 'rejected'],
        90_000,
      )
      expect(ev).toMatchObject({ kind: 'agent_updated', version: '0.2.0' })
      await waitFor(async () => (await view(hub, killDevice.id)).agentVersion === '0.2.0', { what: 'bc-kill on 0.2.0' })
      // The `downloaded` event is the restarted agent's: it fetched only what the killed one had not written.
      const resumed = (await downloaded(killDevice.id, sent.cmdId)).receivedBytes ?? size
      expect(resumed).toBeGreaterThan(0)
      expect(resumed).toBeLessThan(size)
      const after = await stats()
      const moved = after.broadcastBytes - before.broadcastBytes + (after.repairBytes - before.repairBytes)
      // The package, plus again what went out while the agent was dead: never twice over.
      expect(moved).toBeLessThan(2 * size)
      console.log(JSON.stringify({ packageBytes: size, resumedBytes: resumed, hubBytes: moved }))
    }, 150_000)
  })

  describe('supervisor-less mode (edgefleet-launch.mjs --supervise)', () => {
    let selfDevice: Device
    let port: () => number

    beforeAll(async () => {
      selfDevice = await device(hub, 'su-1')
      const proc = supervised(hub, base, selfDevice)
      running.push(proc)
      port = portWatcher(proc)
      await waitFor(async () => (await view(hub, selfDevice.id)).agentVersion === '0.1.0', { what: 'su-1 on 0.1.0' })
      const dep = await cli([
        'deploy',
        'wake@1.0.0',
        '--target',
        `device=${selfDevice.id}`,
        '--wait',
        '--timeout',
        '120',
        '--hub',
        hub.httpUrl,
      ])
      expect(dep.code, dep.err + dep.out).toBe(0)
    }, 180_000)

    it('updates to 0.2.0: hands over, the new agent confirms, reports agentVersion 0.2.0 and still serves the model', async () => {
      const sent = await agentUpdate(hub, [
        '--target',
        `device=${selfDevice.id}`,
        '--version',
        '0.2.0',
        '--deadline-ms',
        '60000',
      ])
      const ev = await eventFor(hub, selfDevice.id, sent.cmdId, ['agent_updated', 'agent_rolled_back', 'rejected'])
      expect(ev).toMatchObject({ kind: 'agent_updated', version: '0.2.0' })
      await waitFor(async () => (await view(hub, selfDevice.id)).agentVersion === '0.2.0', {
        what: 'agentVersion 0.2.0',
      })
      expect(slotState(selfDevice)).toEqual({ v: 1, current: 'a' })
      const r = await api(`http://127.0.0.1:${port()}`, 'POST', '/v1/models/wake/infer', { inputs: wakeInput(1) })
      expect(r.version).toBe('1.0.0')
      const list = await cli(['devices', 'list', '--hub', hub.httpUrl])
      expect(list.out).toMatch(/su-1.*0\.2\.0/)
    }, 120_000)

    it('a new agent that crashes at start is rolled back within its deadline and the device reports it', async () => {
      const t0 = Date.now()
      const sent = await agentUpdate(hub, [
        '--target',
        `device=${selfDevice.id}`,
        '--version',
        '0.3.0',
        '--deadline-ms',
        '30000',
      ])
      const ev = await eventFor(hub, selfDevice.id, sent.cmdId, ['agent_updated', 'agent_rolled_back'], 60_000)
      const elapsedMs = Date.now() - t0
      expect(ev).toMatchObject({ kind: 'agent_rolled_back', code: 'EF_ERR_AGENT_ROLLED_BACK', version: '0.3.0' })
      expect(ev.message).toContain('0.2.0')
      expect(elapsedMs).toBeLessThan(30_000 + 10_000)
      await waitFor(
        async () =>
          (await view(hub, selfDevice.id)).online && (await view(hub, selfDevice.id)).agentVersion === '0.2.0',
        {
          what: 'back on 0.2.0',
        },
      )
      expect(slotState(selfDevice)).toEqual({ v: 1, current: 'a' })
      console.log(JSON.stringify({ crashRollbackMs: elapsedMs }))
    }, 120_000)

    it('a new agent that never connects is rolled back by the watchdog at its deadline', async () => {
      const t0 = Date.now()
      const sent = await agentUpdate(hub, [
        '--target',
        `device=${selfDevice.id}`,
        '--version',
        '0.4.0',
        '--deadline-ms',
        '10000',
      ])
      const ev = await eventFor(hub, selfDevice.id, sent.cmdId, ['agent_updated', 'agent_rolled_back'], 60_000)
      const elapsedMs = Date.now() - t0
      expect(ev).toMatchObject({ kind: 'agent_rolled_back', code: 'EF_ERR_AGENT_ROLLED_BACK', version: '0.4.0' })
      expect(ev.message).toContain('did not confirm within 10000 ms')
      await waitFor(async () => (await view(hub, selfDevice.id)).agentVersion === '0.2.0', { what: 'back on 0.2.0' })
      console.log(JSON.stringify({ silentRollbackMs: elapsedMs }))
    }, 120_000)

    it('a package for another architecture is refused before anything is written (EF_ERR_AGENT_ARCH)', async () => {
      const before = readdirSync(join(selfDevice.data, 'agent-slots')).sort()
      const sent = await agentUpdate(hub, [
        '--target',
        `device=${selfDevice.id}`,
        '--version',
        '0.2.0',
        '--arch',
        'linux-armv7',
      ])
      const ev = await eventFor(hub, selfDevice.id, sent.cmdId, ['rejected', 'staged'])
      expect(ev).toMatchObject({ kind: 'rejected', code: 'EF_ERR_AGENT_ARCH' })
      expect(readdirSync(join(selfDevice.data, 'agent-slots')).sort()).toEqual(before)
      expect(readdirSync(join(selfDevice.data, 'agent-slots', 'incoming'))).toEqual([])
    }, 60_000)

    it('an older agent needs a signed rollback: refused without --rollback (EF_ERR_AGENT_DOWNGRADE), installed with it', async () => {
      const refused = await agentUpdate(hub, ['--target', `device=${selfDevice.id}`, '--version', '0.1.0'])
      expect(await eventFor(hub, selfDevice.id, refused.cmdId, ['rejected', 'staged'])).toMatchObject({
        kind: 'rejected',
        code: 'EF_ERR_AGENT_DOWNGRADE',
      })
      const sent = await agentUpdate(hub, ['--target', `device=${selfDevice.id}`, '--version', '0.1.0', '--rollback'])
      expect(await eventFor(hub, selfDevice.id, sent.cmdId, ['agent_updated', 'agent_rolled_back'])).toMatchObject({
        kind: 'agent_updated',
        version: '0.1.0',
      })
      await waitFor(async () => (await view(hub, selfDevice.id)).agentVersion === '0.1.0', {
        what: 'agentVersion 0.1.0',
      })
    }, 120_000)
  })

  it("a new agent whose event loop hangs is rolled back by the launcher's loop watchdog, long before its deadline", async () => {
    const hangDevice = await device(hub, 'su-hang')
    // A 3 s threshold (default 20 s) keeps the test short; the deadline is a minute.
    running.push(supervised(hub, base, hangDevice, { EF_LOOP_TRIAL_MS: '3000' }))
    await waitFor(async () => (await view(hub, hangDevice.id)).agentVersion === '0.1.0', { what: 'su-hang on 0.1.0' })
    const t0 = Date.now()
    const sent = await agentUpdate(hub, [
      '--target',
      `device=${hangDevice.id}`,
      '--version',
      '0.5.0',
      '--deadline-ms',
      '60000',
    ])
    const ev = await eventFor(hub, hangDevice.id, sent.cmdId, ['agent_updated', 'agent_rolled_back'], 60_000)
    const elapsedMs = Date.now() - t0
    expect(ev).toMatchObject({ kind: 'agent_rolled_back', code: 'EF_ERR_AGENT_ROLLED_BACK', version: '0.5.0' })
    expect(ev.message).toContain('blocked its event loop')
    expect(elapsedMs).toBeLessThan(40_000)
    await waitFor(async () => (await view(hub, hangDevice.id)).agentVersion === '0.1.0', { what: 'back on 0.1.0' })
    expect(slotState(hangDevice)).toEqual({ v: 1, current: 'base' })
    console.log(JSON.stringify({ hungRollbackMs: elapsedMs }))
  }, 120_000)

  describe('bad releases and requests get stable codes', () => {
    /** Exit code and everything printed (with --json an error is printed on stdout). */
    const release = async (file: string, version: string) => {
      const r = await cli(['agent', 'release', file, '--version', version, '--hub', hub.httpUrl, '--json'])
      return { ...r, err: r.err + r.out }
    }

    it('a version other than the package says: EF_ERR_AGENT_VERSION_MISMATCH', async () => {
      const r = await release(files.v020, '9.9.9')
      expect(r.code).not.toBe(0)
      expect(r.err).toContain('EF_ERR_AGENT_VERSION_MISMATCH')
    })

    it('not a package (random bytes, a tarball without edgefleet-package.json): EF_ERR_AGENT_PACKAGE_INVALID', async () => {
      const junk = join(tmp, 'junk.tar.gz')
      writeFileSync(junk, Buffer.from('not a tarball at all'))
      expect((await release(junk, '0.2.0')).err).toContain('EF_ERR_AGENT_PACKAGE_INVALID')
      const empty = join(tmp, 'empty')
      mkdirSync(join(empty, 'edgefleet-agent-0.2.0-linux-x64'), { recursive: true })
      writeFileSync(join(empty, 'edgefleet-agent-0.2.0-linux-x64', 'README'), 'hello')
      await tarCreate({ gzip: true, file: join(tmp, 'nomanifest.tar.gz'), cwd: empty }, [
        'edgefleet-agent-0.2.0-linux-x64',
      ])
      expect((await release(join(tmp, 'nomanifest.tar.gz'), '0.2.0')).err).toContain('EF_ERR_AGENT_PACKAGE_INVALID')
    })

    it('the same version and arch with other contents: EF_ERR_AGENT_RELEASE_EXISTS; the same file again: no-op', async () => {
      const other = await derivedPackage(files.v020, '0.2.0', CRASHING, 'other-0.2.0')
      expect((await release(other, '0.2.0')).err).toContain('EF_ERR_AGENT_RELEASE_EXISTS')
      const again = await release(files.v020, '0.2.0')
      expect(again.code, again.err).toBe(0)
      expect(JSON.parse(again.out).created).toBe(false)
    })

    it('an update to an unregistered version: EF_ERR_AGENT_RELEASE_NOT_FOUND; a package download without device credentials: 401', async () => {
      const r = await cli(['agent', 'update', '--target', 'device=su-1', '--version', '7.7.7', '--hub', hub.httpUrl])
      expect(r.code).not.toBe(0)
      expect(r.err + r.out).toContain('EF_ERR_AGENT_RELEASE_NOT_FOUND')
      const res = await fetch(`${hub.httpUrl}/api/v1/agent-releases/0.2.0/linux-x64/package`)
      expect(res.status).toBe(401)
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('EF_ERR_AUTH_BAD_CREDENTIALS')
    })
  })

  describe('kill -9 at each step of a self-update (systemd-style restarts)', () => {
    const steps = ['agent-downloaded', 'agent-unpacked', 'agent-staged', 'agent-confirming']

    /**
     * Runs the launcher as the unit does (no --supervise) and, like
     * Restart=always, starts it again after every exit; starts carry the
     * fault (the process kills itself at `step`) until one was killed.
     */
    function unitLike(d: Device, fault: Record<string, string>) {
      let stopped = false
      let current: ChildProcess | undefined
      let starts = 0
      let killed = false
      let port = () => 0
      const start = () => {
        starts++
        const proc = spawn('node', [join(base, 'dist', 'edgefleet-launch.mjs'), ...agentArgs(hub, d), '--json'], {
          cwd: base,
          env: cleanEnv(killed ? {} : fault),
          stdio: ['ignore', 'pipe', 'inherit'],
        })
        current = proc
        port = portWatcher(proc)
        proc.once('exit', (_code, signal) => {
          if (signal === 'SIGKILL') killed = true
          if (!stopped) setTimeout(start, 100)
        })
      }
      start()
      return {
        killed: () => killed,
        starts: () => starts,
        port: () => port(),
        stop: async () => {
          stopped = true
          if (current) await stopProcess(current)
        },
      }
    }

    /** One device through a self-update with a kill -9 at `step`; resolves with the version it came back on. */
    async function killedAt(step: string): Promise<string> {
      const crashDevice = await device(hub, `crash-${step}`)
      // The 'agent-confirming' kill happens in the new agent; the others in the old one.
      const unit = unitLike(crashDevice, { EF_FAULT_KILL_AT: step })
      stops.push(unit.stop)
      await waitFor(async () => (await view(hub, crashDevice.id)).online, { what: `${crashDevice.id} online` })
      const sent = (await api(hub.httpUrl, 'POST', '/api/v1/agent-updates', {
        target: `device=${crashDevice.id}`,
        version: '0.2.0',
        deadlineMs: 90_000, // generous: a rollback before the kill would skip the step under test
      })) as { sent: unknown[] }
      expect(sent.sent).toHaveLength(1)
      await waitFor(() => unit.killed(), { timeoutMs: 90_000, what: `${crashDevice.id} killed at ${step}` })
      await waitFor(
        async () => {
          const v = await view(hub, crashDevice.id)
          // Killed before the trial was written, the old agent comes back and the hub resends the
          // update it never finished [EF-11.9]: every device ends on the new agent, confirmed.
          if (!v.online || v.agentVersion !== '0.2.0') return false
          const health = await fetch(`http://127.0.0.1:${unit.port()}/healthz`).catch(() => undefined)
          return health?.ok === true && !slotState(crashDevice).trial
        },
        { timeoutMs: 90_000, what: `${crashDevice.id} back on a working agent after kill at ${step}` },
      )
      const { agentVersion } = await view(hub, crashDevice.id)
      await unit.stop()
      // A half-unpacked slot is removed when the agent starts again [EF-11.7].
      expect(existsSync(join(crashDevice.data, 'agent-slots', 'a.unpacking'))).toBe(false)
      return agentVersion ?? ''
    }

    it('the device always comes back on a working agent and ends on 0.2.0, its API answering', async () => {
      const t0 = Date.now()
      // One device per step, side by side: the steps are independent and mostly wait on processes.
      const versions = await Promise.all(steps.map(killedAt))
      console.log(
        JSON.stringify({
          killLoopMs: Date.now() - t0,
          versions: Object.fromEntries(steps.map((s, i) => [s, versions[i]])),
        }),
      )
      // Killed before the trial was written: the old agent runs the resent command again; after: the new one confirms.
      expect(versions).toEqual(['0.2.0', '0.2.0', '0.2.0', '0.2.0'])
    }, 240_000)
  })
})
