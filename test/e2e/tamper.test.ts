// Hostile and broken input against real processes: wrong credentials, a device
// reaching for another's topics, a damaged chunk, forged signatures. In every
// case the hub keeps running and the agent keeps serving what it had.
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import mqtt from 'mqtt'
import {
  cmdCodec,
  generateSigningKeys,
  privateKeyFromPem,
  signDocument,
  topics,
  type DeployCmd,
} from '@edgefleet/shared'
import { startHub, startFleet, api, waitFor, wakeInput, MODELS } from '../support/fleet.mjs'

const namasteInput = (seed: number) => {
  const x = wakeInput(seed)['onnx::Flatten_0']
  return { 'onnx::Flatten_0': { ...x, dims: [1, 24, 96], data: x.data.slice(0, 24 * 96) } }
}

type Agent = Awaited<ReturnType<typeof startFleet>>[number]
interface Ev {
  kind: string
  code?: string
  version?: string
  cmdId?: string
}

describe('tampering and bad input with real processes', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'ef-tamper-'))
  let hub: Awaited<ReturnType<typeof startHub>>
  let agents: Agent[]
  let agentA: Agent
  let agentB: Agent
  const hubDir = join(tmp, 'hub')

  const events = async (id: string): Promise<Ev[]> => (await api(hub.httpUrl, 'GET', `/api/v1/devices/${id}`)).events
  const deployAndWait = async (version: string, target: string) => {
    const d = await api(hub.httpUrl, 'POST', '/api/v1/deployments', { model: 'wake', version, target })
    return waitFor(
      async () => {
        const v = await api(hub.httpUrl, 'GET', `/api/v1/deployments/${d.deployment.id}`)
        return v.deployment.done ? v : undefined
      },
      { timeoutMs: 60_000, what: `deployment of ${version}` },
    )
  }
  const connectAs = (clientId: string, username: string, password: string) =>
    mqtt.connect(hub.mqttUrl, { clientId, username, password, reconnectPeriod: 0, connectTimeout: 5000 })

  beforeAll(async () => {
    hub = await startHub({ dataDir: hubDir })
    agents = await startFleet(
      hub,
      [
        { id: 'dev-a', profile: 'industrial-x86', tags: { t: '1' } },
        { id: 'dev-b', profile: 'industrial-x86', tags: { t: '1' } },
      ],
      { tmp },
    )
    ;[agentA, agentB] = agents
    await api(
      hub.httpUrl,
      'POST',
      `/api/v1/models?name=wake&version=1.0.0&options=${encodeURIComponent('{"precision":"fp32"}')}`,
      readFileSync(MODELS.wakeHello),
    )
    const v = await deployAndWait('1.0.0', 'tag=t=1')
    expect(v.devices.map((d: { state: string }) => d.state)).toEqual(['activated', 'activated'])
  })

  afterAll(async () => {
    await Promise.all((agents ?? []).map((x) => x.stop()))
    await hub?.stop()
    rmSync(tmp, { recursive: true, force: true })
  })

  it('refuses a wrong secret at CONNECT', async () => {
    const c = connectAs('dev-a-imposter', 'dev-a', 'not-the-secret')
    const err = await new Promise<Error & { code?: number }>((resolve) => c.once('error', resolve))
    expect([4, 5]).toContain(err.code)
    c.end(true)
  })

  it("keeps device A off device B's command and telemetry topics", async () => {
    // A second client with A's credentials must use A's client id: the broker binds the two.
    const client = connectAs('dev-a', 'dev-a', agentA.secret)
    try {
      await new Promise((r) => client.once('connect', r))
      // mqtt.js turns a SUBACK of 0x80 into a rejection carrying the packet.
      const refused = await client.subscribeAsync(topics.cmd('dev-b'), { qos: 1 }).then(
        () => undefined,
        (e: unknown) => e as { packet?: { granted?: number[] } },
      )
      expect(refused?.packet?.granted).toEqual([128])
      const closed = new Promise<void>((r) => client.once('close', () => r()))
      client.publish(
        topics.telemetry('dev-b'),
        JSON.stringify({ v: 1, deviceId: 'dev-b', batchId: 'forged-batch-0001', from: 0, to: 1, models: [] }),
        { qos: 1 },
      )
      await closed
    } finally {
      client.end(true)
    }
    const db = (await import('better-sqlite3')).default(join(hubDir, 'hub.db'), { readonly: true })
    try {
      expect(
        db.prepare("SELECT count(*) AS n FROM telemetry_batches WHERE batch_id = 'forged-batch-0001'").get(),
      ).toEqual({ n: 0 })
    } finally {
      db.close()
    }
    // The real agent A reconnects (its session was taken over) and keeps serving.
    await waitFor(
      async () =>
        (await api(agentA.url, 'POST', '/v1/models/wake/infer', { inputs: wakeInput(1) })).version === '1.0.0',
      { what: 'agent A serving' },
    )
  })

  it('rejects a damaged chunk with EF_ERR_CHUNK_HASH_MISMATCH and keeps serving the old version', async () => {
    const reg = await api(
      hub.httpUrl,
      'POST',
      `/api/v1/models?name=wake&version=1.1.0&options=${encodeURIComponent('{"precision":"fp32"}')}`,
      readFileSync(MODELS.wakeNamaste),
    )
    const artifact = reg.builds[0].artifact as string
    const blob = join(hubDir, 'blobs', artifact)
    const good = readFileSync(blob)
    const bad = Buffer.from(good)
    bad[bad.length >> 1] ^= 0xff
    writeFileSync(blob, bad)
    try {
      const v = await deployAndWait('1.1.0', 'device=dev-a')
      expect(v.devices[0]).toMatchObject({ state: 'failed', code: 'EF_ERR_CHUNK_HASH_MISMATCH' })
      expect(
        (await events('dev-a')).some((e) => e.kind === 'chunk_rejected' && e.code === 'EF_ERR_CHUNK_HASH_MISMATCH'),
      ).toBe(true)
      expect((await api(agentA.url, 'POST', '/v1/models/wake/infer', { inputs: wakeInput(2) })).version).toBe('1.0.0')
    } finally {
      writeFileSync(blob, good)
    }
    // Repaired at the source, the same version goes through.
    const ok = await deployAndWait('1.1.0', 'device=dev-a')
    expect(ok.devices[0].state).toBe('activated')
    expect((await api(agentA.url, 'POST', '/v1/models/wake/infer', { inputs: namasteInput(2) })).version).toBe('1.1.0')
  })

  it('rejects forged commands and forged manifests with EF_ERR_SIGNATURE_INVALID', async () => {
    const keys = JSON.parse(readFileSync(join(hubDir, 'hub-keys.json'), 'utf8')) as {
      privateKeyPem: string
      hubSecret: string
    }
    const build = (await api(hub.httpUrl, 'GET', '/api/v1/models/wake/versions/1.1.0')).builds[0]
    // The genuine manifest and signature of 1.1.0, from the hub's own store.
    const db = (await import('better-sqlite3')).default(join(hubDir, 'hub.db'), { readonly: true })
    const row = db.prepare('SELECT manifest, manifest_sig FROM builds WHERE id = ?').get(build.id) as {
      manifest: string
      manifest_sig: string
    }
    db.close()
    const manifest = JSON.parse(row.manifest)
    const hubKey = privateKeyFromPem(keys.privateKeyPem)
    const evil = privateKeyFromPem(generateSigningKeys().privateKeyPem)
    const cmd = (id: string, m: unknown, msig: string, key = hubKey): DeployCmd => {
      const unsigned = {
        v: 1 as const,
        id,
        deviceId: 'dev-b',
        issuedAt: Date.now(),
        type: 'deploy' as const,
        deploymentId: `forged-${id}`,
        manifest: m as DeployCmd['manifest'],
        manifestSig: msig,
      }
      return { ...unsigned, sig: signDocument(unsigned, key) }
    }
    // Published with the hub's broker credentials: only the signatures stand between this and the device.
    const client = mqtt.connect(hub.mqttUrl, {
      clientId: 'forger',
      username: '$hub',
      password: keys.hubSecret,
      reconnectPeriod: 0,
    })
    await new Promise((r) => client.once('connect', r))
    const forgedCmd = cmd('forged-cmd-signature-1', manifest, row.manifest_sig, evil)
    const forgedManifest = cmd('forged-manifest-sig-01', { ...manifest, version: '9.9.9' }, row.manifest_sig)
    await client.publishAsync(topics.cmd('dev-b'), cmdCodec.encode(forgedCmd), { qos: 1 })
    await client.publishAsync(topics.cmd('dev-b'), cmdCodec.encode(forgedManifest), { qos: 1 })
    client.end()
    const evs: Ev[] = await waitFor(
      async () => {
        const e = (await events('dev-b')).filter((x) => x.kind === 'rejected' && x.code === 'EF_ERR_SIGNATURE_INVALID')
        return e.length >= 2 ? e : undefined
      },
      { what: 'two signature rejections' },
    )
    expect(evs.map((e: Ev) => e.cmdId).sort()).toEqual(['forged-cmd-signature-1', 'forged-manifest-sig-01'])
    const r = await api(agentB.url, 'POST', '/v1/models/wake/infer', { inputs: wakeInput(4) })
    expect(r.version).toBe('1.0.0')
  })

  it('drops malformed messages on every topic the hub reads, with codes, and keeps running', async () => {
    const client = connectAs('dev-b', 'dev-b', agentB.secret)
    await new Promise((r) => client.once('connect', r))
    const before = (await api(hub.httpUrl, 'GET', '/api/v1/hub')).metrics.dropped as Record<string, number>
    for (const kind of ['state', 'events', 'telemetry', 'fetch'] as const) {
      await client.publishAsync(topics.device('dev-b', kind), '{not json', { qos: 1 })
      await client.publishAsync(
        topics.device('dev-b', kind),
        JSON.stringify({ v: 1, deviceId: 'dev-b', wrong: true }),
        {
          qos: 1,
        },
      )
    }
    await client.publishAsync(
      topics.events('dev-b'),
      JSON.stringify({ v: 1, deviceId: 'dev-a', ts: 1, kind: 'activated' }),
      { qos: 1 },
    )
    client.end()
    const after = await waitFor(
      async () => {
        const d = (await api(hub.httpUrl, 'GET', '/api/v1/hub')).metrics.dropped as Record<string, number>
        const grew = (code: string, n: number) => (d[code] ?? 0) - (before[code] ?? 0) >= n
        return grew('EF_ERR_MSG_JSON', 4) && grew('EF_ERR_MSG_SCHEMA', 4) && grew('EF_ERR_TOPIC_DEVICE_MISMATCH', 1)
          ? d
          : undefined
      },
      { what: 'drop counters' },
    )
    expect((after.EF_ERR_TOPIC_DEVICE_MISMATCH ?? 0) - (before.EF_ERR_TOPIC_DEVICE_MISMATCH ?? 0)).toBe(1)
    expect(hub.stderr()).toContain('EF_ERR_MSG_JSON')
    expect((await api(hub.httpUrl, 'GET', '/healthz')).ok).toBe(true)
    // The real agent dev-b lost its session to the test client above and comes back.
    await waitFor(
      async () =>
        (await api(agentB.url, 'POST', '/v1/models/wake/infer', { inputs: wakeInput(5) })).version === '1.0.0',
      { what: 'agent B serving' },
    )
  })

  it('refuses a downgrade unless it is a signed rollback (EF_ERR_DOWNGRADE_REFUSED)', async () => {
    // dev-a serves 1.1.0 since the damaged-chunk test; 1.0.0 is older.
    const refused = await deployAndWait('1.0.0', 'device=dev-a')
    expect(refused.devices[0]).toMatchObject({ state: 'rejected', code: 'EF_ERR_DOWNGRADE_REFUSED' })
    expect((await api(agentA.url, 'GET', '/v1/models')).items[0].version).toBe('1.1.0')
    const d = await api(hub.httpUrl, 'POST', '/api/v1/deployments', {
      model: 'wake',
      version: '1.0.0',
      target: 'device=dev-a',
      rollback: true,
    })
    const v = await waitFor(
      async () => {
        const x = await api(hub.httpUrl, 'GET', `/api/v1/deployments/${d.deployment.id}`)
        return x.deployment.done ? x : undefined
      },
      { what: 'signed rollback' },
    )
    expect(v.devices[0].state).toBe('activated')
    expect((await api(agentA.url, 'GET', '/v1/models')).items[0].version).toBe('1.0.0')
  })

  it('refuses a manifest built for another profile (EF_ERR_MANIFEST_PROFILE_MISMATCH)', async () => {
    // A gateway device makes the hub build for its profile; that build, correctly signed, goes to dev-b.
    await api(hub.httpUrl, 'POST', '/api/v1/devices', { id: 'gw-other', profile: 'gateway-rpi4' })
    await api(
      hub.httpUrl,
      'POST',
      `/api/v1/models?name=wake&version=1.2.0&options=${encodeURIComponent('{"precision":"fp32"}')}`,
      readFileSync(MODELS.wakeHello),
    )
    const keys = JSON.parse(readFileSync(join(hubDir, 'hub-keys.json'), 'utf8')) as {
      privateKeyPem: string
      hubSecret: string
    }
    const build = (
      (await api(hub.httpUrl, 'GET', '/api/v1/models/wake/versions/1.2.0')).builds as { id: number; profile: string }[]
    ).find((x) => x.profile === 'gateway-rpi4')!
    const db = (await import('better-sqlite3')).default(join(hubDir, 'hub.db'), { readonly: true })
    const row = db.prepare('SELECT manifest, manifest_sig FROM builds WHERE id = ?').get(build.id) as {
      manifest: string
      manifest_sig: string
    }
    db.close()
    const unsigned = {
      v: 1 as const,
      id: 'wrong-profile-cmd-01',
      deviceId: 'dev-b',
      issuedAt: Date.now(),
      type: 'deploy' as const,
      deploymentId: 'wrong-profile',
      manifest: JSON.parse(row.manifest),
      manifestSig: row.manifest_sig,
    }
    const client = mqtt.connect(hub.mqttUrl, {
      clientId: 'profile-mixer',
      username: '$hub',
      password: keys.hubSecret,
      reconnectPeriod: 0,
    })
    await new Promise((r) => client.once('connect', r))
    await client.publishAsync(
      topics.cmd('dev-b'),
      cmdCodec.encode({ ...unsigned, sig: signDocument(unsigned, privateKeyFromPem(keys.privateKeyPem)) }),
      { qos: 1 },
    )
    client.end()
    const ev = await waitFor(async () => (await events('dev-b')).find((e) => e.cmdId === 'wrong-profile-cmd-01'), {
      what: 'profile refusal',
    })
    expect(ev).toMatchObject({ kind: 'rejected', code: 'EF_ERR_MANIFEST_PROFILE_MISMATCH' })
    expect((await api(agentB.url, 'POST', '/v1/models/wake/infer', { inputs: wakeInput(6) })).version).toBe('1.0.0')
  })

  it('answers invalid HTTP bodies with 400 and a code', async () => {
    const auth = { authorization: `Bearer ${hub.token}` }
    const res = await fetch(new URL('/api/v1/deployments', hub.httpUrl), {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...auth },
      body: '{"model":',
    })
    expect(res.status).toBe(400)
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('EF_ERR_HTTP_BAD_REQUEST')
    const bad = await fetch(new URL('/api/v1/devices', hub.httpUrl), {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...auth },
      body: JSON.stringify({ id: 'x' }),
    })
    expect(bad.status).toBe(400)
    expect(((await bad.json()) as { error: { code: string } }).error.code).toBe('EF_ERR_HTTP_BAD_REQUEST')
    const notOnnx = await fetch(new URL('/api/v1/models?name=junk&version=1', hub.httpUrl), {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream', ...auth },
      body: Buffer.from('definitely not a model'),
    })
    expect(notOnnx.status).toBe(400)
    expect(((await notOnnx.json()) as { error: { code: string } }).error.code).toBe('EF_ERR_MODEL_INVALID')
  })
})
