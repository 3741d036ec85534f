// TLS end to end [EF-10] with real processes: the skeleton loop (model add →
// deploy → infer → telemetry) over MQTT-over-TLS and HTTPS, on the embedded
// broker and behind a Mosquitto TLS listener whose certificate the hub CA
// issued, with agents given only --ca. Then the refusals: an agent or a CLI
// trusting another CA, a device certificate from another CA, plain listeners
// off loopback; and a device authenticated by its certificate alone.
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { hostname, tmpdir } from 'node:os'
import { join } from 'node:path'
import * as ort from 'onnxruntime-node'
import Database from 'better-sqlite3'
import {
  startHub,
  startFleet,
  startAgent,
  startDevice,
  provision,
  isOnline,
  api,
  cli,
  waitFor,
  wakeInput,
  MODELS,
  ROOT,
} from '../support/fleet.mjs'
import { startMosquitto, type Mosquitto } from '../support/mosquitto.mjs'

type Hub = Awaited<ReturnType<typeof startHub>>
type Agent = Awaited<ReturnType<typeof startFleet>>[number]

// The hub's CA module from its build (the e2e suite runs the built hub anyway).
const ca = (await import(join(ROOT, 'hub', 'dist', 'tls', 'ca.js'))) as typeof import('../../hub/src/tls/ca.js')

/** model add → deploy → every agent serves it, equal to a direct ORT run → telemetry rows in the hub db. */
async function skeletonLoop(hub: Hub, agents: Agent[], hubDir: string) {
  const add = await cli([
    'model',
    'add',
    MODELS.wakeHello,
    '--name',
    'wake',
    '--version',
    '1.0.0',
    '--precision',
    'fp32',
    '--hub',
    hub.httpUrl,
    '--json',
  ])
  expect(add.code, add.err).toBe(0)
  const dep = await cli([
    'deploy',
    'wake@1.0.0',
    '--target',
    'tag=fleet=tls',
    '--wait',
    '--timeout',
    '90',
    '--hub',
    hub.httpUrl,
    '--json',
  ])
  expect(dep.code, dep.err + dep.out).toBe(0)
  const view = JSON.parse(dep.out) as { devices: { deviceId: string; state: string }[] }
  expect(view.devices.map((d) => d.state)).toEqual(agents.map(() => 'activated'))

  const input = wakeInput(5)
  const session = await ort.InferenceSession.create(MODELS.wakeHello)
  const t = input['onnx::Flatten_0']
  const direct = await session.run({ 'onnx::Flatten_0': new ort.Tensor('float32', Float32Array.from(t.data), t.dims) })
  const want = Array.from(direct['39'].data as Float32Array)
  await session.release()
  for (const a of agents) {
    for (let i = 0; i < 10; i++) await api(a.url, 'POST', '/v1/models/wake/infer', { inputs: wakeInput(i) })
    const r = await api(a.url, 'POST', '/v1/models/wake/infer', { inputs: input })
    r.outputs['39'].data.forEach((v: number, i: number) => expect(Math.abs(v - want[i])).toBeLessThan(1e-6))
  }
  const db = new Database(join(hubDir, 'hub.db'), { readonly: true })
  try {
    await waitFor(
      () => {
        const rows = db
          .prepare('SELECT device_id, sum(requests) AS n FROM telemetry WHERE model = ? GROUP BY device_id')
          .all('wake') as { device_id: string; n: number }[]
        return rows.length === agents.length && rows.every((x) => x.n >= 11)
      },
      { timeoutMs: 30_000, what: 'telemetry rows over TLS' },
    )
  } finally {
    db.close()
  }
}

