// Serving one file with HTTP range requests [EF-4.10]: the one implementation
// behind every download route (model artifacts, agent packages), so ranges,
// 416s, suffix ranges and HEAD behave the same everywhere.
import { createReadStream } from 'node:fs'
import { Readable } from 'node:stream'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { EdgeFleetError } from '@edgefleet/shared'

/**
 * Parses one `bytes=a-b`, `bytes=a-` or `bytes=-n` range (what agents and CDNs
 * send); undefined without a Range header. Throws EF_ERR_HTTP_BAD_REQUEST for
 * another form (several ranges included) and EF_ERR_HTTP_RANGE for a range
 * outside the file.
 */
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

export interface RangeFile {
  path: string
  /** The file's length in bytes (the caller knows it: from the registry, or a stat). */
  size: number
  contentType: string
  /** Sent as a strong ETag (quoted): content-addressed files use their digest. */
  etag?: string
}

/**
 * Answers `req` with `file`: 200 with the whole file, 206 with one range and
 * its Content-Range, 416 (EF_ERR_HTTP_RANGE, with `Content-Range: bytes
 * *\/size`) past the end. A HEAD answers the same headers without reading the
 * file.
 */
export function sendFileRange(req: FastifyRequest, res: FastifyReply, file: RangeFile): FastifyReply {
  res.header('accept-ranges', 'bytes').header('content-type', file.contentType)
  if (file.etag) res.header('etag', `"${file.etag}"`)
  let range: [number, number] | undefined
  try {
    range = parseRange(req.headers.range, file.size)
  } catch (err) {
    // RFC 9110 §15.5.17: a 416 names the current length, so a client can correct its request.
    if (err instanceof EdgeFleetError && err.code === 'EF_ERR_HTTP_RANGE')
      res.header('content-range', `bytes */${file.size}`)
    throw err
  }
  const [start, end] = range ?? [0, file.size - 1]
  if (range) res.status(206).header('content-range', `bytes ${start}-${end}/${file.size}`)
  res.header('content-length', file.size === 0 ? 0 : end - start + 1)
  // fastify's HEAD sibling drains a stream body: an empty one keeps the headers and spares the disk read.
  if (req.method === 'HEAD' || file.size === 0) return res.send(Readable.from([]))
  return res.send(createReadStream(file.path, { start, end }))
}
