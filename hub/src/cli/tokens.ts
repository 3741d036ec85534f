// `edgefleet token create|revoke`, `edgefleet tokens list`: API tokens [EF-8.10] (admin only).
import { command, UsageError, type Command } from './command.js'
import { table } from './format.js'

const tokenCreate = command({
  name: 'token create',
  summary: ['token create NAME --role R', 'API token for a viewer, operator or admin (tokens list, token revoke ID)'],
  help: `edgefleet token create NAME --role viewer|operator|admin [--json]   (prints the token once)`,
  options: { role: { type: 'string' } },
  async run({ args, hub, emit }) {
    const name = args.pos[0]
    const role = args.str('role')
    if (!name || !role) throw new UsageError('token create needs NAME and --role viewer|operator|admin')
    const r = await hub.request<{ id: string; name: string; role: string; token: string }>('POST', '/api/v1/tokens', {
      name,
      role,
    })
    emit(r, () => `token ${r.id} (${r.name}, ${r.role}) — shown once, keep it:\n${r.token}`)
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
    emit(r.items, () => table(r.items, ['id', 'name', 'role', 'createdAt', 'lastUsedAt', 'revokedAt']))
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
