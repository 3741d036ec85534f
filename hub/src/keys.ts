// The hub's identity: its ed25519 signing key (agents pin the public half), the
// chain of its past rotations [EF-3.6], and the secret its own MQTT client uses.
// All live in <dataDir>/hub-keys.json (mode 0600), or in the one file replicas
// share (--key-file [EF-12.7]), created once and replaced atomically (temp
// file, fsync, rename) when the key rotates.
import {
  closeSync,
  existsSync,
  fsyncSync,
  linkSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  unlinkSync,
  writeSync,
} from 'node:fs'
import { dirname, join } from 'node:path'
import { randomBytes, type KeyObject } from 'node:crypto'
import type { Logger } from 'pino'
import { generateSigningKeys, privateKeyFromPem, signKeyRotation, type KeyRotation } from '@edgefleet/shared'

interface KeyFile {
  publicKey: string
  privateKeyPem: string
  hubSecret: string
  /** Every rotation so far, oldest first; absent before the first one. */
  chain?: KeyRotation[]
}

/** Broker username reserved for the hub itself; device ids cannot take it (ids start with a letter or digit). */
export const HUB_USERNAME = '$hub'

export class HubKeys {
  private doc: KeyFile
  private key: KeyObject

  private constructor(
    private readonly file: string,
    doc: KeyFile,
  ) {
    this.doc = doc
    this.key = privateKeyFromPem(doc.privateKeyPem)
  }

  static loadOrCreate(file: string): HubKeys {
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 })
    if (!existsSync(file)) {
      const k = generateSigningKeys()
      // Through a temp file linked into place: replicas starting together on a shared file never read half of one.
      writeKeyFile(file, { ...k, hubSecret: randomBytes(32).toString('base64url') }, 'wx')
    }
    return new HubKeys(file, JSON.parse(readFileSync(file, 'utf8')) as KeyFile)
  }

  /** The current public key (base64url raw ed25519): what new devices pin. */
  get publicKey(): string {
    return this.doc.publicKey
  }

  /** The current signing key; read it at each signature, it changes on rotation. */
  get privateKey(): KeyObject {
    return this.key
  }

  /** Password of the hub's own broker client (username HUB_USERNAME). */
  get hubSecret(): string {
    return this.doc.hubSecret
  }

  /** Every rotation so far, oldest first: agents walk it from the key they trust. */
  get chain(): readonly KeyRotation[] {
    return this.doc.chain ?? []
  }

  /**
   * Replaces the signing key [EF-3.6]: the new key is vouched for by the old one
   * (and proves itself), the step is appended to the chain, and the file is
   * replaced atomically before the new key signs anything. The old private key
   * is not kept.
   */
  rotate(now: number): KeyRotation {
    const next = generateSigningKeys()
    const step = signKeyRotation(
      { publicKey: this.doc.publicKey, privateKey: this.key },
      { publicKey: next.publicKey, privateKey: privateKeyFromPem(next.privateKeyPem) },
      now,
    )
    const doc: KeyFile = { ...this.doc, ...next, chain: [...this.chain, step] }
    writeKeyFile(this.file, doc, 'w')
    this.doc = doc
    this.key = privateKeyFromPem(doc.privateKeyPem)
    return step
  }
}

/**
 * Sends one device the announcement of the current key (with the whole chain);
 * a failure is logged, the device's next state report triggers it again.
 */
export async function announceKey(
  commands: { announceKey(deviceId: string, chain: readonly KeyRotation[]): Promise<string> },
  keys: HubKeys,
  deviceId: string,
  log: Logger,
): Promise<void> {
  if (keys.chain.length === 0) return // never rotated: whatever the device trusts, there is nothing to announce
  try {
    await commands.announceKey(deviceId, keys.chain)
  } catch (err) {
    log.warn({ device: deviceId, err: (err as Error).message }, 'hub key announcement failed')
  }
}

/** The hub keys of `dataDir` (or of `keyFile`, one file every replica of a fleet mounts), created at the first start. */
export function loadOrCreateKeys(dataDir: string, keyFile?: string): HubKeys {
  return HubKeys.loadOrCreate(keyFile ?? join(dataDir, 'hub-keys.json'))
}

/**
 * 0600 file written in full and fsynced to a temp file, then put in place: with 'w' renamed over the
 * old one; with 'wx' hard-linked, which fails when another process created the file first (its key wins).
 */
function writeKeyFile(file: string, doc: KeyFile, flag: 'w' | 'wx'): void {
  const target = `${file}.${randomBytes(4).toString('hex')}.tmp`
  const fd = openSync(target, 'wx', 0o600)
  try {
    writeSync(fd, JSON.stringify(doc, null, 2))
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
  if (flag === 'wx') {
    try {
      linkSync(target, file)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    } finally {
      unlinkSync(target)
    }
  } else renameSync(target, file)
  const dir = openSync(dirname(file), 'r')
  try {
    fsyncSync(dir)
  } finally {
    closeSync(dir)
  }
}
