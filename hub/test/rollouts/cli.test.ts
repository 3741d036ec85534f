// CLI parity for rollouts [EF-8.7]: `edgefleet rollout create|list|show|pause|
// resume|abort|rollback` and `devices list` against an in-process hub with
// tokens on, through main() with fake streams.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { main } from '../../src/cli/edgefleet.js'
import { sink } from '../fixtures/cli.js'
import { startTestHub, type TestHub } from '../fixtures/hub.js'
import { registerVersions } from '../fixtures/rollouts.js'

let testHub: TestHub
async function run(argv: string[], token: string | undefined = testHub.hub.adminToken) {
  const out = sink()
  const err = sink()
  const code = await main(
    [...argv, '--hub', testHub.hub.httpUrl, ...(token ? ['--token', token] : [])],
    out.stream,
    err.stream,
  )
  return { code, out: out.text(), err: err.text() }
}

beforeAll(async () => {
  testHub = await startTestHub({ auth: true })
  for (const id of ['k1', 'k2', 'k3']) {
    const res = await testHub.hub.api.inject({
      method: 'POST',
      url: '/api/v1/devices',
      payload: { id, profile: 'gateway-rpi4', tags: { ring: 'beta' } },
      headers: { authorization: `Bearer ${testHub.hub.adminToken}` },
    })
    if (res.statusCode !== 201) throw new Error(res.body)
  }
  await registerVersions(testHub, 'm', ['1.0.0'])
})
afterAll(() => testHub?.close())

describe('edgefleet rollout', () => {
  let id = ''
  it('needs a token: without one the CLI exits 1 with EF_ERR_AUTH_TOKEN_INVALID', async () => {
    const r = await run(['devices', 'list', '--json'], '')
    expect(r.code).toBe(1)
    expect(JSON.parse(r.out).error.code).toBe('EF_ERR_AUTH_TOKEN_INVALID')
  })

  it('devices list --json', async () => {
    const r = await run(['devices', 'list', '--json'])
    expect(JSON.parse(r.out).map((d: { id: string }) => d.id)).toEqual(['k1', 'k2', 'k3'])
  })

  it('create prints the waves; --json gives the rollout', async () => {
    const result = await run([
      'rollout',
      'create',
      'm@1.0.0',
      '--selector',
      'tag=ring=beta and not device=k3',
      '--waves',
      '1,100%',
      '--soak',
      '2m',
      '--on-fail',
      'rollback',
      '--max-error-rate-delta',
      '0.01',
      '--no-windows',
      '--json',
    ])
    expect(result.code, result.err).toBe(0)
    const v = JSON.parse(result.out)
    id = v.rollout.id
    expect(v.rollout).toMatchObject({ selectorText: 'tag=ring=beta and not device=k3', devices: 2, onFail: 'rollback' })
    expect(v.rollout.spec).toMatchObject({
      soakMs: 120_000,
      waves: [{ count: 1 }, { percent: 100 }],
      gates: { maxErrorRateDelta: 0.01 },
    })
    const text = await run(['rollout', 'show', id])
    expect(text.out).toMatch(/wave 1 +1 +\[/)
  })

  it('list, pause, resume, rollback and abort; a refused action exits 1 with its code', async () => {
    const list = await run(['rollout', 'list', '--json'])
    expect(JSON.parse(list.out)).toHaveLength(1)
    expect((await run(['rollout', 'list'])).out).toMatch(/1 of 1/)
    expect(JSON.parse((await run(['rollout', 'pause', id, '--json'])).out).rollout.state).toBe('paused')
    const again = await run(['rollout', 'pause', id, '--json'])
    expect(again.code).toBe(1)
    expect(JSON.parse(again.out).error.code).toBe('EF_ERR_ROLLOUT_STATE')
    expect(JSON.parse((await run(['rollout', 'resume', id, '--json'])).out).rollout.state).toBe('running')
    // Nothing was activated yet, so the rollback completes in the tick the action triggers.
    expect(['rolling_back', 'rolled_back']).toContain(
      JSON.parse((await run(['rollout', 'rollback', id, '--json'])).out).rollout.state,
    )
    const second = JSON.parse(
      (await run(['rollout', 'create', 'm@1.0.0', '--selector', 'devices=k1,k2', '--no-windows', '--json'])).out,
    ).rollout.id
    expect(JSON.parse((await run(['rollout', 'abort', second, '--json'])).out).rollout.state).toBe('aborted')
    expect(
      JSON.parse((await run(['rollout', 'list', '--state', 'aborted', '--json'])).out).map((x: { id: string }) => x.id),
    ).toEqual([second])
  })

  it('usage errors exit 2', async () => {
    expect((await run(['rollout', 'create', 'm@1.0.0'])).code).toBe(2)
    expect((await run(['rollout', 'create', 'm@1.0.0', '--selector', 'tag=ring=beta', '--soak', 'soon'])).code).toBe(2)
    expect((await run(['rollout', 'show'])).code).toBe(2)
    const bad = await run([
      'rollout',
      'create',
      'm@1.0.0',
      '--selector',
      'tag=ring=beta',
      '--waves',
      '50%,10%,100%',
      '--json',
    ])
    expect(bad.code).toBe(1)
    expect(JSON.parse(bad.out).error.code).toBe('EF_ERR_WAVES_INVALID')
  })

  it('token create prints a token once; tokens list; token revoke', async () => {
    const created = JSON.parse((await run(['token', 'create', 'ci', '--role', 'viewer', '--json'])).out)
    expect(created).toMatchObject({ name: 'ci', role: 'viewer', token: expect.stringMatching(/^ef_/) })
    expect((await run(['rollout', 'list', '--json'], created.token)).code).toBe(0)
    const denied = await run(['rollout', 'pause', 'x', '--json'], created.token)
    expect(JSON.parse(denied.out).error.code).toBe('EF_ERR_AUTH_FORBIDDEN_ROLE')
    expect(JSON.parse((await run(['tokens', 'list', '--json'])).out).map((x: { name: string }) => x.name)).toContain(
      'ci',
    )
    expect((await run(['token', 'revoke', created.id])).code).toBe(0)
    expect((await run(['rollout', 'list', '--json'], created.token)).code).toBe(1)
    expect((await run(['token', 'create', 'x'])).code).toBe(2)
  })
})
