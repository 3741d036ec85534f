// The command framework [issue 17.4]: every command has its own option set,
// --help, and refuses an option it does not declare (exit 2, naming the command)
// before any request; `compile` included.
import { describe, expect, it } from 'vitest'
import { COMMANDS } from '../../src/cli/edgefleet.js'
import { runCli } from '../fixtures/cli.js'
import { COMMON_OPTIONS } from '../../src/cli/command.js'

const names = COMMANDS.map((c) => c.name)
// An unreachable hub: nothing here may get as far as a request.
const NO_HUB = ['--hub', 'http://127.0.0.1:1']

describe('every command', () => {
  it('is one of the documented set, compile and hub start included', () => {
    expect(names).toEqual(
      expect.arrayContaining([
        'hub start',
        'hub key',
        'hub rotate-key',
        'device add',
        'devices list',
        'device disable',
        'device enable',
        'device remove',
        'device rotate-secret',
        'model add',
        'models list',
        'model show',
        'deploy',
        'deployment show',
        'telemetry',
        'rollout create',
        'rollout list',
        'rollout show',
        'rollout pause',
        'rollout approve',
        'token create',
        'tokens list',
        'token revoke',
        'feed export',
        'feed tail',
        'drift',
        'compile',
      ]),
    )
    expect(new Set(names).size).toBe(names.length)
  })

  it.each(names)('%s --help prints its help, mentioning each of its options, and exits 0', async (name) => {
    const cmd = COMMANDS.find((c) => c.name === name)!
    const r = await runCli([...name.split(' '), '--help'])
    expect(r.code).toBe(0)
    expect(r.out.trim()).toBe(cmd.help.trim())
    expect(r.out.startsWith(`edgefleet ${name}`)).toBe(true)
    for (const opt of Object.keys(cmd.options)) expect(r.out, `--${opt} in ${name} --help`).toContain(`--${opt}`)
  })

  it.each(names)('%s --no-such-flag exits 2 naming the command', async (name) => {
    const r = await runCli([...name.split(' '), '--no-such-flag', ...NO_HUB])
    expect(r.code).toBe(2)
    expect(r.err).toContain(`edgefleet ${name}: unknown option --no-such-flag`)
    expect(r.out).toBe('')
  })

  it('common options are --hub --token --ca --json --help', () => {
    expect(Object.keys(COMMON_OPTIONS).sort()).toEqual(['ca', 'help', 'hub', 'json', 'token'])
  })
})

describe('options belong to their command', () => {
  it.each([
    [['telemetry', '--rollback'], 'telemetry', '--rollback'],
    [['devices', 'list', '--canary'], 'devices list', '--canary'],
    [['rollout', 'list', '--max-p95-ratio', '2'], 'rollout list', '--max-p95-ratio'],
    [['deploy', 'm@1', '--target', 'profile=p', '--selector', 'x'], 'deploy', '--selector'],
    [['compile', 'm.onnx', '--canary'], 'compile', '--canary'],
    [['hub', 'start', '--target', 'x'], 'hub start', '--target'],
  ])('%j is refused: another command takes %s but not this one', async (argv, name, flag) => {
    const r = await runCli([...argv, ...NO_HUB])
    expect(r.code).toBe(2)
    expect(r.err).toContain(`edgefleet ${name}: unknown option ${flag}`)
  })

  it('a missing option value is a usage error naming the command', async () => {
    const r = await runCli(['telemetry', '--model'])
    expect(r.code).toBe(2)
    expect(r.err).toMatch(/^edgefleet telemetry: .*--model/)
  })

  it('common options may come before the command', async () => {
    const r = await runCli(['--json', ...NO_HUB, 'devices', 'list'])
    expect(r.code).toBe(1)
    expect(JSON.parse(r.out).error.code).toBe('EF_ERR_CONFIG_INVALID')
  })

  it('a group without a sub-command: --help lists its commands, otherwise unknown command', async () => {
    const help = await runCli(['rollout', '--help'])
    expect(help.code).toBe(0)
    expect(help.out).toContain('edgefleet rollout create N@V')
    expect(help.out).toContain('edgefleet rollout approve ID')
    const bad = await runCli(['rollout', 'frob', 'x'])
    expect(bad.code).toBe(2)
    expect(bad.err).toContain('unknown command: rollout frob')
  })

  it('aliases reach the same command', async () => {
    const r = await runCli(['token', 'list', '--help'])
    expect(r.code).toBe(0)
    expect(r.out).toContain('edgefleet tokens list')
  })
})

describe('model options are checked before any request', () => {
  it.each([
    [['--shape', 'x=1,ten'], '--shape x=1,ten: dims must be whole numbers'],
    [['--shape', 'x'], '--shape must be KEY=VALUE'],
    [['--value', 'sr=16k'], '--value sr must be a number'],
    [['--output', 'y=odds'], '--output y=odds: KIND is one of'],
    [['--precision', 'int4'], '--precision must be one of auto, fp32'],
  ])('model add %j exits 2', async (flags, msg) => {
    const r = await runCli(['model', 'add', 'm.onnx', '--name', 'm', '--version', '1.0.0', ...flags, ...NO_HUB])
    expect(r.code).toBe(2)
    expect(r.err).toContain(msg)
  })

  it.each([
    [['--shape', 'x=0,4'], '--shape x=0,4: dims must be whole numbers ≥ 1'],
    [['--output', 'y=odds'], '--output y=odds: KIND is one of'],
  ])('compile %j exits 2 the same way', async (flags, msg) => {
    const r = await runCli(['compile', 'm.onnx', '--profile', 'p', '--out', 'o', '--report', 'r', ...flags])
    expect(r.code).toBe(2)
    expect(r.err).toContain(`edgefleet compile: ${msg}`)
  })
})
