// Downloads an agent package over the hub's HTTP API [EF-11.4, EF-4.10]:
// into <slots>/incoming/<sha256>.part, resumed with a range request after an
// interruption, and accepted only when its size and sha256 are the signed
// release's. Device authentication is HTTP Basic, as for model artifacts.
import { createReadStream, createWriteStream, existsSync, mkdirSync, renameSync, rmSync, statSync } from 'node:fs'
import { get as httpGet, type IncomingMessage } from 'node:http'
import { get as httpsGet } from 'node:https'
import { createHash } from 'node:crypto'
import { join } from 'node:path'
import { pipeline } from 'node:stream/promises'
import { EdgeFleetError, type AgentRelease } from '@edgefleet/shared'

export interface PackageFetchOptions {
  deviceId: string
  secret: string
  timeoutMs: number
  /** CA (and client certificate) for https:// URLs [EF-10.4]. */
  tls?: { ca?: Buffer; cert?: Buffer; key?: Buffer }
}

function get(url: URL, headers: Record<string, string>, o: PackageFetchOptions, signal: AbortSignal) {
  const https = url.protocol === 'https:'
  return new Promise<IncomingMessage>((resolve, reject) => {
    const req = (https ? httpsGet : httpGet)(url, { headers, signal, ...(https ? o.tls : {}) }, resolve)
    req.on('error', reject)
  })
}

async function fileSha256(path: string): Promise<string> {
  const h = createHash('sha256')
  await pipeline(createReadStream(path), h)
  return h.digest('hex')
}

function statusError(status: number | undefined, url: URL): EdgeFleetError {
  if (status === 404) return new EdgeFleetError('EF_ERR_AGENT_RELEASE_NOT_FOUND', url.pathname)
  if (status === 401) return new EdgeFleetError('EF_ERR_AUTH_BAD_CREDENTIALS', `HTTP 401 from ${url.origin}`)
  return new EdgeFleetError('EF_ERR_DOWNLOAD_TIMEOUT', `HTTP ${status} for ${url.pathname}`)
}

/** Appends the missing tail of the package to `part` (all of it when `have` is 0). */
async function fetchTail(url: URL, part: string, have: number, o: PackageFetchOptions): Promise<void> {
  const auth = `Basic ${Buffer.from(`${o.deviceId}:${o.secret}`).toString('base64')}`
  const signal = AbortSignal.timeout(o.timeoutMs)
  const res = await get(url, { authorization: auth, ...(have ? { range: `bytes=${have}-` } : {}) }, o, signal)
  if (res.statusCode !== (have ? 206 : 200)) {
    res.resume()
    throw statusError(res.statusCode, url)
  }
  await pipeline(res, createWriteStream(part, { flags: have ? 'a' : 'w', mode: 0o600 }), { signal })
}

/**
 * The package file, downloaded or resumed, checked against the release:
 * resolves with its path; a file of the wrong size or sha256 is deleted
 * (EF_ERR_AGENT_DIGEST_MISMATCH) so the next attempt starts clean.
 */
export async function fetchPackage(
  url: URL,
  incomingDir: string,
  release: AgentRelease,
  opts: PackageFetchOptions,
): Promise<string> {
  mkdirSync(incomingDir, { recursive: true, mode: 0o700 })
  const done = join(incomingDir, `${release.sha256}.tar.gz`)
  if (existsSync(done)) return done
  const part = `${done}.part`
  let have = existsSync(part) ? statSync(part).size : 0
  if (have > release.size) {
    rmSync(part)
    have = 0
  }
  if (have < release.size) await fetchTail(url, part, have, opts)
  await checkPackageFile(part, release)
  renameSync(part, done)
  return done
}

/**
 * Whether `file` is the release's package, whichever path brought it: its
 * size and sha256 must be the signed release's, else it is deleted
 * (EF_ERR_AGENT_DIGEST_MISMATCH) so the next attempt starts clean [EF-11.4].
 */
export async function checkPackageFile(file: string, release: AgentRelease): Promise<void> {
  const size = statSync(file).size
  const sha = size === release.size ? await fileSha256(file) : undefined
  if (sha !== release.sha256) {
    rmSync(file, { force: true })
    throw new EdgeFleetError(
      'EF_ERR_AGENT_DIGEST_MISMATCH',
      `got ${size} bytes${sha ? ` sha256 ${sha}` : ''}, the release is ${release.size} bytes sha256 ${release.sha256}`,
    )
  }
}
