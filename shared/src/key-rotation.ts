// Rotation of the hub's signing key [EF-3.6], after TUF's root rotation: each
// step of the chain names the retiring key and its successor and is signed by
// both (the old key vouches for the new one; the new key proves it is held).
// An agent walks the chain from the key it trusts; it never needs a private key
// the hub has since thrown away.
import { Type, type Static } from '@sinclair/typebox'
import type { KeyObject } from 'node:crypto'
import { publicKeyFromText, signDocument, verifyDocument } from './crypto.js'
import { Signature } from './messages/common.js'
import { codec } from './schema.js'

/** A raw ed25519 public key as 43 base64url characters (what agents pin). */
export const PublicKeyText = Type.String({ pattern: '^[A-Za-z0-9_-]{43}$' })

export const KeyRotation = Type.Object(
  {
    /** The key being retired. */
    prev: PublicKeyText,
    /** Its successor. */
    next: PublicKeyText,
    /** When the hub rotated (ms since epoch); informative. */
    at: Type.Integer({ minimum: 0 }),
    /** Signature by `prev` over the statement (EF-3.6). */
    sigPrev: Signature,
    /** Signature by `next` over the same statement. */
    sigNext: Signature,
  },
  { additionalProperties: false },
)
export type KeyRotation = Static<typeof KeyRotation>

/** Longest chain a command carries: one step per rotation the hub ever made. */
export const MAX_KEY_CHAIN = 64

/** The document both keys sign; `purpose` keeps it from being mistaken for any other signed document. */
function statement(r: { prev: string; next: string; at: number }) {
  return { purpose: 'ef-hub-key-rotation', prev: r.prev, next: r.next, at: r.at }
}

/** Signs one step of the chain with the retiring and the new private key. */
export function signKeyRotation(
  prev: { publicKey: string; privateKey: KeyObject },
  next: { publicKey: string; privateKey: KeyObject },
  at: number,
): KeyRotation {
  const doc = statement({ prev: prev.publicKey, next: next.publicKey, at })
  return {
    prev: prev.publicKey,
    next: next.publicKey,
    at,
    sigPrev: signDocument(doc, prev.privateKey),
    sigNext: signDocument(doc, next.privateKey),
  }
}

/** Whether a step is signed by both of the keys it names. */
export function keyRotationValid(r: KeyRotation): boolean {
  try {
    const doc = statement(r)
    return (
      verifyDocument(doc, r.sigPrev, publicKeyFromText(r.prev)) &&
      verifyDocument(doc, r.sigNext, publicKeyFromText(r.next))
    )
  } catch {
    return false // a malformed key
  }
}

/**
 * Walks `chain` from the trusted key `from`: each valid step whose `prev` is
 * the key reached so far moves on to its `next`; any other step is skipped.
 * Returns the key reached and the keys left behind on the way (oldest first).
 */
export function followKeyChain(from: string, chain: readonly KeyRotation[]): { current: string; retired: string[] } {
  let current = from
  const retired: string[] = []
  for (const step of chain) {
    if (step.prev !== current || retired.includes(step.next) || !keyRotationValid(step)) continue
    retired.push(current)
    current = step.next
  }
  return { current, retired }
}

/** An agent's saved chain (<dataDir>/hub-key.json): every step it has walked or been shown. */
export const keyChainFileCodec = codec(
  Type.Object(
    { v: Type.Literal(1), chain: Type.Array(KeyRotation, { maxItems: 1024 }) },
    { additionalProperties: false },
  ),
  1024 * 1024,
)