describe('TLS on the embedded broker and the API', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'ef-e2e-tls-'))
  const otherCa = join(tmp, 'other')
  let hub: Hub
  let agents: Agent[]
  const extra: { stop: () => Promise<void> }[] = []

  beforeAll(async () => {
    hub = await startHub({ dataDir: join(tmp, 'hub'), extraArgs: ['--tls', '--mqtts-port', '0'] })
    // A second, unrelated CA: what a wrong --ca, or a forged device certificate, looks like.
    await ca.ensureHubTls(otherCa, ['localhost', '127.0.0.1'])
    agents = await startFleet(
      hub,
      [
        { id: 'gw-1', profile: 'gateway-rpi4', tags: { fleet: 'tls' } },
        // Artifacts over HTTPS range requests [EF-4.10] with the same CA.
        { id: 'pc-1', profile: 'industrial-x86', tags: { fleet: 'tls' }, args: ['--transfer', 'http'] },
      ],
      { tmp },
    )
    await waitFor(async () => (await isOnline(hub, 'gw-1')) && (await isOnline(hub, 'pc-1')), {
      what: 'agents online over TLS',
    })
  })

  afterAll(async () => {
    await Promise.all([...(agents ?? []), ...extra].map((a) => a.stop()))
    await hub?.stop()
    rmSync(tmp, { recursive: true, force: true })
  })

  it('prints mqtts:// and https:// URLs and the CA file', () => {
    expect(hub.mqttUrl).toMatch(/^mqtts:\/\//)
    expect(hub.httpUrl).toMatch(/^https:\/\//)
    expect(hub.caFile && existsSync(hub.caFile)).toBe(true)
  })

  it('runs the skeleton loop with agents given only --ca (one downloading over HTTPS)', async () => {
    await skeletonLoop(hub, agents, join(tmp, 'hub'))
    const events = (await api(hub.httpUrl, 'GET', '/api/v1/devices/pc-1')).events as {
      kind: string
      message?: string
    }[]
    // The HTTP agent fetched over HTTPS: no fallback to MQTT was reported.
    expect(
      events.filter((e) => e.kind === 'chunk_rejected' && (e.message ?? '').includes('HTTP download failed')),
    ).toEqual([])
  })

  it('an agent given another CA refuses the hub (EF_ERR_TLS_UNTRUSTED_PEER) and never comes online', async () => {
    const secret = await provision(hub, { id: 'rogue-ca', profile: 'gateway-rpi4' })
    const a = await startDevice(hub, {
      id: 'rogue-ca',
      secret,
      profile: 'gateway-rpi4',
      dataDir: join(tmp, 'rogue-ca'),
      extraArgs: ['--ca', join(otherCa, 'tls', 'ca.pem')],
    })
    extra.push(a)
    await waitFor(() => a.stderr().includes('EF_ERR_TLS_UNTRUSTED_PEER'), { timeoutMs: 15_000, what: 'refusal log' })
    expect(await isOnline(hub, 'rogue-ca')).toBe(false)
  })

  it('the CLI with another CA refuses the hub; with the right one it works', async () => {
    const bad = await cli(['devices', 'list', '--hub', hub.httpUrl], { EDGEFLEET_CA: join(otherCa, 'tls', 'ca.pem') })
    expect(bad.code).toBe(1)
    expect(bad.err).toContain('EF_ERR_TLS_UNTRUSTED_PEER')
    const good = await cli(['devices', 'list', '--hub', hub.httpUrl, '--json'])
    expect(good.code, good.err).toBe(0)
  })

  it('mutual TLS: a device with its certificate connects (its password is not what admits it)', async () => {
    const added = await cli([
      'device',
      'add',
      'mt-1',
      '--profile',
      'gateway-rpi4',
      '--cert',
      '--out',
      tmp,
      '--hub',
      hub.httpUrl,
    ])
    expect(added.code, added.err).toBe(0)
    expect(added.out).toContain(`--ca ${hub.caFile}`)
    expect(added.out).toContain(`--cert ${join(tmp, 'mt-1-cert.pem')} --key ${join(tmp, 'mt-1-key.pem')}`)
    const hubKey = /hub public key: (\S+)/.exec(added.out)![1]
    // The hub key as `device add` printed it, not the one startDevice would take from the hub.
    const agent = await startAgent({
      mqttUrl: hub.mqttUrl,
      deviceId: 'mt-1',
      secret: 'not-the-secret',
      hubKey,
      profile: 'gateway-rpi4',
      dataDir: join(tmp, 'mt-1'),
      extraArgs: ['--ca', hub.caFile!, '--cert', join(tmp, 'mt-1-cert.pem'), '--key', join(tmp, 'mt-1-key.pem')],
    })
    extra.push(agent)
    await waitFor(() => isOnline(hub, 'mt-1'), { timeoutMs: 20_000, what: 'mt-1 online by certificate' })
  })

  it('a device certificate from another CA is refused at CONNECT', async () => {
    const secret = await provision(hub, { id: 'mt-2', profile: 'gateway-rpi4' })
    const forged = await ca.issueDeviceCert(otherCa, 'mt-2')
    writeFileSync(join(tmp, 'mt-2-cert.pem'), forged.cert)
    writeFileSync(join(tmp, 'mt-2-key.pem'), forged.key, { mode: 0o600 })
    const a = await startDevice(hub, {
      id: 'mt-2',
      secret, // even the right password does not help a certificate the hub CA did not issue
      profile: 'gateway-rpi4',
      dataDir: join(tmp, 'mt-2'),
      extraArgs: ['--ca', hub.caFile!, '--cert', join(tmp, 'mt-2-cert.pem'), '--key', join(tmp, 'mt-2-key.pem')],
    })
    extra.push(a)
    await waitFor(() => hub.stderr().includes('EF_ERR_AUTH_CERT_INVALID'), { timeoutMs: 15_000, what: 'hub refusal' })
    expect(await isOnline(hub, 'mt-2')).toBe(false)
  })

  it('refuses plain listeners on a non-loopback address without --insecure (EF_ERR_INSECURE_BIND)', async () => {
    const r = await cli(['hub', 'start', '--host', '0.0.0.0', '--no-tls', '--data', join(tmp, 'plain'), '--json'])
    expect(r.code).toBe(1)
    expect(r.out + r.err).toContain('EF_ERR_INSECURE_BIND')
  })
})

