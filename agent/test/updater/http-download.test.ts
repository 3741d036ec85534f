// HTTP range downloads from an artifact origin [EF-4.13] against real HTTP
// servers that misbehave the ways origins and CDNs do: each failure has its
// code, only verified chunks are kept, and another source resumes from them.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, beforeEach, afterEach, describe, expect, it } from 'vitest'
import { chunkArtifact, fixedBoundaries, type DeployCmd, type Manifest } from '@edgefleet/shared'
import { ChunkStore } from '../../src/updater/chunks.js'
import { httpDownload, newDownloadStats } from '../../src/updater/http-download.js'
import { httpSources } from '../../src/updater/sources.js'
import { tempDir } from '../fixtures/agent.js'

const CHUNK = 4096
const bytes = randomBytes(CHUNK * 40 + 123)
const chunked = chunkArtifact(bytes, fixedBoundaries(bytes.length, CHUNK))
const manifest = {
  artifact: { format: 'onnx', digest: chunked.digest, size: chunked.size, chunks: chunked.chunks },
} as unknown as Manifest
const tampered = Buffer.from(bytes)
tampered[CHUNK * 5 + 7] ^= 0xff // chunk 5 no longer matches the manifest

/** Answers a range of `body` as a CDN would (206 + Content-Range), or the misbehaviour `mode` names. */
function serve(req: IncomingMessage, res: ServerResponse, mode: string): void {
  const body = mode === 'tampered' ? tampered : mode === 'wrong-length' ? bytes.subarray(0, bytes.length - 1) : bytes
  if (mode === 'missing') return void res.writeHead(404).end('not found')
  if (mode === 'broken') return void res.writeHead(503).end('upstream down')
  if (mode === 'whole') return void res.writeHead(200, { 'content-length': body.length }).end(body)
  const [, from, to] = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '') ?? []
  const start = Number(from)
  const end = Math.min(Number(to), body.length - 1)
  res.writeHead(206, { 'content-range': `bytes ${start}-${end}/${body.length}`, 'content-length': end - start + 1 })
  const part = body.subarray(start, end + 1)
  if (mode === 'hung') {
    res.flushHeaders()
    return
  }
  if (mode === 'truncated') return void res.write(part.subarray(0, part.length >> 1), () => res.destroy())
  if (mode === 'slow') {
    let at = 0
    const timer = setInterval(() => {
      if (res.destroyed || at >= part.length) return clearInterval(timer)
      res.write(part.subarray(at, at + 64))
      at += 64
    }, 50)
    return
  }
  res.end(part)
}

