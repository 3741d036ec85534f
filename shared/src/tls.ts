// Which TLS failures mean "this peer's certificate is not trusted" [EF-10.4]:
// node reports them with OpenSSL's verify codes (and its own for a host name
// mismatch). Agents and the CLI turn them into EF_ERR_TLS_UNTRUSTED_PEER.
const UNTRUSTED = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_SIGNATURE_FAILURE',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'INVALID_CA',
  'ERR_TLS_CERT_ALTNAME_INVALID',
])

/** Whether `err` (or its cause, as fetch wraps it) is a failed verification of the peer's certificate. */
export function isUntrustedPeerError(err: unknown): boolean {
  for (let e = err as { code?: unknown; cause?: unknown } | undefined, depth = 0; e && depth < 4; depth++) {
    if (typeof e.code === 'string' && UNTRUSTED.has(e.code)) return true
    e = e.cause as typeof e
  }
  return false
}
