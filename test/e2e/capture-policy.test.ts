// Fleet capture policies with real processes [EF-8.15, EF-2.9.5]: a policy
// created with the CLI reaches a real agent, the agent's privacy filter runs
// before anything leaves it (checked in the bytes the hub stored: no user id,
// no audio, a blanked image region, the user id's keyed hash), an update made
// while an agent is down reaches it when it reconnects, a device that joins
// later gets the policy, and a delete withdraws it.
import { createHmac } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { decodeTensor, type Sample } from '@edgefleet/shared'
import { api, cli, startAgent, startHub, waitFor, type AgentProc, type HubProc } from '../support/fleet.mjs'
import { IMAGE_DIMS, camRequest, imageModel } from '../support/capture-models.mjs'

const PROFILE = 'gateway-rpi4'

describe('capture policies reach real agents and their privacy filter runs on the device', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'ef-e2e-capture-'))
  let hub: HubProc
  let hubDb: Database.Database
  const agents = new Map<string, AgentProc>()
  const secrets = new Map<string, string>()
  let policyId = ''

  const hubCli = async (args: string[]) => {
    const r = await cli([...args, '--hub', hub.httpUrl, '--json'])
    expect(r.code, r.err + r.out).toBe(0)
    return JSON.parse(r.out) as Record<string, unknown>
  }
  const startDevice = async (id: string) => {
    const agent = await startAgent({
      mqttUrl: hub.mqttUrl,
      deviceId: id,
      secret: secrets.get(id) ?? '',
      hubKey: hub.publicKey,
      profile: PROFILE,
      dataDir: join(tmp, id),
      telemetryMs: 500,
    })
    agents.set(id, agent)
    return agent
  }
  const local = (id: string) => `http://127.0.0.1:${agents.get(id)?.apiPort}`
  const policiesOn = async (id: string) =>
    ((await api(local(id), 'GET', '/v1/stats')).capture as { policies: number }).policies
  /** The samples the hub stored for a device, decoded from the stored payload. */
  const stored = (id: string): Sample[] =>
    (
      hubDb.prepare('SELECT payload FROM samples WHERE device_id = ? ORDER BY rowid').all(id) as { payload: string }[]
    ).map((r) => JSON.parse(r.payload) as Sample)
  const provisionAndDeploy = async (id: string) => {
    secrets.set(
      id,
      (await api(hub.httpUrl, 'POST', '/api/v1/devices', { id, profile: PROFILE, tags: { site: 'north' } })).secret,
    )
    await startDevice(id)
    await hubCli(['deploy', 'cam@1.0.0', '--target', `device=${id}`, '--wait', '--timeout', '120'])
  }
  /** One request on the device, then its capture as the hub stored it. */
  const captureOne = async (id: string, userId: number[]): Promise<Sample> => {
    const before = stored(id).length
    await api(local(id), 'POST', '/v1/models/cam/infer', camRequest(userId))
    return waitFor(() => stored(id)[before], { timeoutMs: 60_000, what: `a sample from ${id}` })
  }

  beforeAll(async () => {
    hub = await startHub({ dataDir: join(tmp, 'hub') })
    const model = join(tmp, 'cam.onnx')
    writeFileSync(model, await imageModel())
    await hubCli(['model', 'add', model, '--name', 'cam', '--version', '1.0.0', '--precision', 'fp32'])
    await provisionAndDeploy('cam-1')
    hubDb = new Database(join(tmp, 'hub', 'hub.db'), { readonly: true })
  }, 240_000)

  afterAll(async () => {
    hubDb?.close()
    for (const agent of agents.values()) await agent.stop()
    await hub?.stop()
    rmSync(tmp, { recursive: true, force: true })
  })

  it('a created policy reaches the agent; the sample the hub stored is filtered on the device', async () => {
    const created = await hubCli([
      'capture',
      'create',
      '--selector',
      'tag=site=north',
      '--model',
      'cam',
      '--random',
      '1',
      '--hash',
      'user_id',
      '--blank',
      'image:NCHW:0,0,3,8',
      '--drop-outputs',
      'user_echo',
      '--name',
      'north-cams',
    ])
    policyId = (created.policy as { id: string }).id
    expect(created).toMatchObject({ sent: 1, policy: { matched: 1 } })
    await waitFor(async () => (await policiesOn('cam-1')) === 1, { what: 'the policy on cam-1' })

    const sample = await captureOne('cam-1', [7, 8, 9, 10])
    // Only the image left the device; the user id as its keyed hash, the audio not at all.
    expect(Object.keys(sample.inputs)).toEqual(['image'])
    expect(sample.privacy).toMatchObject({
      dropped: ['audio_pcm'],
      blanked: ['image'],
      droppedOutputs: ['user_echo', 'audio_echo'],
    })
    // The model echoes the user id and the audio in outputs: only the score left the device.
    expect(Object.keys(sample.outputs)).toEqual(['y'])
    const key = (
      JSON.parse(
        (hubDb.prepare('SELECT body FROM capture_policies WHERE id = ?').get(policyId) as { body: string }).body,
      ) as {
        privacy: { hashKey: string }
      }
    ).privacy.hashKey
    const userBytes = Buffer.from(new Float32Array([7, 8, 9, 10]).buffer)
    const expected = createHmac('sha256', Buffer.from(key, 'hex'))
      .update('float32[1,4]\u0000')
      .update(userBytes)
      .digest('hex')
    expect(sample.privacy?.hashed).toEqual({ user_id: expected })
    // Columns 0-2 of every row and channel are 0, the rest the 0.5 sent.
    const image = decodeTensor('image', sample.inputs.image)
    expect(image.dims).toEqual(IMAGE_DIMS)
    const values = Array.from(image.data as Float32Array)
    const col = (i: number) => i % 8
    expect(values.filter((v, i) => (col(i) < 3 ? v !== 0 : v !== 0.5))).toEqual([])
    // The raw user id and audio are nowhere in the stored bytes.
    const raw = (hubDb.prepare('SELECT payload FROM samples WHERE device_id = ?').all('cam-1') as { payload: string }[])
      .map((r) => r.payload)
      .join('\n')
    expect(raw).not.toContain(userBytes.toString('base64'))
    const audioBytes = Buffer.from(new Float32Array(camRequest().inputs.audio_pcm.data).buffer)
    expect(raw).not.toContain(audioBytes.toString('base64'))
    expect(raw).not.toContain('"audio_echo":{')
  })

  it('an update made while the agent is down reaches it when it reconnects', async () => {
    await agents.get('cam-1')?.stop()
    await waitFor(async () => (await api(hub.httpUrl, 'GET', '/api/v1/devices/cam-1')).device.online === false, {
      what: 'cam-1 offline',
    })
    // The privacy filter is replaced as a whole: audio may leave now, the image may not.
    const upd = await hubCli([
      'capture',
      'update',
      policyId,
      '--allow-audio',
      '--hash',
      'user_id',
      '--drop',
      'image',
      '--drop-outputs',
      'user_echo',
    ])
    expect(upd).toMatchObject({ sent: 0 })
    await startDevice('cam-1')
    await waitFor(
      async () => {
        const sample = await captureOne('cam-1', [1, 2, 3, 4])
        return Object.keys(sample.inputs).includes('audio_pcm') ? sample : undefined
      },
      { timeoutMs: 90_000, what: 'a capture under the updated policy' },
    ).then((sample) => {
      expect(Object.keys(sample.inputs)).toEqual(['audio_pcm'])
      expect(Object.keys(sample.outputs).sort()).toEqual(['audio_echo', 'y'])
      expect(sample.privacy).toMatchObject({ dropped: ['image'], hashed: { user_id: expect.any(String) } })
    })
  })

  it('a device that joins later gets the policy; a delete withdraws it from both', async () => {
    await provisionAndDeploy('cam-2')
    await waitFor(async () => (await policiesOn('cam-2')) === 1, { what: 'the policy on the joining cam-2' })
    const sample = await captureOne('cam-2', [5, 5, 5, 5])
    expect(Object.keys(sample.inputs)).toEqual(['audio_pcm'])

    const del = await hubCli(['capture', 'delete', policyId])
    expect(del).toMatchObject({ sent: 2 })
    for (const id of ['cam-1', 'cam-2'])
      await waitFor(async () => (await policiesOn(id)) === 0, { what: `the policy withdrawn from ${id}` })
    const count = stored('cam-2').length
    await api(local('cam-2'), 'POST', '/v1/models/cam/infer', camRequest())
    await new Promise((r) => setTimeout(r, 1500))
    expect(stored('cam-2')).toHaveLength(count)
  })
})