describe('httpDownload from an origin', () => {
  let server: Server
  let base = ''
  const seen: { url: string; authorization?: string }[] = []
  let temp: ReturnType<typeof tempDir>
  let store: ChunkStore
  beforeAll(async () => {
    server = createServer((req, res) => {
      seen.push({ url: req.url ?? '', authorization: req.headers.authorization })
      serve(req, res, (req.url ?? '/').slice(1))
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    base = `http://127.0.0.1:${(server.address() as { port: number }).port}/`
  })
  afterAll(async () => {
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  })
  beforeEach(() => {
    temp = tempDir()
    store = new ChunkStore(temp.dir)
    seen.length = 0
  })
  afterEach(() => temp.cleanup())

  const fetchFrom = (mode: string, extra: { stallMs?: number; minBytesPerSec?: number } = {}) =>
    httpDownload(manifest, store, { url: base + mode, timeoutMs: 10_000, maxRangeBytes: CHUNK * 8, ...extra })
  const held = () => chunked.chunks.filter((c) => store.has(c.digest)).length

  it('fetches every chunk by range requests, sending no credentials', async () => {
    const stats = await fetchFrom('good')
    expect(stats).toMatchObject({ fetched: chunked.chunks.length, receivedBytes: bytes.length, rejected: 0 })
    expect(Buffer.concat(chunked.chunks.map((c) => store.get(c.digest)!)).equals(bytes)).toBe(true)
    expect(seen.length).toBe(Math.ceil(chunked.chunks.length / 8))
    expect(seen.every((s) => s.authorization === undefined)).toBe(true)
  })

  for (const [mode, code] of [
    ['missing', 'EF_ERR_ARTIFACT_SOURCE_UNAVAILABLE'], // 404
    ['broken', 'EF_ERR_ARTIFACT_SOURCE_UNAVAILABLE'], // 503
    ['whole', 'EF_ERR_ARTIFACT_SOURCE_UNAVAILABLE'], // 200: the origin ignored the range
    ['wrong-length', 'EF_ERR_ARTIFACT_SIZE_MISMATCH'], // another file under that name
    ['truncated', 'EF_ERR_ARTIFACT_SIZE_MISMATCH'], // connection closed inside the body
  ] as const) {
    it(`refuses a ${mode} answer with ${code}, keeping nothing unverified`, async () => {
      await expect(fetchFrom(mode)).rejects.toMatchObject({ code })
      for (const c of chunked.chunks) if (store.has(c.digest)) expect(store.get(c.digest)!.length).toBe(c.size)
      if (mode !== 'truncated') expect(held()).toBe(0)
    })
  }

  it('refuses a tampered blob at its first bad chunk with EF_ERR_CHUNK_HASH_MISMATCH; the chunks before it stay', async () => {
    const stats = newDownloadStats()
    await expect(
      httpDownload(manifest, store, { url: `${base}tampered`, timeoutMs: 10_000, concurrency: 1 }, stats),
    ).rejects.toMatchObject({ code: 'EF_ERR_CHUNK_HASH_MISMATCH' })
    expect(stats.rejected).toBe(1)
    expect(held()).toBe(5)
    expect(store.has(chunked.chunks[5].digest)).toBe(false)
    // Another source resumes from the five verified chunks.
    const rest = await fetchFrom('good')
    expect(rest.fetched).toBe(chunked.chunks.length - 5)
    expect(held()).toBe(chunked.chunks.length)
  })

  it('abandons a trickling origin after one window and a hung one likewise', async () => {
    for (const mode of ['slow', 'hung']) {
      const started = Date.now()
      await expect(fetchFrom(mode, { stallMs: 400, minBytesPerSec: 10_000 })).rejects.toMatchObject({
        code: 'EF_ERR_ARTIFACT_SOURCE_UNAVAILABLE',
      })
      expect(Date.now() - started).toBeLessThan(3000)
    }
  })

  it('reports an origin that refuses connections as EF_ERR_ARTIFACT_SOURCE_UNAVAILABLE', async () => {
    const closed = createServer()
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve))
    const port = (closed.address() as { port: number }).port
    await new Promise((resolve) => closed.close(resolve))
    await expect(
      httpDownload(manifest, store, { url: `http://127.0.0.1:${port}/x`, timeoutMs: 5000 }),
    ).rejects.toMatchObject({ code: 'EF_ERR_ARTIFACT_SOURCE_UNAVAILABLE' })
  })

  it('does nothing when every chunk is already held', async () => {
    await fetchFrom('good')
    seen.length = 0
    expect((await fetchFrom('good')).fetched).toBe(0)
    expect(seen).toEqual([])
  })
})

describe('httpSources', () => {
  const cmd = (extra: Partial<DeployCmd>) =>
    ({
      manifest: { artifact: { digest: chunked.digest, url: `/api/v1/artifacts/${chunked.digest}` } },
      httpBase: 'http://hub:8080',
      ...extra,
    }) as unknown as DeployCmd
  const http = { deviceId: 'd1', secret: 's3cret', prefer: true }

  it('puts the origin first, without credentials, then the hub with them', () => {
    const sources = httpSources(cmd({ artifactBase: 'https://cdn.example/ef/' }), http)
    expect(sources.map((s) => [s.name, s.options.url])).toEqual([
      ['origin', `https://cdn.example/ef/${chunked.digest}`],
      ['hub HTTP', `http://hub:8080/api/v1/artifacts/${chunked.digest}`],
    ])
    expect(sources[0].options.credentials).toBeUndefined()
    expect(sources[1].options.credentials).toEqual({ deviceId: 'd1', secret: 's3cret' })
  })

  it('offers the origin without --transfer http, and the hub path only with it', () => {
    expect(httpSources(cmd({ artifactBase: 'http://o/' }), { ...http, prefer: false }).map((s) => s.name)).toEqual([
      'origin',
    ])
    expect(httpSources(cmd({}), http).map((s) => s.name)).toEqual(['hub HTTP'])
    expect(httpSources(cmd({}), { ...http, prefer: false })).toEqual([])
  })

  it("trusts the system's CAs and the agent's own CA for the origin, and sends it no client certificate", () => {
    const ca = Buffer.from('-----BEGIN CERTIFICATE-----\nown\n-----END CERTIFICATE-----\n')
    const [origin] = httpSources(cmd({ artifactBase: 'https://o/' }), {
      ...http,
      tls: { ca, cert: Buffer.from('c'), key: Buffer.from('k') },
    })
    expect(origin.options.tls?.ca).toContain(ca)
    expect((origin.options.tls?.ca as unknown[]).length).toBeGreaterThan(50)
    expect(origin.options.tls?.cert).toBeUndefined()
  })
})
