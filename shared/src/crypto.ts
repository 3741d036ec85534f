// Hashing and ed25519 signing on node:crypto [EF-3]. Signatures cover the
// canonical JSON of a document (sorted keys, no whitespace), so a manifest or a
// command re-serialised by any JSON library still verifies.
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  sign,
  verify,
  timingSafeEqual,
  KeyObject,
} from 'node:crypto'

export function sha256Hex(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex')
}

/** Deterministic JSON: object keys sorted, undefined members dropped, no whitespace. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    if (typeof value === 'number' && !Number.isFinite(value)) throw new RangeError('canonicalJson: non-finite number')
    return JSON.stringify(value)
  }
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v === undefined ? null : v)).join(',')}]`
  const obj = value as Record<string, unknown>
  const keys = Object.keys(obj)
    .filter((k) => obj[k] !== undefined)
    .sort()
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(',')}}`
}

export interface KeyPairText {
  /** base64url of the raw 32-byte ed25519 public key: short enough to print and pin. */
  publicKey: string
  /** PKCS#8 PEM of the private key; stays on the hub. */
  privateKeyPem: string
}

export function generateSigningKeys(): KeyPairText {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519')
  const jwk = publicKey.export({ format: 'jwk' })
  return { publicKey: jwk.x as string, privateKeyPem: privateKey.export({ format: 'pem', type: 'pkcs8' }) as string }
}

export function publicKeyFromText(publicKey: string): KeyObject {
  if (!/^[A-Za-z0-9_-]{43}$/.test(publicKey))
    throw new TypeError('public key must be 43 base64url characters (raw ed25519)')
  return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: publicKey }, format: 'jwk' })
}

export function privateKeyFromPem(pem: string): KeyObject {
  return createPrivateKey(pem)
}

/** base64url ed25519 signature over the canonical JSON of `doc`. */
export function signDocument(doc: unknown, privateKey: KeyObject): string {
  return sign(null, Buffer.from(canonicalJson(doc)), privateKey).toString('base64url')
}

export function verifyDocument(doc: unknown, signature: string, publicKey: KeyObject): boolean {
  if (typeof signature !== 'string' || !/^[A-Za-z0-9_-]{86}$/.test(signature)) return false
  try {
    return verify(null, Buffer.from(canonicalJson(doc)), publicKey, Buffer.from(signature, 'base64url'))
  } catch {
    return false
  }
}

/** Constant-time comparison of two hex digests (secret hashes). */
export function digestsEqual(a: string, b: string): boolean {
  const ba = Buffer.from(a, 'hex')
  const bb = Buffer.from(b, 'hex')
  return ba.length === bb.length && ba.length > 0 && timingSafeEqual(ba, bb)
}
