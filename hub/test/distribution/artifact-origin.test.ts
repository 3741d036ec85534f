// The hub's side of artifact origins [EF-4.13]: --artifact-url is checked at
// start and carried by every deploy command; a hub moved to a --blob-dir keeps
// serving the builds it made before (adopted from <data>/blobs), and the blob
// of a build is named by the manifest's artifact digest, as an origin serves it.
import { readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { cmdCodec, sha256Hex, topics, type DeployCmd } from '@edgefleet/shared'
import { startHub, type Hub } from '../../src/hub.js'
import { COMPILE_WORKER, MODELS, connectDevice, provision, tempDir } from '../fixtures/hub.js'

const { dir, cleanup } = tempDir('ef-origin-')
const hubs: Hub[] = []
afterAll(async () => {
  await Promise.all(hubs.map((h) => h.close()))
  cleanup()
})

const start = async (extra: { blobDir?: string; artifactUrl?: string }) => {
  const hub = await startHub({
    dataDir: join(dir, 'data'),
    mqttPort: 0,
    httpPort: 0,
    log: 'silent',
    compileWorkerUrl: COMPILE_WORKER,
    auth: false,
    rolloutTickMs: 0,
    ...extra,
  })
  hubs.push(hub)
  return hub
}

describe('artifact origin, hub side', () => {
  let artifact = ''
  let secret = ''

  it('refuses an --artifact-url that is not an http(s) base URL', async () => {
    for (const artifactUrl of ['ftp://cdn/x/', 'not a url', 'https://cdn/x/?token=1', 'https://user:pw@cdn/x/']) {
      await expect(start({ artifactUrl }), artifactUrl).rejects.toMatchObject({ code: 'EF_ERR_CONFIG_INVALID' })
    }
  })

  it('builds land in <data>/blobs by default, named by the artifact digest', async () => {
    const hub = await start({})
    secret = await provision(hub, 'gw-1') // builds are made for the profiles of the fleet
    const res = await hub.api.inject({
      method: 'POST',
      url: `/api/v1/models?name=wake&version=1.0.0&options=${encodeURIComponent('{"precision":"fp32"}')}`,
      payload: readFileSync(MODELS.hello),
      headers: { 'content-type': 'application/octet-stream' },
    })
    expect(res.statusCode, res.body).toBe(201)
    artifact = res.json<{ builds: { artifact: string }[] }>().builds[0].artifact
    const file = join(dir, 'data', 'blobs', artifact)
    expect(sha256Hex(readFileSync(file))).toBe(artifact)
    await hubs.pop()?.close()
  })

  it('a restart with --blob-dir adopts them, and deploy commands carry --artifact-url as artifactBase', async () => {
    const blobDir = join(dir, 'shared-blobs')
    const hub = await start({ blobDir, artifactUrl: 'http://cdn.example:8080/edgefleet' })
    expect(readdirSync(blobDir)).toContain(artifact)
    const device = await connectDevice(hub.mqttUrl, 'gw-1', secret)
    const got = new Promise<DeployCmd>((resolve) =>
      device.on('message', (_topic, payload) => resolve(cmdCodec.decode(payload) as DeployCmd)),
    )
    await device.subscribeAsync(topics.cmd('gw-1'), { qos: 1 })
    const dep = await hub.api.inject({
      method: 'POST',
      url: '/api/v1/deployments',
      payload: { model: 'wake', version: '1.0.0', target: 'device=gw-1', now: true },
    })
    expect(dep.statusCode, dep.body).toBe(201)
    const cmd = await got
    device.end(true)
    expect(cmd.artifactBase).toBe('http://cdn.example:8080/edgefleet/')
    expect(cmd.manifest.artifact.digest).toBe(artifact)
    // The hub's own HTTP path still serves it from the new folder.
    const basic = `Basic ${Buffer.from(`gw-1:${secret}`).toString('base64')}`
    const served = await hub.api.inject({
      method: 'GET',
      url: `/api/v1/artifacts/${artifact}`,
      headers: { authorization: basic, range: 'bytes=0-9' },
    })
    expect(served.statusCode).toBe(206)
    expect(served.rawPayload).toEqual(readFileSync(join(blobDir, artifact)).subarray(0, 10))
  })
})
