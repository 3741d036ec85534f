// Artifacts over HTTP with range requests [EF-4.10]: the optional path for
// devices behind brokers that cap payload sizes. Devices authenticate with
// HTTP Basic (device id : secret), as they do on the broker.
import { statSync } from 'node:fs'
import type { FastifyPluginAsync, FastifyRequest } from 'fastify'
import { Type } from '@sinclair/typebox'
import { EdgeFleetError, digestsEqual, isDigest, sha256Hex } from '@edgefleet/shared'
import type { ApiDeps } from '../server.js'
import { sendFileRange } from '../file-range.js'

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
      return sendFileRange(req, res, {
        path,
        size: statSync(path).size,
        contentType: 'application/octet-stream',
        etag: digest,
      })
    },
  )
}
