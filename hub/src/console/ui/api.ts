// The console's door to the hub's API: one fetch wrapper that sends the
// signed-in token, turns an error body into an ApiError carrying its
// EF_ERR_* code, and signs out when the hub stops accepting the token.
const TOKEN_KEY = 'edgefleet-token'

class ApiError extends Error {
  constructor(
    message: string,
    readonly code: string | undefined,
    readonly status: number,
  ) {
    super(message)
  }
}

interface ErrorBody {
  error?: { code?: string; message?: string }
}

export const session = {
  token: sessionStorage.getItem(TOKEN_KEY),
  role: 'viewer' as 'viewer' | 'operator' | 'admin',
  name: '',
  signedIn: false,
}

export function remember(token: string): void {
  session.token = token
  sessionStorage.setItem(TOKEN_KEY, token)
}

export function signOut(): void {
  sessionStorage.removeItem(TOKEN_KEY)
  session.token = null
  location.reload()
}

export const canOperate = (): boolean => session.role === 'operator' || session.role === 'admin'

/** JSON (or raw bytes: a model upload) to the hub; resolves the parsed answer, rejects with ApiError. */
export async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { authorization: `Bearer ${session.token ?? ''}` }
  let payload: BodyInit | undefined
  if (body instanceof ArrayBuffer) {
    headers['content-type'] = 'application/octet-stream'
    payload = body
  } else if (body !== undefined) {
    headers['content-type'] = 'application/json'
    payload = JSON.stringify(body)
  }
  const res = await fetch(path, { method, headers, body: payload })
  const text = await res.text()
  const json = text ? (JSON.parse(text) as unknown) : undefined
  if (res.status === 401 && session.signedIn) signOut()
  if (!res.ok) {
    const err = (json as ErrorBody | undefined)?.error
    const message = err?.code ? `${err.code}: ${err.message ?? ''}` : `HTTP ${res.status}`
    throw new ApiError(message, err?.code, res.status)
  }
  return json as T
}

/** The raw text of a GET (the NDJSON feed). */
export async function apiText(path: string): Promise<string> {
  const res = await fetch(path, { headers: { authorization: `Bearer ${session.token ?? ''}` } })
  if (!res.ok) throw new ApiError(`HTTP ${res.status}`, undefined, res.status)
  return res.text()
}

export const enc = encodeURIComponent
