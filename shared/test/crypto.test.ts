import { describe, expect, it } from 'vitest'
import {
  canonicalJson,
  digestsEqual,
  generateSigningKeys,
  privateKeyFromPem,
  publicKeyFromText,
  sha256Hex,
  signDocument,
  verifyDocument,
} from '../src/index.js'

describe('sha256Hex', () => {
  it('matches the known vectors', () => {
    expect(sha256Hex('')).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855')
    expect(sha256Hex('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad')
    expect(sha256Hex(new Uint8Array([0x61, 0x62, 0x63]))).toBe(sha256Hex('abc'))
  })
})

describe('canonicalJson [EF-3]', () => {
  it('is independent of key order, at every depth', () => {
    const a = { b: 1, a: { d: [1, { y: 2, x: 1 }], c: 'x' } }
    const b = { a: { c: 'x', d: [1, { x: 1, y: 2 }] }, b: 1 }
    expect(canonicalJson(a)).toBe(canonicalJson(b))
    expect(canonicalJson(a)).toBe('{"a":{"c":"x","d":[1,{"x":1,"y":2}]},"b":1}')
  })

  it('keeps array order (arrays are ordered data)', () => {
    expect(canonicalJson([2, 1])).toBe('[2,1]')
    expect(canonicalJson([2, 1])).not.toBe(canonicalJson([1, 2]))
  })

  it('drops undefined members like JSON.stringify, and turns undefined array items into null', () => {
    expect(canonicalJson({ a: 1, b: undefined, c: { d: undefined } })).toBe('{"a":1,"c":{}}')
    expect(canonicalJson({ a: 1, b: undefined })).toBe(canonicalJson({ a: 1 }))
    expect(canonicalJson([1, undefined])).toBe('[1,null]')
  })

  it('has no whitespace and escapes strings as JSON does', () => {
    expect(canonicalJson({ 'k"\n': 'v\u2028é', n: null, t: true, f: -0.5 })).toBe(
      '{"f":-0.5,"k\\"\\n":"v\u2028é","n":null,"t":true}',
    )
    expect(JSON.parse(canonicalJson({ z: [1, 'a', null], a: { b: false } }))).toEqual({
      z: [1, 'a', null],
      a: { b: false },
    })
  })

  it('refuses non-finite numbers, which JSON cannot carry', () => {
    expect(() => canonicalJson({ a: Number.NaN })).toThrow(RangeError)
    expect(() => canonicalJson([Number.POSITIVE_INFINITY])).toThrow(RangeError)
  })
})

describe('ed25519 signatures [EF-2.3, EF-3]', () => {
  const keys = generateSigningKeys()
  const priv = privateKeyFromPem(keys.privateKeyPem)
  const pub = publicKeyFromText(keys.publicKey)
  const doc = { model: 'kws', version: '1.2.0', chunks: [{ digest: 'a'.repeat(64), size: 3 }], meta: { z: 1, a: 2 } }

  it('produce printable keys and 86-character base64url signatures', () => {
    expect(keys.publicKey).toMatch(/^[A-Za-z0-9_-]{43}$/)
    expect(keys.privateKeyPem).toContain('BEGIN PRIVATE KEY')
    expect(signDocument(doc, priv)).toMatch(/^[A-Za-z0-9_-]{86}$/)
  })

  it('verify the signed document, also after re-serialisation with other key order', () => {
    const sig = signDocument(doc, priv)
    expect(verifyDocument(doc, sig, pub)).toBe(true)
    const reordered = {
      meta: { a: 2, z: 1 },
      chunks: [{ size: 3, digest: 'a'.repeat(64) }],
      version: '1.2.0',
      model: 'kws',
    }
    expect(verifyDocument(JSON.parse(JSON.stringify(reordered)), sig, pub)).toBe(true)
  })

  it('fail on a tampered document', () => {
    const sig = signDocument(doc, priv)
    expect(verifyDocument({ ...doc, version: '1.2.1' }, sig, pub)).toBe(false)
    expect(verifyDocument({ ...doc, extra: true }, sig, pub)).toBe(false)
    expect(verifyDocument({ ...doc, chunks: [{ digest: 'b'.repeat(64), size: 3 }] }, sig, pub)).toBe(false)
  })

  it('fail with another key', () => {
    const sig = signDocument(doc, priv)
    const other = publicKeyFromText(generateSigningKeys().publicKey)
    expect(verifyDocument(doc, sig, other)).toBe(false)
  })

  it('fail on malformed signatures without throwing', () => {
    const sig = signDocument(doc, priv)
    const flipped = (sig.startsWith('A') ? 'B' : 'A') + sig.slice(1)
    expect(verifyDocument(doc, flipped, pub)).toBe(false)
    expect(verifyDocument(doc, '', pub)).toBe(false)
    expect(verifyDocument(doc, sig.slice(0, 85), pub)).toBe(false)
    expect(verifyDocument(doc, sig + 'A', pub)).toBe(false)
    expect(verifyDocument(doc, sig.slice(0, 85) + '=', pub)).toBe(false)
    // padded standard base64 (88 characters) is not the wire form
    expect(verifyDocument(doc, Buffer.from(sig, 'base64url').toString('base64'), pub)).toBe(false)
    expect(verifyDocument(doc, 42 as unknown as string, pub)).toBe(false)
    expect(verifyDocument(doc, 'A'.repeat(86), pub)).toBe(false)
  })

  it('reject malformed public keys with TypeError', () => {
    expect(() => publicKeyFromText('abc')).toThrow(TypeError)
    expect(() => publicKeyFromText(keys.publicKey + '=')).toThrow(TypeError)
    expect(() => publicKeyFromText(keys.publicKey.replace(/.$/, '+'))).toThrow(TypeError)
  })
})

describe('digestsEqual', () => {
  it('compares hex digests', () => {
    const d = sha256Hex('x')
    expect(digestsEqual(d, d)).toBe(true)
    expect(digestsEqual(d, sha256Hex('y'))).toBe(false)
    expect(digestsEqual(d, d.slice(0, 62))).toBe(false)
    expect(digestsEqual('', '')).toBe(false)
  })
})
