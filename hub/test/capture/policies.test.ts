// Fleet capture policies [EF-8.15] on a real hub (embedded broker, SQLite,
// API) with mqtt.js device clients: a policy reaches the matching online
// devices at creation, a device that joins or reconnects gets it, an update
// reaches them, a delete withdraws it; bad input answers a stable code and
// leaves the stored policy as it was.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { MqttClient } from 'mqtt'
import {
  cmdCodec,
  publicKeyFromText,
  topics,
  verifyDocument,
  type CapturePolicy,
  type CapturePolicyCmd,
  type ErrorCode,
} from '@edgefleet/shared'
import { connectDevice, insertVersionRow, provision, startTestHub, waitFor, type TestHub } from '../fixtures/hub.js'

/** A device client that records every capture-policy command it receives. */
interface FakeDevice {
  id: string
  client: MqttClient
  received: CapturePolicyCmd[]
}

let testHub: TestHub
const secrets = new Map<string, string>()
let stateTs = Date.now()

async function online(id: string): Promise<FakeDevice> {
  const client = await connectDevice(testHub.hub.mqttUrl, id, secrets.get(id) ?? '')
  const dev: FakeDevice = { id, client, received: [] }
  client.on('message', (_topic, payload) => {
    const cmd = cmdCodec.decode(payload)
    if (cmd.type === 'capture-policy') dev.received.push(cmd)
  })
  await client.subscribeAsync(topics.cmd(id), { qos: 1 })
  await publishState(client, id, true)
  await waitFor(() => testHub.hub.store.devices.get(id)?.online === true, 5000, `${id} online`)
  return dev
}

async function publishState(client: MqttClient, id: string, isOnline: boolean): Promise<void> {
  const state = { v: 1, deviceId: id, online: isOnline, ts: ++stateTs, agentVersion: '0.9.1', models: [] }
  await client.publishAsync(topics.state(id), JSON.stringify(state), { qos: 1, retain: true })
}

async function offline(dev: FakeDevice): Promise<void> {
  await publishState(dev.client, dev.id, false)
  await waitFor(() => testHub.hub.store.devices.get(dev.id)?.online === false, 5000, `${dev.id} offline`)
  await dev.client.endAsync()
}

const api = (method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, payload?: object) =>
  testHub.hub.api.inject({ method, url, ...(payload ? { payload } : {}) })

function expectCode(res: Awaited<ReturnType<typeof api>>, status: number, code: ErrorCode): void {
  expect({ status: res.statusCode, code: res.json<{ error: { code: string } }>().error.code }).toEqual({ status, code })
}

const last = (dev: FakeDevice): CapturePolicy[] | undefined => dev.received.at(-1)?.policies

beforeAll(async () => {
  testHub = await startTestHub()
  for (const [id, site] of [
    ['cam-n1', 'north'],
    ['cam-s1', 'south'],
    ['cam-n2', 'north'],
  ])
    secrets.set(id, await provision(testHub.hub, id, 'gateway-rpi4', { site }))
  // A registered version whose inputs the privacy checks read: an NCHW image and a user id.
  insertVersionRow(testHub.hub, 'cam', '1.0.0', {
    inputs: [
      { name: 'image', type: 'float32', dims: ['batch', 3, 32, 48] },
      { name: 'user_id', type: 'int64', dims: [1] },
    ],
    outputs: [{ name: 'scores', type: 'float32', dims: [1, 10] }],
  })
})
afterAll(async () => {
  await testHub?.close()
})

