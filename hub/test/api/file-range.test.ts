// sendFileRange, the one range server behind the artifact and agent-package
// routes [EF-4.10]: a real fastify app with the hub's error handler, through
// inject() and through a real socket (HEAD must not send a body).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { request } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import Fastify, { type FastifyInstance } from 'fastify'
import { errorHandler } from '../../src/api/errors.js'
import { parseRange, sendFileRange } from '../../src/api/file-range.js'

describe('sendFileRange', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ef-range-'))
  const bytes = randomBytes(10_000)
  const path = join(dir, 'blob')
  const emptyPath = join(dir, 'empty')
  let app: FastifyInstance
  beforeAll(async () => {
    writeFileSync(path, bytes)
    writeFileSync(emptyPath, '')
    app = Fastify()
    app.setErrorHandler(errorHandler)
    app.get('/f', (req, res) => sendFileRange(req, res, { path, size: bytes.length, contentType: 'x/y', etag: 'abc' }))
    app.get('/empty', (req, res) => sendFileRange(req, res, { path: emptyPath, size: 0, contentType: 'x/y' }))
    await app.listen({ port: 0, host: '127.0.0.1' })
  })
  afterAll(async () => {
    await app.close()
    rmSync(dir, { recursive: true, force: true })
  })
  const get = (range?: string, url = '/f') => app.inject({ method: 'GET', url, headers: range ? { range } : {} })

  it('answers the whole file with 200, its length, type and strong ETag', async () => {
    const res = await get()
    expect(res.statusCode).toBe(200)
    expect(res.rawPayload).toEqual(bytes)
    expect(res.headers).toMatchObject({
      'content-length': String(bytes.length),
      'content-type': 'x/y',
      'accept-ranges': 'bytes',
      etag: '"abc"',
    })
    expect(res.headers['content-range']).toBeUndefined()
  })

  it('answers bytes=a-b, bytes=a- and an end past the file with 206 and the right Content-Range', async () => {
    for (const [range, start, end] of [
      ['bytes=100-199', 100, 199],
      ['bytes=9990-', 9990, 9999],
      ['bytes=0-0', 0, 0],
      ['bytes=9000-20000', 9000, 9999],
    ] as const) {
      const res = await get(range)
      expect(res.statusCode, range).toBe(206)
      expect(res.headers['content-range']).toBe(`bytes ${start}-${end}/${bytes.length}`)
      expect(res.headers['content-length']).toBe(String(end - start + 1))
      expect(res.rawPayload).toEqual(bytes.subarray(start, end + 1))
    }
  })

  it('answers suffix ranges bytes=-n with the last n bytes (the whole file when n is larger)', async () => {
    const last = await get('bytes=-500')
    expect(last.statusCode).toBe(206)
    expect(last.headers['content-range']).toBe(`bytes 9500-9999/${bytes.length}`)
    expect(last.rawPayload).toEqual(bytes.subarray(9500))
    const all = await get('bytes=-20000')
    expect(all.headers['content-range']).toBe(`bytes 0-9999/${bytes.length}`)
    expect(all.rawPayload).toEqual(bytes)
  })

  it('refuses a range past the end with 416 EF_ERR_HTTP_RANGE and Content-Range bytes */size', async () => {
    for (const range of ['bytes=10000-', 'bytes=20000-20010', 'bytes=-0', 'bytes=5-4']) {
      const res = await get(range)
      expect(res.statusCode, range).toBe(416)
      expect(res.json().error.code).toBe('EF_ERR_HTTP_RANGE')
      expect(res.headers['content-range']).toBe(`bytes */${bytes.length}`)
    }
    const empty = await get('bytes=0-', '/empty')
    expect(empty.statusCode).toBe(416)
  })

  it('refuses other range forms (several ranges, other units) with 400 EF_ERR_HTTP_BAD_REQUEST', async () => {
    for (const range of ['bytes=0-1,5-6', 'items=0-1', 'bytes=-', 'bytes=a-b']) {
      const res = await get(range)
      expect(res.statusCode, range).toBe(400)
      expect(res.json().error.code).toBe('EF_ERR_HTTP_BAD_REQUEST')
    }
  })

  it('serves an empty file whole', async () => {
    const res = await get(undefined, '/empty')
    expect(res.statusCode).toBe(200)
    expect(res.headers['content-length']).toBe('0')
    expect(res.rawPayload.length).toBe(0)
  })

  it('answers HEAD with the headers of the GET and no body, over a real socket', async () => {
    const { port } = app.server.address() as { port: number }
    const head = (range?: string) =>
      new Promise<{ status: number; headers: Record<string, unknown>; body: number }>((resolve, reject) => {
        const req = request(
          { host: '127.0.0.1', port, path: '/f', method: 'HEAD', headers: range ? { range } : {} },
          (res) => {
            let body = 0
            res.on('data', (d: Buffer) => (body += d.length))
            res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }))
          },
        )
        req.on('error', reject)
        req.end()
      })
    const whole = await head()
    expect(whole).toMatchObject({ status: 200, body: 0 })
    expect(whole.headers['content-length']).toBe(String(bytes.length))
    const part = await head('bytes=10-19')
    expect(part).toMatchObject({ status: 206, body: 0 })
    expect(part.headers['content-range']).toBe(`bytes 10-19/${bytes.length}`)
    expect(part.headers['content-length']).toBe('10')
    expect((await head('bytes=20000-')).status).toBe(416)
  })

  it('parseRange: undefined without a header', () => {
    expect(parseRange(undefined, 10)).toBeUndefined()
    expect(parseRange('bytes=2-3', 10)).toEqual([2, 3])
  })
})
