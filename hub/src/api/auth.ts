// API tokens and roles [EF-8.10]. An onRequest hook on every /api/v1 route reads
// `Authorization: Bearer`, looks the token's sha256 up, and checks the role the
// route needs: reads are `viewer`, writes `operator`, provisioning and tokens
// `admin` (a route may say otherwise with `config: { role }`).
import { randomBytes, randomUUID } from 'node:crypto'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { EdgeFleetError, sha256Hex } from '@edgefleet/shared'
import type { HubStore, Role } from '../store/index.js'

const RANK: Record<Role, number> = { viewer: 0, operator: 1, admin: 2 }

interface Principal {
  tokenId: string
  name: string
  role: Role
}

declare module 'fastify' {
  interface FastifyRequest {
    principal?: Principal
  }
  interface FastifyContextConfig {
    /** Least role this route needs; default viewer for GET/HEAD, operator otherwise. */
    role?: Role | 'none'
  }
}

/** Roles for routes whose files predate tokens (kept here so those files stay untouched). */
const ROUTE_ROLES: Record<string, Role | 'none'> = {
  'POST /api/v1/devices': 'admin',
  // Devices authenticate with HTTP Basic there [EF-4.10].
  'GET /api/v1/artifacts/:digest': 'none',
  'HEAD /api/v1/artifacts/:digest': 'none',
}

function newToken(): string {
  return `ef_${randomBytes(32).toString('base64url')}`
}

/** Creates a token and returns its plaintext (the only time it exists). */
export function issueToken(
  store: HubStore,
  name: string,
  role: Role,
  now: number,
  expiresAt: number | null = null,
): { id: string; token: string } {
  const token = newToken()
  const id = randomUUID()
  store.tokens.insert(id, name, role, sha256Hex(token), now, expiresAt)
  return { id, token }
}

/**
 * First start: one admin token, its plaintext written once to
 * `<dataDir>/admin-token` (mode 0600). Later starts read the file back so the
 * CLI's startup line can show it; a deleted file is not recreated.
 */
export function bootstrapAdminToken(store: HubStore, dataDir: string, now: number): string | undefined {
  const file = join(dataDir, 'admin-token')
  if (store.tokens.count() === 0) {
    const { token } = issueToken(store, 'admin (first start)', 'admin', now)
    writeFileSync(file, token + '\n', { mode: 0o600 })
    return token
  }
  return existsSync(file) ? readFileSync(file, 'utf8').trim() : undefined
}

/** The least role a route needs [EF-8.10]; 'none' for routes outside /api/v1 and open ones. */
export function requiredRole(method: string, url: string, configured?: Role | 'none'): Role | 'none' {
  if (!url.startsWith('/api/v1/')) return 'none'
  return (
    configured ?? ROUTE_ROLES[`${method} ${url}`] ?? (method === 'GET' || method === 'HEAD' ? 'viewer' : 'operator')
  )
}

/** Adds the auth hook. `enabled: false` exists for in-process unit tests only. */
export function installAuth(app: FastifyInstance, store: HubStore, now: () => number, enabled: boolean): void {
  // onRequest, not preHandler: an unauthenticated client never gets its body
  // parsed (model uploads may be 512 MiB) nor learns how the schema reads it.
  app.addHook('onRequest', async (req: FastifyRequest) => {
    const url = req.routeOptions.url ?? ''
    if (!url.startsWith('/api/v1/')) return
    const need = requiredRole(req.method, url, req.routeOptions.config?.role)
    if (need === 'none') return
    if (!enabled) {
      req.principal = { tokenId: 'auth-disabled', name: 'auth disabled', role: 'admin' }
      return
    }
    const m = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '')
    const hash = m ? sha256Hex(m[1]) : undefined
    const tok = hash ? store.tokens.lookup(hash, now()) : undefined
    if (!tok && hash && store.tokens.isExpired(hash, now()))
      throw new EdgeFleetError('EF_ERR_AUTH_TOKEN_EXPIRED', 'ask an admin for a new token (edgefleet token create)')
    if (!tok)
      throw new EdgeFleetError(
        'EF_ERR_AUTH_TOKEN_INVALID',
        m ? 'unknown or revoked token' : 'send Authorization: Bearer <token> (edgefleet --token, $EDGEFLEET_TOKEN)',
      )
    if (RANK[tok.role] < RANK[need])
      throw new EdgeFleetError(
        'EF_ERR_AUTH_FORBIDDEN_ROLE',
        `${req.method} ${url} needs ${need}, token "${tok.name}" is ${tok.role}`,
      )
    req.principal = { tokenId: tok.id, name: tok.name, role: tok.role }
  })
}
