// The hub's identity: its ed25519 signing key (agents pin the public half) and
// the secret its own MQTT client uses. Both are created once per data folder.
import { existsSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { randomBytes, type KeyObject } from 'node:crypto'
import { generateSigningKeys, privateKeyFromPem } from '@edgefleet/shared'

export interface HubKeys {
  publicKey: string
  privateKey: KeyObject
  /** Password of the hub's own broker client (username HUB_USERNAME). */
  hubSecret: string
}

/** Broker username reserved for the hub itself; device ids cannot take it (ids start with a letter or digit). */
export const HUB_USERNAME = '$hub'

export function loadOrCreateKeys(dataDir: string): HubKeys {
  mkdirSync(dataDir, { recursive: true })
  const file = join(dataDir, 'hub-keys.json')
  if (!existsSync(file)) {
    const k = generateSigningKeys()
    const doc = {
      publicKey: k.publicKey,
      privateKeyPem: k.privateKeyPem,
      hubSecret: randomBytes(32).toString('base64url'),
    }
    writeFileSync(file, JSON.stringify(doc, null, 2), { mode: 0o600, flag: 'wx' })
  }
  const doc = JSON.parse(readFileSync(file, 'utf8')) as { publicKey: string; privateKeyPem: string; hubSecret: string }
  return { publicKey: doc.publicKey, privateKey: privateKeyFromPem(doc.privateKeyPem), hubSecret: doc.hubSecret }
}
