// Artifacts over HTTP with range requests [EF-4.10]: the optional path for
// devices behind brokers that cap payload sizes. Devices authenticate with
// HTTP Basic (device id : secret), as they do on the broker.
import { createReadStream, statSync } from 'node:fs'
import type { FastifyPluginAsync, FastifyRequest } from 'fastify'
import { Type } from '@sinclair/typebox'
import { EdgeFleetError, digestsEqual, isDigest, sha256Hex } from '@edgefleet/shared'
import type { ApiDeps } from '../server.js'

export function deviceFrom(req: FastifyRequest, secretHashOf: (id: string) => string | undefined): string {
  const h = req.headers.authorization
  const m = h ? /^Basic ([A-Za-z0-9+/=]+)$/.exec(h) : null
  if (m) {
    const [id, secret] = Buffer.from(m[1], 'base64').toString('utf8').split(/:(.*)/s)
    const expected = id ? secretHashOf(id) : undefined
    if (expected && secret && digestsEqual(sha256Hex(secret), expected)) return id
  }
  throw new EdgeFleetError('EF_ERR_AUTH_BAD_CREDENTIALS', 'artifact downloads need HTTP Basic device-id:secret')
}

/** Parses one `bytes=a-b` range (the only form agents send). */
export function parseRange(header: string | undefined, size: number): [number, number] | undefined {
  if (!header) return undefined
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim())
  if (!match || (match[1] === '' && match[2] === ''))
    throw new EdgeFleetError('EF_ERR_HTTP_BAD_REQUEST', `unsupported range ${header}`)
  let start: number
  let end: number
  if (match[1] === '') {
    start = Math.max(0, size - Number(match[2]))
    end = size - 1
  } else {
    start = Number(match[1])
    end = match[2] === '' ? size - 1 : Math.min(Number(match[2]), size - 1)
  }
  if (start > end || start >= size) throw new EdgeFleetError('EF_ERR_HTTP_RANGE', `${header} of ${size} bytes`)
  return [start, end]
}

export const artifactRoutes: FastifyPluginAsync<ApiDeps> = async (app, deps) => {
  app.get(
    '/api/v1/artifacts/:digest',
    { schema: { params: Type.Object({ digest: Type.String({ maxLength: 64 }) }) } },
    async (req, res) => {
      deviceFrom(req, (id) => deps.store.devices.secretHash(id))
      const { digest } = req.params as { digest: string }
      if (!isDigest(digest) || !deps.store.registry.getArtifact(digest) || !deps.blobs.has(digest))
        throw new EdgeFleetError('EF_ERR_BUILD_NOT_FOUND', digest)
      const path = deps.blobs.path(digest)
      const size = statSync(path).size
      const range = parseRange(req.headers.range, size)
      res
        .header('accept-ranges', 'bytes')
        .header('content-type', 'application/octet-stream')
        .header('etag', `"${digest}"`)
      if (!range) return res.header('content-length', size).send(createReadStream(path))
      const [start, end] = range
      return res
        .status(206)
        .header('content-range', `bytes ${start}-${end}/${size}`)
        .header('content-length', end - start + 1)
        .send(createReadStream(path, { start, end }))
    },
  )
}
