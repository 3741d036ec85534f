// `edgefleet token create|revoke`, `edgefleet tokens list`: API tokens [EF-8.10] (admin only).
import type { HubClient } from './http.js'
import { table } from './format.js'

export const TOKEN_HELP = {
  'token create': `edgefleet token create NAME --role viewer|operator|admin [--json]   (prints the token once)`,
  'tokens list': `edgefleet tokens list [--json]`,
  'token revoke': `edgefleet token revoke ID [--json]`,
} as const

export class TokenUsageError extends Error {}

type Opts = Record<string, string | boolean | string[] | undefined>

export async function tokenCommand(
  hub: HubClient,
  two: string,
  pos: string[],
  o: Opts,
  emit: (data: unknown, text: () => string) => void,
): Promise<number> {
  switch (two) {
    case 'token create': {
      const name = pos[2]
      if (!name || typeof o.role !== 'string')
        throw new TokenUsageError('token create needs NAME and --role viewer|operator|admin')
      const r = await hub.request<{ id: string; name: string; role: string; token: string }>('POST', '/api/v1/tokens', {
        name,
        role: o.role,
      })
      emit(r, () => `token ${r.id} (${r.name}, ${r.role}) — shown once, keep it:\n${r.token}`)
      return 0
    }
    case 'tokens list': {
      const r = await hub.request<{ items: Record<string, unknown>[]; total: number }>(
        'GET',
        '/api/v1/tokens?limit=1000',
      )
      emit(r.items, () => table(r.items, ['id', 'name', 'role', 'createdAt', 'lastUsedAt', 'revokedAt']))
      return 0
    }
    case 'token revoke': {
      if (!pos[2]) throw new TokenUsageError('token revoke needs ID')
      await hub.request('DELETE', `/api/v1/tokens/${encodeURIComponent(pos[2])}`)
      emit({ id: pos[2], revoked: true }, () => `token ${pos[2]} revoked`)
      return 0
    }
    default:
      throw new TokenUsageError(`unknown command ${two}`)
  }
}
