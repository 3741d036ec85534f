// The operator CLI's main() with fake streams: exit codes for help, unknown
// commands and usage errors, and real calls against an in-process hub.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runCli } from '../fixtures/cli.js'
import { sha256Hex } from '@edgefleet/shared'
import { startTestHub, type TestHub } from '../fixtures/hub.js'

describe('edgefleet CLI without a hub', () => {
  it('--help prints the overview and exits 0', async () => {
    const r = await runCli(['--help'])
    expect(r.code).toBe(0)
    expect(r.out).toContain('Usage: edgefleet <command>')
    expect(r.out).toContain('deploy N@V --target T')
  })

  it('no command prints the overview and exits 2', async () => {
    const r = await runCli([])
    expect(r.code).toBe(2)
    expect(r.out).toContain('Usage: edgefleet')
  })

  it('a command with --help prints that command', async () => {
    const r = await runCli(['device', 'add', '--help'])
    expect(r.code).toBe(0)
    const lines = r.out.trim().split('\n')
    expect(lines[0]).toBe('edgefleet device add ID --profile P [--tag k=v ...] [--cert [--out DIR]] [--json]')
    expect(lines.filter((l) => /^ {2}--/.test(l)).map((l) => l.trim().split(' ')[0])).toEqual(['--cert', '--out'])
  })

  it('an unknown command exits 2', async () => {
    const r = await runCli(['frobnicate', 'now'])
    expect(r.code).toBe(2)
    expect(r.err).toContain('unknown command: frobnicate now')
  })

  it('an unknown option exits 2', async () => {
    const r = await runCli(['devices', 'list', '--frob'])
    expect(r.code).toBe(2)
    expect(r.err).toMatch(/frob/)
  })

  it.each([
    [['device', 'add', 'dev-1'], 'device add needs ID and --profile P'],
    [['device', 'add', '--profile', 'gateway-rpi4'], 'device add needs ID and --profile P'],
    [['device', 'add', 'dev-1', '--profile', 'gateway-rpi4', '--tag', 'novalue'], '--tag must be KEY=VALUE'],
    [['model', 'add', 'x.onnx', '--name', 'm'], 'model add needs FILE.onnx, --name and --version'],
    [['model', 'show', 'noversion'], 'expected MODEL@VERSION'],
    [['deploy', 'wake@'], 'expected MODEL@VERSION'],
    [['deploy', 'wake@1'], 'deploy needs --target'],
    [['deployment', 'show'], 'deployment show needs ID'],
  ])('usage error %j exits 2 without calling a hub', async (argv, msg) => {
    // An unreachable hub: a usage error must be found before any request.
    const r = await runCli([...argv, '--hub', 'http://127.0.0.1:1'])
    expect(r.code).toBe(2)
    expect(r.err).toContain(msg)
  })

  it('an unreachable hub exits 1 with EF_ERR_CONFIG_INVALID', async () => {
    const r = await runCli(['devices', 'list', '--json', '--hub', 'http://127.0.0.1:1'])
    expect(r.code).toBe(1)
    expect((JSON.parse(r.out) as { error: { code: string } }).error.code).toBe('EF_ERR_CONFIG_INVALID')
  })
})

describe('edgefleet CLI against a running hub', () => {
  let testHub: TestHub
  beforeAll(async () => {
    testHub = await startTestHub()
  })
  afterAll(async () => {
    await testHub?.close()
  })

  it('device add --json prints the secret and the hub key', async () => {
    const result = await runCli([
      'device',
      'add',
      'cli-1',
      '--profile',
      'gateway-rpi4',
      '--tag',
      'site=north',
      '--json',
      '--hub',
      testHub.hub.httpUrl,
    ])
    expect(result.code, result.err).toBe(0)
    const body = JSON.parse(result.out) as {
      id: string
      secret: string
      hubPublicKey: string
      tags: Record<string, string>
    }
    expect(body.id).toBe('cli-1')
    expect(body.tags).toEqual({ site: 'north' })
    expect(body.hubPublicKey).toBe(testHub.hub.keys.publicKey)
    expect(testHub.hub.store.devices.secretHash('cli-1')).toBe(sha256Hex(body.secret))
  })

  it('device add in text form prints the agent command line', async () => {
    const r = await runCli(['device', 'add', 'cli-2', '--profile', 'industrial-x86', '--hub', testHub.hub.httpUrl])
    expect(r.code).toBe(0)
    expect(r.out).toContain('device cli-2 (industrial-x86) provisioned')
    expect(r.out).toMatch(
      /edgefleet-agent --hub mqtt:\/\/127\.0\.0\.1:\d+ --device-id cli-2 --secret=\S+ --hub-key=\S{43} --profile industrial-x86/,
    )
  })

  it('devices list --json returns an array of the devices', async () => {
    const r = await runCli(['devices', 'list', '--json', '--hub', testHub.hub.httpUrl])
    expect(r.code).toBe(0)
    const items = JSON.parse(r.out) as { id: string; profile: string; online: boolean }[]
    expect(Array.isArray(items)).toBe(true)
    expect(items.map((d) => [d.id, d.profile, d.online])).toEqual([
      ['cli-1', 'gateway-rpi4', false],
      ['cli-2', 'industrial-x86', false],
    ])
  })

  it('devices list as a table', async () => {
    const r = await runCli(['devices', 'list', '--hub', testHub.hub.httpUrl])
    expect(r.code).toBe(0)
    const lines = r.out.trim().split('\n')
    expect(lines[0]).toMatch(/^ID\s+PROFILE\s+STATE\s+AGENT\s+MODELS\s+TAGS$/)
    expect(lines[1]).toMatch(/^cli-1\s+gateway-rpi4\s+offline\s+-\s+-\s+site=north$/)
  })

  it('devices list shows the agent version a device reported in its state', async () => {
    const state = {
      v: 1,
      deviceId: 'cli-2',
      online: true,
      ts: 1,
      profile: 'industrial-x86',
      agentVersion: '0.2.0',
      models: [],
    }
    expect(
      testHub.hub.store.devices.setState('cli-2', state as Parameters<typeof testHub.hub.store.devices.setState>[1], 1),
    ).toBe(true)
    const r = await runCli(['devices', 'list', '--hub', testHub.hub.httpUrl])
    expect(r.out).toMatch(/^cli-2\s+industrial-x86\s+online\s+0\.2\.0\s+-/m)
    const json = JSON.parse((await runCli(['devices', 'list', '--json', '--hub', testHub.hub.httpUrl])).out) as {
      id: string
      agentVersion: string | null
    }[]
    expect(json.map((d) => [d.id, d.agentVersion])).toEqual([
      ['cli-1', null],
      ['cli-2', '0.2.0'],
    ])
  })

  it("a hub error exits 1 with the hub's code", async () => {
    const refused = await runCli([
      'device',
      'add',
      'cli-1',
      '--profile',
      'gateway-rpi4',
      '--json',
      '--hub',
      testHub.hub.httpUrl,
    ])
    expect(refused.code).toBe(1)
    expect((JSON.parse(refused.out) as { error: { code: string } }).error.code).toBe('EF_ERR_DEVICE_EXISTS')
    const txt = await runCli(['deploy', 'nope@1', '--target', 'profile=gateway-rpi4', '--hub', testHub.hub.httpUrl])
    expect(txt.code).toBe(1)
    expect(txt.err).toMatch(/^error EF_ERR_MODEL_NOT_FOUND: /)
  })
})
