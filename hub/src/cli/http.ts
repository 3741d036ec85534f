// The CLI's client for the hub's HTTP API. Errors come back as EdgeFleetError
// with the server's code.
import { EdgeFleetError, isErrorCode } from '@edgefleet/shared'

export class HubClient {
  constructor(
    readonly baseUrl: string,
    /** API token [EF-8.10] (--token, $EDGEFLEET_TOKEN). */
    readonly token?: string,
  ) {}

  async request<T>(method: string, path: string, body?: unknown, opts: { contentType?: string } = {}): Promise<T> {
    let res: Response
    try {
      res = await fetch(new URL(path, this.baseUrl), {
        method,
        headers: {
          ...(this.token ? { authorization: `Bearer ${this.token}` } : {}),
          ...(body === undefined ? {} : { 'content-type': opts.contentType ?? 'application/json' }),
        },
        body: body === undefined ? undefined : opts.contentType ? (body as RequestInit['body']) : JSON.stringify(body),
      })
    } catch (err) {
      throw new EdgeFleetError(
        'EF_ERR_CONFIG_INVALID',
        `cannot reach the hub at ${this.baseUrl} (${(err as Error & { cause?: Error }).cause?.message ?? (err as Error).message}); is it running? (--hub URL)`,
      )
    }
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
