// `edgefleet capture …` [EF-8.15] against an in-process hub: flags become the
// policy the API stores (privacy filter included), list/update/delete work,
// usage errors exit 2 before any request, hub refusals exit 1 with their code.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runCli } from '../fixtures/cli.js'
import { insertVersionRow, provision, startTestHub, type TestHub } from '../fixtures/hub.js'

describe('edgefleet capture', () => {
  let testHub: TestHub
  const hub = () => ['--hub', testHub.hub.httpUrl]
  beforeAll(async () => {
    testHub = await startTestHub()
    await provision(testHub.hub, 'cam-1', 'gateway-rpi4', { site: 'north' })
    insertVersionRow(testHub.hub, 'cam', '1.0.0', {
      inputs: [
        { name: 'image', type: 'uint8', dims: [1, 64, 64, 3] },
        { name: 'user', type: 'int64', dims: [1] },
      ],
    })
  })
  afterAll(async () => {
    await testHub?.close()
  })

  it('creates, lists, updates and deletes a policy with a privacy filter', async () => {
    const createRun = await runCli([
      'capture',
      'create',
      '--selector',
      'tag=site=north',
      '--model',
      'cam',
      '--random',
      '0.25',
      '--max-bytes-per-hour',
      '2000000',
      '--hash',
      'user',
      '--blank',
      'image:NHWC:0,0,64,16',
      '--json',
      ...hub(),
    ])
    expect(createRun.code, createRun.err).toBe(0)
    const created = JSON.parse(createRun.out) as { policy: { id: string; matched: number; privacy: unknown } }
    expect(created.policy).toMatchObject({
      matched: 1,
      privacy: {
        hashInputs: ['user'],
        blankRegions: [{ input: 'image', layout: 'NHWC', x: 0, y: 0, width: 64, height: 16 }],
      },
    })
    const id = created.policy.id
    const stored = testHub.hub.store.capturePolicies.get(id)
    expect(stored?.body).toMatchObject({ random: 0.25, maxBytesPerHour: 2_000_000, maxBytesOnDisk: 50_000_000 })

    const list = await runCli(['capture', 'list', ...hub()])
    expect(list.code).toBe(0)
    expect(list.out).toContain(id)
    expect(list.out).toContain('tag=site=north')

    const updated = await runCli([
      'capture',
      'update',
      id,
      '--random',
      '0.5',
      '--no-privacy',
      '--all-models',
      '--json',
      ...hub(),
    ])
    expect(updated.code, updated.err).toBe(0)
    expect(testHub.hub.store.capturePolicies.get(id)).toMatchObject({ model: null, body: { random: 0.5 } })
    expect(testHub.hub.store.capturePolicies.get(id)?.body.privacy).toBeUndefined()

    const d = await runCli(['capture', 'delete', id, ...hub()])
    expect(d.code, d.err).toBe(0)
    expect(testHub.hub.store.capturePolicies.list()).toEqual([])
    const again = await runCli(['capture', 'delete', id, '--json', ...hub()])
    expect(again.code).toBe(1)
    expect(JSON.parse(again.out)).toMatchObject({ error: { code: 'EF_ERR_CAPTURE_POLICY_NOT_FOUND' } })
  })

  it.each([
    [['capture', 'create', '--model', 'cam'], 'capture create needs --selector'],
    [['capture', 'create', '--selector', 'device=a', '--blank', 'image:CHW:0,0,1,1'], '--blank must be'],
    [['capture', 'create', '--selector', 'device=a', '--random', 'half'], '--random must be a number'],
    [['capture', 'update', 'cp-1'], 'at least one option'],
    [['capture', 'delete'], 'capture delete needs ID'],
  ])('usage error %j exits 2 without calling a hub', async (argv, msg) => {
    const r = await runCli([...argv, '--hub', 'http://127.0.0.1:1'])
    expect(r.code).toBe(2)
    expect(r.err).toContain(msg)
  })

  it.each([
    [['--selector', 'site=north'], 'EF_ERR_SELECTOR_INVALID'],
    [['--selector', 'device=cam-1', '--model', 'nope'], 'EF_ERR_MODEL_NOT_FOUND'],
    [
      ['--selector', 'device=cam-1', '--model', 'cam', '--blank', 'image:NHWC:60,0,8,8'],
      'EF_ERR_CAPTURE_REGION_INVALID',
    ],
    [
      ['--selector', 'device=cam-1', '--model', 'cam', '--drop', 'user', '--hash', 'user'],
      'EF_ERR_CAPTURE_POLICY_INVALID',
    ],
  ])('hub refusal %j exits 1 with %s', async (flags, code) => {
    const r = await runCli(['capture', 'create', ...flags, '--json', ...hub()])
    expect(r.code).toBe(1)
    expect(JSON.parse(r.out)).toMatchObject({ error: { code } })
  })
})
