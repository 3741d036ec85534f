// Rotation of the hub's signing key [EF-3.6] with real processes: a hub and
// two agents. A deploy signed with the first key works; the key rotates; the
// running agent accepts a deploy signed with the new key and refuses a command
// signed with the old one; a restarted agent keeps the new key; an agent that
// was offline (and whose broker session a hub restart dropped) is told when it
// comes back.
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import mqtt from 'mqtt'
import { cmdCodec, privateKeyFromPem, signDocument, topics } from '@edgefleet/shared'
import { startHub, startFleet, startAgent, api, waitFor, wakeInput, MODELS, type HubProc } from '../support/fleet.mjs'

/** The namaste model (version 1.1.0 here) takes 24 frames where the hello model takes 25. */
const namasteInput = (seed: number) => {
  const x = wakeInput(seed)['onnx::Flatten_0']
  return { 'onnx::Flatten_0': { ...x, dims: [1, 24, 96], data: x.data.slice(0, 24 * 96) } }
}

type Agent = Awaited<ReturnType<typeof startFleet>>[number]
interface Ev {
  kind: string
  code?: string
  cmdId?: string
  message?: string
}

describe('hub signing key rotation', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'ef-e2e-keys-'))
  const hubDir = join(tmp, 'hub')
  let hub: HubProc
  let agents: Agent[]
  let firstKey: string
  let oldKeys: { privateKeyPem: string; hubSecret: string }

  const addVersion = (version: string, model: string) =>
    api(
      hub.httpUrl,
      'POST',
      `/api/v1/models?name=wake&version=${version}&options=${encodeURIComponent('{"precision":"fp32"}')}`,
      readFileSync(model),
    )
  const deployAndWait = async (version: string, target: string) => {
    const d = await api(hub.httpUrl, 'POST', '/api/v1/deployments', { model: 'wake', version, target })
    return waitFor(
      async () => {
        const v = await api(hub.httpUrl, 'GET', `/api/v1/deployments/${d.deployment.id}`)
        return v.deployment.done ? v : undefined
      },
      { timeoutMs: 60_000, what: `deployment of ${version} to ${target}` },
    )
  }
  const device = async (id: string) => api(hub.httpUrl, 'GET', `/api/v1/devices/${id}`)
  const restartAgent = async (agent: Agent): Promise<Agent> => {
    await agent.stop()
    const p = await startAgent({
      mqttUrl: hub.mqttUrl,
      deviceId: agent.id,
      secret: agent.secret,
      hubKey: firstKey, // the command line still pins the provisioning key
      profile: agent.profile,
      dataDir: join(tmp, agent.id),
    })
    return { ...agent, ...p, url: `http://127.0.0.1:${p.apiPort}` }
  }
  /** Publishes a deploy command signed with the retired key, as the hub's broker user could. */
  const deploySignedWithOldKey = async (deviceId: string, cmdId: string) => {
    const old = privateKeyFromPem(oldKeys.privateKeyPem)
    const manifest = (await api(hub.httpUrl, 'GET', '/api/v1/models/wake/versions/1.0.0')).builds[0]
    expect(manifest).toBeDefined()
    const db = (await import('better-sqlite3')).default(join(hubDir, 'hub.db'), { readonly: true })
    const row = db.prepare('SELECT manifest FROM builds WHERE id = ?').get(manifest.id) as { manifest: string }
    db.close()
    const signedManifest = JSON.parse(row.manifest)
    const unsigned = {
      v: 1 as const,
      id: cmdId,
      deviceId,
      issuedAt: Date.now(),
      type: 'deploy' as const,
      deploymentId: `old-key-${cmdId}`,
      manifest: signedManifest,
      manifestSig: signDocument(signedManifest, old),
      rollback: true,
    }
    const client = mqtt.connect(hub.mqttUrl, {
      clientId: `old-key-${cmdId}`,
      username: '$hub',
      password: oldKeys.hubSecret,
      reconnectPeriod: 0,
    })
    await new Promise((r) => client.once('connect', r))
    await client.publishAsync(
      topics.cmd(deviceId),
      cmdCodec.encode({ ...unsigned, sig: signDocument(unsigned, old) }),
      {
        qos: 1,
      },
    )
    await client.endAsync()
    return waitFor(async () => ((await device(deviceId)).events as Ev[]).find((e) => e.cmdId === cmdId), {
      what: `the answer to ${cmdId}`,
    })
  }

  beforeAll(async () => {
    hub = await startHub({ dataDir: hubDir })
    firstKey = hub.publicKey
    agents = await startFleet(
      hub,
      [
        { id: 'kr-on', profile: 'gateway-rpi4' },
        { id: 'kr-off', profile: 'gateway-rpi4' },
      ],
      { tmp },
    )
    await waitFor(
      async () => (await api(hub.httpUrl, 'GET', '/api/v1/devices')).items.every((d: { online: boolean }) => d.online),
      { what: 'agents online' },
    )
  }, 60_000)

  afterAll(async () => {
    await Promise.all((agents ?? []).map((a) => a.stop()))
    await hub?.stop()
    rmSync(tmp, { recursive: true, force: true })
  })

  it('a deploy signed with the first key activates on both agents', async () => {
    await addVersion('1.0.0', MODELS.wakeHello)
    const v = await deployAndWait('1.0.0', 'profile=gateway-rpi4')
    expect(v.devices.map((d: { state: string }) => d.state)).toEqual(['activated', 'activated'])
    expect((await device('kr-on')).device.hubKey).toBe(firstKey)
  })

  it('rotates: the running agent saves the new key, and takes a deploy signed with it', async () => {
    oldKeys = JSON.parse(readFileSync(join(hubDir, 'hub-keys.json'), 'utf8'))
    await agents[1].stop() // kr-off misses the announcement
    const rotated = await api(hub.httpUrl, 'POST', '/api/v1/hub/rotate-key')
    expect(rotated.previousKey).toBe(firstKey)
    expect(rotated.publicKey).not.toBe(firstKey)
    const key = await api(hub.httpUrl, 'GET', '/api/v1/hub/key')
    expect(key.publicKey).toBe(rotated.publicKey)
    expect(key.chain).toHaveLength(1)
    expect(key.chain[0]).toMatchObject({ prev: firstKey, next: rotated.publicKey })
    // The hub keeps no copy of the retired private key.
    expect(readFileSync(join(hubDir, 'hub-keys.json'), 'utf8')).not.toContain(oldKeys.privateKeyPem.split('\n')[1])
    const ack = await waitFor(
      async () =>
        ((await device('kr-on')).events as Ev[]).find(
          (e) => e.kind === 'received' && e.message?.includes(rotated.publicKey),
        ),
      { what: 'the agent acknowledging the new key' },
    )
    expect(ack).toBeDefined()
    const chainFile = join(tmp, 'kr-on', 'hub-key.json')
    expect(statSync(chainFile).mode & 0o777).toBe(0o600)
    expect(JSON.parse(readFileSync(chainFile, 'utf8')).chain[0].next).toBe(rotated.publicKey)
    await addVersion('1.1.0', MODELS.wakeNamaste) // its manifest is signed with the new key
    const v = await deployAndWait('1.1.0', 'device=kr-on')
    expect(v.devices[0].state).toBe('activated')
    expect((await api(agents[0].url, 'POST', '/v1/models/wake/infer', { inputs: namasteInput(1) })).version).toBe(
      '1.1.0',
    )
  })

  it('the running agent refuses a command signed with the old key (EF_ERR_SIGNATURE_INVALID)', async () => {
    const ev = await deploySignedWithOldKey('kr-on', 'old-key-cmd-0001')
    expect(ev).toMatchObject({ kind: 'rejected', code: 'EF_ERR_SIGNATURE_INVALID' })
    expect((await api(agents[0].url, 'POST', '/v1/models/wake/infer', { inputs: namasteInput(2) })).version).toBe(
      '1.1.0',
    )
  })

  it('a restarted agent keeps the new key (its slots from before the rotation still load) and still refuses the old one', async () => {
    agents[0] = await restartAgent(agents[0])
    const newKey = (await api(hub.httpUrl, 'GET', '/api/v1/hub/key')).publicKey
    await waitFor(async () => (await device('kr-on')).device.hubKey === newKey || undefined, {
      what: 'restarted agent reporting the new key',
    })
    expect((await api(agents[0].url, 'POST', '/v1/models/wake/infer', { inputs: namasteInput(3) })).version).toBe(
      '1.1.0',
    )
    const ev = await deploySignedWithOldKey('kr-on', 'old-key-cmd-0002')
    expect(ev).toMatchObject({ kind: 'rejected', code: 'EF_ERR_SIGNATURE_INVALID' })
  })

  it('an agent that was offline (hub restarted meanwhile) gets the announcement when it comes back', async () => {
    const ports = { mqttPort: Number(new URL(hub.mqttUrl).port), httpPort: Number(new URL(hub.httpUrl).port) }
    await hub.stop() // the embedded broker's sessions, and anything queued for kr-off, are gone
    hub = await startHub({ dataDir: hubDir, ...ports })
    expect(hub.publicKey).not.toBe(firstKey)
    agents[1] = await restartAgent(agents[1])
    await waitFor(async () => (await device('kr-off')).device.hubKey === hub.publicKey || undefined, {
      what: 'kr-off reporting the new key',
    }).catch(async (err: unknown) => {
      throw new Error(
        `${(err as Error).message}\n${JSON.stringify(await device('kr-off'))}\n${hub.stderr()}\n${agents[1].stderr()}`,
      )
    })
    expect((await api(agents[1].url, 'POST', '/v1/models/wake/infer', { inputs: wakeInput(4) })).version).toBe('1.0.0')
    const v = await deployAndWait('1.1.0', 'device=kr-off')
    expect(v.devices[0].state).toBe('activated')
  })
})
