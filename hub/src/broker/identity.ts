// Broker identities [EF-1.3.4]: which MQTT client ids each kind of credential
// may use. A client id is a session: whoever connects with one disconnects its
// current holder and inherits its queued messages (MQTT's session takeover), so
// an id must belong to exactly one credential. Device ids never start with `$`
// [EF-1.2]; the hub and feed consumers get ids under that prefix, bound to
// their secret or token, so no credential can take another's session.
import { createHash } from 'node:crypto'

/** Prefix of the hub's own client ids: only the hub secret may use it. */
const HUB_CLIENT_PREFIX = '$hub-'
/** Prefix of feed consumers' client ids; the token's id follows [EF-9.7]. */
const FEED_CLIENT_PREFIX = '$feed-'

/**
 * The hub's client id: stable across restarts (a persistent session on an
 * external broker survives them) and unguessable without the hub secret. Each
 * replica of several sharing the secret adds its id, so none takes another's
 * session over [EF-12.8].
 */
export function hubClientId(hubSecret: string, replica?: string): string {
  const tag = createHash('sha256').update('edgefleet hub client id\0').update(hubSecret).digest('hex')
  const id = `${HUB_CLIENT_PREFIX}${tag.slice(0, 24)}`
  return replica === undefined ? id : `${id}-${replica.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 64)}`
}

const SUFFIX_RE = /^[A-Za-z0-9._-]{1,64}$/

/**
 * A feed consumer authenticated with the token whose id is `tokenId` may use
 * `$feed-{tokenId}` or `$feed-{tokenId}-{suffix}` (several consumers of one
 * token), nothing else.
 */
export function feedClientIdAllowed(clientId: string, tokenId: string): boolean {
  const own = `${FEED_CLIENT_PREFIX}${tokenId}`
  if (clientId === own) return true
  return clientId.startsWith(`${own}-`) && SUFFIX_RE.test(clientId.slice(own.length + 1))
}

/** Client ids only the hub secret may take. */
export function isHubClientId(clientId: string): boolean {
  return clientId.startsWith(HUB_CLIENT_PREFIX)
}
