// API tokens [EF-8.10]: only the sha256 of a token is stored; the plaintext
// exists once, in the answer that created it. A token may carry an expiry; an
// expired one is refused like a revoked one, with its own code.
import type { Db } from './db.js'

export type Role = 'viewer' | 'operator' | 'admin'

export interface TokenRow {
  id: string
  name: string
  role: Role
  createdAt: number
  lastUsedAt: number | null
  revokedAt: number | null
  /** ms since epoch after which the token is refused; null: never expires. */
  expiresAt: number | null
}

interface RawToken {
  id: string
  name: string
  role: Role
  token_hash: string
  created_at: number
  last_used_at: number | null
  revoked_at: number | null
  expires_at: number | null
}

const toRow = (r: RawToken): TokenRow => ({
  id: r.id,
  name: r.name,
  role: r.role,
  createdAt: r.created_at,
  lastUsedAt: r.last_used_at,
  revokedAt: r.revoked_at,
  expiresAt: r.expires_at,
})

export class TokenStore {
  private readonly byHash
  private readonly touch

  constructor(private readonly db: Db) {
    this.byHash = db.prepare('SELECT * FROM api_tokens WHERE token_hash = ? AND revoked_at IS NULL')
    this.touch = db.prepare('UPDATE api_tokens SET last_used_at = ? WHERE id = ?')
  }

  insert(id: string, name: string, role: Role, tokenHash: string, now: number, expiresAt: number | null = null): void {
    this.db
      .prepare('INSERT INTO api_tokens (id, name, role, token_hash, created_at, expires_at) VALUES (?,?,?,?,?,?)')
      .run(id, name, role, tokenHash, now, expiresAt)
  }

  /**
   * The live (not revoked, not expired) token with this hash; records its use
   * at most once a minute (no write per request).
   */
  lookup(tokenHash: string, now: number): TokenRow | undefined {
    const r = this.byHash.get(tokenHash) as RawToken | undefined
    if (!r || (r.expires_at !== null && r.expires_at <= now)) return undefined
    if (r.last_used_at === null || now - r.last_used_at > 60_000) this.touch.run(now, r.id)
    return toRow(r)
  }

  /** Whether this hash is a token that exists, is not revoked, and has expired (to answer with its own code). */
  isExpired(tokenHash: string, now: number): boolean {
    const r = this.byHash.get(tokenHash) as RawToken | undefined
    return r !== undefined && r.expires_at !== null && r.expires_at <= now
  }

  count(): number {
    return (this.db.prepare('SELECT count(*) AS n FROM api_tokens').get() as { n: number }).n
  }

  list(limit = 100, offset = 0): TokenRow[] {
    return (
      this.db
        .prepare('SELECT * FROM api_tokens ORDER BY created_at, id LIMIT ? OFFSET ?')
        .all(limit, offset) as RawToken[]
    ).map(toRow)
  }

  revoke(id: string, now: number): boolean {
    return (
      this.db.prepare('UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL').run(now, id)
        .changes === 1
    )
  }
}
