// `edgefleet token create|revoke`, `edgefleet tokens list`: API tokens [EF-8.10]
// (admin only), optionally with a lifetime (`--expires 30d`).
import { command, UsageError, type Command } from './command.js'
import { table } from './format.js'

const UNIT_SECONDS = { s: 1, m: 60, h: 3600, d: 86_400, w: 604_800 } as const

/** A token lifetime: 90m, 12h, 30d, 2w (whole units), in seconds. */
export function parseLifetime(s: string): number {
  const m = /^(\d{1,6})(s|m|h|d|w)$/.exec(s.trim())
  if (!m || Number(m[1]) === 0)
    throw new UsageError(`--expires must look like 90m, 12h, 30d or 2w, got ${JSON.stringify(s)}`)
  return Number(m[1]) * UNIT_SECONDS[m[2] as keyof typeof UNIT_SECONDS]
}

const when = (ms: unknown) => (typeof ms === 'number' ? new Date(ms).toISOString() : null)

const tokenCreate = command({
  name: 'token create',
  summary: ['token create NAME --role R', 'API token for a viewer, operator or admin (tokens list, token revoke ID)'],
  help: `edgefleet token create NAME --role viewer|operator|admin [--expires 30d] [--json]   (prints the token once)
  --expires D   lifetime: 90m, 12h, 30d, 2w; after it the token is refused (EF_ERR_AUTH_TOKEN_EXPIRED). Default: never`,
  options: { role: { type: 'string' }, expires: { type: 'string' } },
  async run({ args, hub, emit }) {
    const name = args.pos[0]
    const role = args.str('role')
    if (!name || !role) throw new UsageError('token create needs NAME and --role viewer|operator|admin')
    const expires = args.str('expires')
    const r = await hub.request<{ id: string; name: string; role: string; token: string; expiresAt: number | null }>(
      'POST',
      '/api/v1/tokens',
      { name, role, ...(expires !== undefined ? { expiresInSeconds: parseLifetime(expires) } : {}) },
    )
    const until = r.expiresAt === null ? 'never expires' : `expires ${when(r.expiresAt)}`
    emit(r, () => `token ${r.id} (${r.name}, ${r.role}, ${until}) — shown once, keep it:\n${r.token}`)
    return 0
  },
})

const tokensList = command({
  name: 'tokens list',
  aliases: ['token list'],
  help: `edgefleet tokens list [--json]`,
  options: {},
  async run({ hub, emit }) {
    const r = await hub.request<{ items: Record<string, unknown>[]; total: number }>('GET', '/api/v1/tokens?limit=1000')
    emit(r.items, () =>
      table(
        r.items.map((t) => ({ ...t, expires: when(t.expiresAt) ?? 'never' })),
        ['id', 'name', 'role', 'createdAt', 'lastUsedAt', 'revokedAt', 'expires'],
      ),
    )
    return 0
  },
})

const tokenRevoke = command({
  name: 'token revoke',
  help: `edgefleet token revoke ID [--json]`,
  options: {},
  async run({ args, hub, emit }) {
    const id = args.pos[0]
    if (!id) throw new UsageError('token revoke needs ID')
    await hub.request('DELETE', `/api/v1/tokens/${encodeURIComponent(id)}`)
    emit({ id, revoked: true }, () => `token ${id} revoked`)
    return 0
  },
})

export const tokenCommands: Command[] = [tokenCreate, tokensList, tokenRevoke]
