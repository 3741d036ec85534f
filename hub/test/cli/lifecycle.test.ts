// The CLI's identity-lifecycle and key commands against an in-process hub
// [EF-1.3.3, EF-3.6, EF-8.10]: device disable/enable/remove/rotate-secret,
// token create --expires, hub key / hub rotate-key; usage errors exit 2
// before any request.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { sha256Hex } from '@edgefleet/shared'
import { runCli } from '../fixtures/cli.js'
import { parseLifetime } from '../../src/cli/tokens.js'
import { provision, startTestHub, type TestHub } from '../fixtures/hub.js'

describe('lifecycle commands without a hub', () => {
  it.each([
    [['device', 'disable'], 'device disable needs ID'],
    [['device', 'enable'], 'device enable needs ID'],
    [['device', 'remove'], 'device remove needs ID'],
    [['device', 'rotate-secret'], 'device rotate-secret needs ID'],
    [['token', 'create', 'ci', '--role', 'viewer', '--expires', '30'], '--expires must look like'],
    [['token', 'create', 'ci', '--role', 'viewer', '--expires', '0d'], '--expires must look like'],
    [['token', 'create', 'ci', '--role', 'viewer', '--expires', '1.5d'], '--expires must look like'],
  ])('usage error %j exits 2 without calling a hub', async (argv, msg) => {
    const r = await runCli([...argv, '--hub', 'http://127.0.0.1:1'])
    expect(r.code).toBe(2)
    expect(r.err).toContain(msg)
  })

  it('parses lifetimes in whole units', () => {
    expect(parseLifetime('90m')).toBe(5400)
    expect(parseLifetime('12h')).toBe(43_200)
    expect(parseLifetime('30d')).toBe(2_592_000)
    expect(parseLifetime('2w')).toBe(1_209_600)
  })
})

describe('lifecycle commands against a hub', () => {
  let testHub: TestHub
  const hubArgs = () => ['--hub', testHub.hub.httpUrl, '--json']
  beforeAll(async () => {
    testHub = await startTestHub()
  })
  afterAll(() => testHub?.close())

  it('device disable, enable, rotate-secret and remove change the device and answer JSON', async () => {
    const first = await provision(testHub.hub, 'cli-life')
    const dis = await runCli(['device', 'disable', 'cli-life', ...hubArgs()])
    expect(dis.code, dis.err).toBe(0)
    expect(JSON.parse(dis.out)).toEqual({ id: 'cli-life', status: 'disabled' })
    expect(testHub.hub.store.devices.secretHash('cli-life')).toBeUndefined()
    expect(JSON.parse((await runCli(['device', 'enable', 'cli-life', ...hubArgs()])).out).status).toBe('active')
    expect(testHub.hub.store.devices.secretHash('cli-life')).toBe(sha256Hex(first))
    const rot = await runCli(['device', 'rotate-secret', 'cli-life', ...hubArgs()])
    const { secret } = JSON.parse(rot.out) as { secret: string }
    expect(testHub.hub.store.devices.secretHash('cli-life')).toBe(sha256Hex(secret))
    const text = await runCli(['device', 'rotate-secret', 'cli-life', '--hub', testHub.hub.httpUrl])
    expect(text.out).toMatch(/secret: [A-Za-z0-9_-]{43}/)
    expect(JSON.parse((await runCli(['device', 'remove', 'cli-life', ...hubArgs()])).out)).toEqual({
      id: 'cli-life',
      status: 'removed',
    })
    const again = await runCli(['device', 'remove', 'cli-life', ...hubArgs()])
    expect(again.code).toBe(1)
    expect(JSON.parse(again.out).error.code).toBe('EF_ERR_DEVICE_REMOVED')
    const list = await runCli(['devices', 'list', '--hub', testHub.hub.httpUrl])
    expect(list.out).toMatch(/cli-life\s+gateway-rpi4\s+removed/)
  })

  it('token create --expires 30d sets the expiry; tokens list shows it', async () => {
    const before = Date.now()
    const r = await runCli(['token', 'create', 'ci', '--role', 'viewer', '--expires', '30d', ...hubArgs()])
    expect(r.code, r.err).toBe(0)
    const tok = JSON.parse(r.out) as { id: string; expiresAt: number }
    expect(tok.expiresAt).toBeGreaterThanOrEqual(before + 30 * 86_400_000)
    expect(tok.expiresAt).toBeLessThanOrEqual(Date.now() + 30 * 86_400_000)
    const list = await runCli(['tokens', 'list', '--hub', testHub.hub.httpUrl])
    expect(list.out).toContain(new Date(tok.expiresAt).toISOString())
    expect(list.out).toContain('never')
  })

  it('hub key shows the key; hub rotate-key replaces it and the chain records the step', async () => {
    const old = testHub.hub.keys.publicKey
    expect(JSON.parse((await runCli(['hub', 'key', ...hubArgs()])).out)).toEqual({ publicKey: old, chain: [] })
    const r = await runCli(['hub', 'rotate-key', ...hubArgs()])
    expect(r.code, r.err).toBe(0)
    const out = JSON.parse(r.out) as { publicKey: string; previousKey: string }
    expect(out.previousKey).toBe(old)
    expect(out.publicKey).toBe(testHub.hub.keys.publicKey)
    expect(out.publicKey).not.toBe(old)
    const key = JSON.parse((await runCli(['hub', 'key', ...hubArgs()])).out) as {
      chain: { prev: string; next: string }[]
    }
    expect(key.chain).toMatchObject([{ prev: old, next: out.publicKey }])
  })
})
