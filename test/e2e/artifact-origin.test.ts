// Artifacts from an HTTP origin end to end [EF-4.13]: a real hub keeps its
// builds in a --blob-dir that a real nginx serves as a CDN origin would, and
// real agent processes fetch from it by range requests. The origin is not
// trusted: a tampered blob there, or no origin at all, each end with the
// build activated from the hub, with the refusal's code on record.
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startHub, startFleet, api, waitFor } from '../support/fleet.mjs'
import { startNginx, type Nginx } from '../support/nginx.mjs'
import { freePort } from '../support/mosquitto.mjs'
import { matmulModel } from '../support/models.mjs'

interface Ev {
  kind: string
  version?: string
  code?: string
  message?: string
  receivedBytes?: number
}
const FP32 = encodeURIComponent(JSON.stringify({ precision: 'fp32' }))
const AGENTS = ['o1', 'o2']

describe('artifacts from an nginx origin', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'ef-origin-'))
  const blobDir = join(tmp, 'blobs')
  let hub: Awaited<ReturnType<typeof startHub>>
  let agents: Awaited<ReturnType<typeof startFleet>>
  let nginx: Nginx | undefined
  let port = 0

  const origin = async (root: string, name: string) => {
    await nginx?.stop()
    nginx = await startNginx(join(tmp, name), root, { port })
    return nginx
  }
  const hubBytes = async () => {
    const d = (await api(hub.httpUrl, 'GET', '/api/v1/hub')).distribution as {
      broadcastBytes: number
      repairBytes: number
    }
    return d.broadcastBytes + d.repairBytes
  }
  const register = async (version: string, seed: number) => {
    const reg = await api(
      hub.httpUrl,
      'POST',
      `/api/v1/models?name=m&version=${version}&options=${FP32}`,
      await matmulModel(3e6, seed),
    )
    return reg.builds[0] as { artifact: string; sizeBytes: number }
  }
  const deployAll = async (version: string) => {
    const dep = await api(hub.httpUrl, 'POST', '/api/v1/deployments', {
      model: 'm',
      version,
      target: 'tag=fleet=origin',
    })
    return waitFor(
      async () => {
        const v = await api(hub.httpUrl, 'GET', `/api/v1/deployments/${dep.deployment.id}`)
        return v.deployment.done ? (v.devices as { deviceId: string; state: string }[]) : undefined
      },
      { what: `deployment of ${version}`, timeoutMs: 120_000 },
    )
  }
  const events = async (id: string, version: string): Promise<Ev[]> =>
    ((await api(hub.httpUrl, 'GET', `/api/v1/devices/${id}`)).events as Ev[]).filter((e) => e.version === version)

  beforeAll(async () => {
    port = await freePort()
    await origin(blobDir, 'nginx-good')
    hub = await startHub({
      dataDir: join(tmp, 'hub'),
      extraArgs: ['--blob-dir', blobDir, '--artifact-url', nginx!.url],
    })
    agents = await startFleet(
      hub,
      AGENTS.map((id) => ({ id, profile: 'industrial-x86', tags: { fleet: 'origin' } })),
      { tmp },
    )
  })

  afterAll(async () => {
    await Promise.all((agents ?? []).map((a) => a.stop()))
    await hub?.stop()
    await nginx?.stop()
    rmSync(tmp, { recursive: true, force: true })
  })

  it('every agent fetches the build from the origin; the hub sends no artifact bytes', async () => {
    const build = await register('1.0.0', 1)
    const before = await hubBytes()
    const devices = await deployAll('1.0.0')
    expect(devices.map((d) => d.state)).toEqual(AGENTS.map(() => 'activated'))
    // nginx served the whole build to each agent, by range requests only.
    const served = nginx!.accessLog().filter((e) => e.uri === `/${build.artifact}`)
    expect(served.length).toBeGreaterThan(0)
    expect(served.every((e) => e.status === 206 && e.range.startsWith('bytes='))).toBe(true)
    expect(nginx!.bytesServed(`/${build.artifact}`)).toBe(build.sizeBytes * AGENTS.length)
    expect(await hubBytes()).toBe(before)
    for (const id of AGENTS) {
      const downloaded = (await events(id, '1.0.0')).find((e) => e.kind === 'downloaded')
      expect(downloaded?.receivedBytes).toBe(build.sizeBytes)
      expect(downloaded?.message).toBe(`received from origin ${build.sizeBytes} B, MQTT 0 B`)
    }
  })

  it('a tampered blob on the origin is refused (EF_ERR_CHUNK_HASH_MISMATCH) and the hub completes the update', async () => {
    const build = await register('1.1.0', 2)
    // A CDN cache holding a damaged copy: the hub's own blob is intact.
    const cache = join(tmp, 'cache')
    mkdirSync(cache, { recursive: true })
    const copy = join(cache, build.artifact)
    copyFileSync(join(blobDir, build.artifact), copy)
    const bytes = readFileSync(copy)
    bytes[Math.floor(bytes.length / 2)] ^= 0xff
    writeFileSync(copy, bytes)
    await origin(cache, 'nginx-tampered')
    const before = await hubBytes()
    const devices = await deployAll('1.1.0')
    expect(devices.map((d) => d.state)).toEqual(AGENTS.map(() => 'activated'))
    expect(nginx!.bytesServed(`/${build.artifact}`)).toBeGreaterThan(0)
    expect(await hubBytes()).toBeGreaterThan(before)
    for (const id of AGENTS) {
      const evs = await events(id, '1.1.0')
      const refused = evs.find((e) => e.kind === 'chunk_rejected')
      expect(refused).toMatchObject({ code: 'EF_ERR_CHUNK_HASH_MISMATCH' })
      expect(refused?.message).toMatch(/^origin download failed .*continuing from MQTT$/)
      expect(evs.find((e) => e.kind === 'downloaded')?.message).toMatch(/^received from origin \d+ B, MQTT [1-9]\d* B$/)
    }
  })

  it('with the origin down, agents fall back (EF_ERR_ARTIFACT_SOURCE_UNAVAILABLE) and the update completes over MQTT', async () => {
    await register('1.2.0', 3)
    await nginx?.stop()
    nginx = undefined
    const before = await hubBytes()
    const devices = await deployAll('1.2.0')
    expect(devices.map((d) => d.state)).toEqual(AGENTS.map(() => 'activated'))
    expect(await hubBytes()).toBeGreaterThan(before)
    for (const id of AGENTS) {
      const evs = await events(id, '1.2.0')
      expect(evs.find((e) => e.kind === 'chunk_rejected')).toMatchObject({ code: 'EF_ERR_ARTIFACT_SOURCE_UNAVAILABLE' })
      // Chunks shared with earlier builds are held already; the rest crossed MQTT.
      expect(evs.find((e) => e.kind === 'downloaded')?.message).toMatch(/^received from origin 0 B, MQTT [1-9]\d* B$/)
    }
  })
})
