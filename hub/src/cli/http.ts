// The CLI's client for the hub's HTTP API. Errors come back as EdgeFleetError
// with the server's code. With a CA (--ca, $EDGEFLEET_CA) the hub's HTTPS
// certificate must chain to it [EF-10.4]; without one the system's CAs apply.
import { readFileSync } from 'node:fs'
import { Agent, fetch as undiciFetch } from 'undici'
import { EdgeFleetError, isErrorCode, isUntrustedPeerError } from '@edgefleet/shared'

/** The PEM in `file` (--ca), or EF_ERR_TLS_FILE_INVALID. */
function readCaFile(file: string): Buffer {
  try {
    const pem = readFileSync(file)
    if (!pem.includes('-----BEGIN ')) throw new Error('not PEM')
    return pem
  } catch (err) {
    throw new EdgeFleetError('EF_ERR_TLS_FILE_INVALID', `--ca ${file}: ${(err as Error).message}`)
  }
}

export class HubClient {
  /** undici, because node's global fetch takes no CA of our own; built at the first call when a CA is given. */
  private dispatcher?: Agent

  constructor(
    readonly baseUrl: string,
    /** API token [EF-8.10] (--token, $EDGEFLEET_TOKEN). */
    readonly token?: string,
    /** CA file the hub's certificate must chain to (--ca, $EDGEFLEET_CA). */
    readonly caFile?: string,
  ) {}

  /** fetch against the hub, trusting --ca; a hub the CA does not vouch for is EF_ERR_TLS_UNTRUSTED_PEER. */
  async fetch(path: string, init: RequestInit = {}): Promise<Response> {
    const url = new URL(path, this.baseUrl)
    if (this.caFile && !this.dispatcher) this.dispatcher = new Agent({ connect: { ca: readCaFile(this.caFile) } })
    try {
      if (!this.dispatcher) return await fetch(url, init)
      const res = await undiciFetch(url, { ...(init as object), dispatcher: this.dispatcher })
      // undici's own Response class, not the global one (Node bundles its own undici copy), so
      // `instanceof Response` would be false; callers read it only through the Response interface.
      // eslint-disable-next-line @typescript-eslint/no-unsafe-class-instance-assignment -- see above
      return res
    } catch (err) {
      if (isUntrustedPeerError(err))
        throw new EdgeFleetError(
          'EF_ERR_TLS_UNTRUSTED_PEER',
          `${url.origin}: ${(err as Error & { cause?: Error }).cause?.message ?? (err as Error).message} (--ca, $EDGEFLEET_CA)`,
        )
      throw new EdgeFleetError(
        'EF_ERR_CONFIG_INVALID',
        `cannot reach the hub at ${this.baseUrl} (${(err as Error & { cause?: Error }).cause?.message ?? (err as Error).message}); is it running? (--hub URL)`,
      )
    }
  }

  async request<T>(method: string, path: string, body?: unknown, opts: { contentType?: string } = {}): Promise<T> {
    const res = await this.fetch(path, {
      method,
      headers: {
        ...(this.token ? { authorization: `Bearer ${this.token}` } : {}),
        ...(body === undefined ? {} : { 'content-type': opts.contentType ?? 'application/json' }),
      },
      body: body === undefined ? undefined : opts.contentType ? (body as RequestInit['body']) : JSON.stringify(body),
    })
    const text = await res.text()
    const json = text ? (JSON.parse(text) as unknown) : undefined
    if (!res.ok) {
      const e = (json as { error?: { code?: string; message?: string } } | undefined)?.error
      const code = isErrorCode(e?.code) ? e.code : 'EF_ERR_INTERNAL'
      const err = new EdgeFleetError(code)
      err.message = e?.message ?? `HTTP ${res.status}`
      throw err
    }
    return json as T
  }
}