describe('capture policies as fleet objects', () => {
  const body = {
    name: 'north-cams',
    selector: 'tag=site=north',
    model: 'cam',
    random: 0.1,
    maxBytesPerHour: 1_000_000,
    maxBytesOnDisk: 5_000_000,
    privacy: {
      hashInputs: ['user_id'],
      blankRegions: [{ input: 'image', layout: 'NCHW', x: 0, y: 0, width: 48, height: 8 }],
    },
  }
  let policyId = ''

  it('sends a new policy to matching online devices only, signed, with a hub-made hash key', async () => {
    const north = await online('cam-n1')
    const south = await online('cam-s1')
    const res = await api('POST', '/api/v1/capture-policies', body)
    expect(res.statusCode, res.body).toBe(201)
    const created = res.json<{ policy: Record<string, unknown> & { id: string; privacy: object }; sent: number }>()
    policyId = created.policy.id
    expect(created).toMatchObject({
      sent: 1,
      policy: { name: 'north-cams', selectorText: 'tag=site=north', matched: 2 },
    })
    expect(created.policy.privacy).not.toHaveProperty('hashKey') // the hub's, never answered
    await waitFor(() => north.received.length === 1, 5000, 'policy on cam-n1')
    const cmd = north.received[0]
    expect(verifyDocument({ ...cmd, sig: undefined }, cmd.sig, publicKeyFromText(testHub.hub.keys.publicKey))).toBe(
      true,
    )
    expect(cmd.policies).toHaveLength(1)
    expect(cmd.policies[0]).toMatchObject({ policyId, model: 'cam', random: 0.1, maxBytesPerHour: 1_000_000 })
    expect(cmd.policies[0].privacy?.hashKey).toMatch(/^[0-9a-f]{32}$/)
    expect(cmd.policies[0].privacy?.blankRegions).toEqual(body.privacy.blankRegions)
    await new Promise((r) => setTimeout(r, 200))
    expect(south.received).toEqual([])
    const list = (await api('GET', '/api/v1/capture-policies')).json<{ items: { id: string }[] }>()
    expect(list.items.map((p) => p.id)).toEqual([policyId])
    await offline(south)
    await offline(north)
  })

  it('a device that joins later, or reconnects after an update, gets the current policy', async () => {
    const joiner = await online('cam-n2')
    await waitFor(() => joiner.received.length === 1, 5000, 'policy on the joining cam-n2')
    expect(last(joiner)?.[0]).toMatchObject({ policyId, random: 0.1 })

    // cam-n1 is offline: the update reaches only cam-n2 now, cam-n1 when it comes back.
    const upd = await api('PATCH', `/api/v1/capture-policies/${policyId}`, { random: 0.5, confidenceBelow: 0.6 })
    expect(upd.statusCode, upd.body).toBe(200)
    expect(upd.json()).toMatchObject({ sent: 1, policy: { random: 0.5, confidenceBelow: 0.6 } })
    await waitFor(() => joiner.received.length === 2, 5000, 'update on cam-n2')
    const back = await online('cam-n1')
    await waitFor(() => back.received.length === 1, 5000, 'policy on the returning cam-n1')
    expect(last(back)?.[0]).toMatchObject({ policyId, random: 0.5, confidenceBelow: 0.6 })
    // The hash key survives an update: hashes stay comparable across it.
    expect(last(back)?.[0].privacy?.hashKey).toBe(joiner.received[0].policies[0].privacy?.hashKey)
    await offline(joiner)
    await offline(back)
  })

  it('a device that no longer matches gets an empty list; a south device never gets one', async () => {
    const n1 = await online('cam-n1')
    await waitFor(() => n1.received.length === 1, 5000, 'resend on reconnect')
    const upd = await api('PATCH', `/api/v1/capture-policies/${policyId}`, { selector: 'device=cam-n2' })
    expect(upd.json()).toMatchObject({ sent: 1, policy: { matched: 1 } })
    await waitFor(() => n1.received.length === 2, 5000, 'withdrawal on cam-n1')
    expect(last(n1)).toEqual([])
    const south = await online('cam-s1')
    await new Promise((r) => setTimeout(r, 200))
    expect(south.received).toEqual([]) // fleet policies never reached it: its own per-device policy stays
    await offline(south)
    await offline(n1)
  })

  it('deleting withdraws the policy from the devices that had it, online now or at reconnect', async () => {
    const n2 = await online('cam-n2')
    await waitFor(() => n2.received.length === 1, 5000, 'resend to cam-n2')
    const del = await api('DELETE', `/api/v1/capture-policies/${policyId}`)
    expect(del.json()).toEqual({ id: policyId, deleted: true, sent: 1 })
    await waitFor(() => n2.received.length === 2, 5000, 'withdrawal on cam-n2')
    expect(last(n2)).toEqual([])
    expect((await api('GET', '/api/v1/capture-policies')).json()).toEqual({ items: [] })
    await offline(n2)
  })

  it('answers bad input with stable codes and keeps the stored policy unchanged', async () => {
    const bad = (patch: object) => api('POST', '/api/v1/capture-policies', { ...body, ...patch })
    expectCode(await bad({ selector: 'tag=site' }), 400, 'EF_ERR_SELECTOR_INVALID')
    expectCode(await bad({ selector: 'colour=red' }), 400, 'EF_ERR_SELECTOR_INVALID')
    expectCode(await bad({ model: 'no-such-model' }), 404, 'EF_ERR_MODEL_NOT_FOUND')
    const region = (r: object) => bad({ privacy: { blankRegions: [{ input: 'image', layout: 'NCHW', ...r }] } })
    expectCode(await region({ x: 40, y: 0, width: 9, height: 1 }), 400, 'EF_ERR_CAPTURE_REGION_INVALID')
    expectCode(await region({ x: 0, y: 30, width: 1, height: 3 }), 400, 'EF_ERR_CAPTURE_REGION_INVALID')
    // NHWC reads height and width from dims 1 and 2: 3 x 32 here, so row 5 is past the image.
    expectCode(
      await bad({ privacy: { blankRegions: [{ input: 'image', layout: 'NHWC', x: 0, y: 5, width: 1, height: 1 }] } }),
      400,
      'EF_ERR_CAPTURE_REGION_INVALID',
    )
    expectCode(
      await bad({ privacy: { blankRegions: [{ input: 'user_id', layout: 'NCHW', x: 0, y: 0, width: 1, height: 1 }] } }),
      400,
      'EF_ERR_CAPTURE_REGION_INVALID',
    )
    expectCode(await region({ x: 0, y: 0, width: 0, height: 1 }), 400, 'EF_ERR_HTTP_BAD_REQUEST')
    expectCode(
      await bad({ privacy: { dropInputs: ['user_id'], hashInputs: ['user_id'] } }),
      400,
      'EF_ERR_CAPTURE_POLICY_INVALID',
    )
    expectCode(await bad({ privacy: { dropInputs: ['face'] } }), 400, 'EF_ERR_CAPTURE_POLICY_INVALID')
    expectCode(await bad({ privacy: { dropOutputs: ['embedding'] } }), 400, 'EF_ERR_CAPTURE_POLICY_INVALID')
    expect((await api('GET', '/api/v1/capture-policies')).json()).toEqual({ items: [] })

    const ok = await api('POST', '/api/v1/capture-policies', body)
    const id = ok.json<{ policy: { id: string } }>().policy.id
    const before = (await api('GET', `/api/v1/capture-policies/${id}`)).json()
    expectCode(
      await api('PATCH', `/api/v1/capture-policies/${id}`, { selector: '(tag=site=north' }),
      400,
      'EF_ERR_SELECTOR_INVALID',
    )
    expectCode(
      await api('PATCH', `/api/v1/capture-policies/${id}`, {
        privacy: { blankRegions: [{ input: 'image', layout: 'NCHW', x: 99, y: 0, width: 1, height: 1 }] },
      }),
      400,
      'EF_ERR_CAPTURE_REGION_INVALID',
    )
    expect((await api('GET', `/api/v1/capture-policies/${id}`)).json()).toEqual(before)
    for (const method of ['GET', 'PATCH', 'DELETE'] as const)
      expectCode(
        await api(method, '/api/v1/capture-policies/cp-missing', method === 'PATCH' ? { random: 0 } : undefined),
        404,
        'EF_ERR_CAPTURE_POLICY_NOT_FOUND',
      )
  })
})