describe('TLS behind a Mosquitto TLS listener', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'ef-e2e-mosq-tls-'))
  let mosq: Mosquitto
  let hub: Hub
  let agents: Agent[]

  beforeAll(async () => {
    // The hub CA issues Mosquitto's certificate: created before the hub starts, which then reuses it.
    const files = await ca.ensureHubTls(join(tmp, 'hub'), ['localhost', '127.0.0.1', hostname()])
    mosq = await startMosquitto(join(tmp, 'mosquitto'), undefined, { tls: files })
    hub = await startHub({
      dataDir: join(tmp, 'hub'),
      extraArgs: ['--tls', '--broker', mosq.url, '--mosquitto-dir', mosq.dir, '--mosquitto-pid-file', mosq.pidFile],
    })
    agents = await startFleet(
      hub,
      [
        { id: 'm-1', profile: 'gateway-rpi4', tags: { fleet: 'tls' } },
        { id: 'm-2', profile: 'industrial-x86', tags: { fleet: 'tls' } },
      ],
      { tmp },
    )
    await waitFor(async () => (await isOnline(hub, 'm-1')) && (await isOnline(hub, 'm-2')), {
      what: 'agents online via Mosquitto TLS',
    })
  })

  afterAll(async () => {
    await Promise.all((agents ?? []).map((a) => a.stop()))
    await hub?.stop()
    await mosq?.stop()
    rmSync(tmp, { recursive: true, force: true })
  })

  it('runs the skeleton loop through Mosquitto over TLS with agents given only --ca', async () => {
    expect(hub.mqttUrl).toBe(mosq.url)
    expect(mosq.url).toMatch(/^mqtts:\/\//)
    await skeletonLoop(hub, agents, join(tmp, 'hub'))
  })
})
