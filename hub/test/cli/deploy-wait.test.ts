// `deploy --wait` with an offline device in the target [EF-8.14]: the device
// is shown as pending (offline), and at --timeout the CLI exits with its own
// code (3) and EF_ERR_DEPLOY_PENDING instead of hanging or blaming a download.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { main } from '../../src/cli/edgefleet.js'
import { sink } from '../fixtures/cli.js'
import { EXIT_PENDING } from '../../src/cli/deployments.js'
import { provision, startTestHub, type TestHub } from '../fixtures/hub.js'
import { registerVersions } from '../fixtures/rollouts.js'

let testHub: TestHub
beforeAll(async () => {
  testHub = await startTestHub()
  await registerVersions(testHub, 'm', ['1.0.0'])
  await provision(testHub.hub, 'off-1', 'gateway-rpi4', { fleet: 'w' }) // provisioned, never connects
})
afterAll(async () => testHub?.close())

async function cli(argv: string[]) {
  const out = sink()
  const err = sink()
  const code = await main([...argv, '--hub', testHub.hub.httpUrl], out.stream, err.stream)
  return { code, out: out.text(), err: err.text() }
}

describe('deploy --wait with an offline device [EF-8.14]', () => {
  it('shows it pending (offline) and exits 3 with EF_ERR_DEPLOY_PENDING at --timeout', async () => {
    const started = Date.now()
    const r = await cli(['deploy', 'm@1.0.0', '--target', 'device=off-1', '--wait', '--timeout', '1'])
    expect(r.code).toBe(EXIT_PENDING)
    expect(EXIT_PENDING).toBe(3)
    expect(Date.now() - started).toBeLessThan(30_000)
    expect(r.err).toMatch(/EF_ERR_DEPLOY_PENDING: 1 device\(s\) still pending after 1s \(offline: off-1\)/)
    expect(r.err).toMatch(/0 offline|1 offline/)
    expect(r.out).toMatch(/off-1\s+pending \(offline\)/)
  })

  it('--json carries the pending devices and timedOut', async () => {
    const r = await cli(['deploy', 'm@1.0.0', '--target', 'device=off-1', '--wait', '--timeout', '1', '--json'])
    expect(r.code).toBe(EXIT_PENDING)
    const body = JSON.parse(r.out) as { timedOut: boolean; pending: string[]; devices: { online: boolean }[] }
    expect(body).toMatchObject({ timedOut: true, pending: ['off-1'] })
    expect(body.devices[0].online).toBe(false)
  })
})
