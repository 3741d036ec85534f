// The hub keys this agent trusts [EF-3.6]. The key pinned at provisioning
// (`--hub-key`) is the root; every rotation the hub announces is a step signed
// by the retiring and the new key, kept in <dataDir>/hub-key.json (written
// atomically) so a restart walks the same chain and lands on the same key.
// New commands and manifests must verify under the current key only; content
// this agent verified and stored before a rotation (its A/B slots, a shadow
// candidate) stays valid under the retired keys of the chain.
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { KeyObject } from 'node:crypto'
import {
  EdgeFleetError,
  codeOf,
  followKeyChain,
  keyChainFileCodec,
  publicKeyFromText,
  verifyDocument,
  type KeyRotation,
} from '@edgefleet/shared'
import { writeFileAtomic } from './updater/fsutil.js'

export const CHAIN_FILE = 'hub-key.json'

export class HubTrust {
  private chain: KeyRotation[]
  private currentText: string
  private currentKey: KeyObject
  private retiredKeys: KeyObject[]

  /** `pinned`: the provisioning key; `chain`: rotations persisted earlier, walked from it. */
  constructor(
    readonly pinned: string,
    chain: KeyRotation[] = [],
    private readonly file?: string,
  ) {
    this.chain = chain
    const walked = followKeyChain(pinned, chain)
    this.currentText = walked.current
    this.currentKey = publicKeyFromText(walked.current)
    this.retiredKeys = walked.retired.map(publicKeyFromText)
  }

  /** The trust of `<dataDir>`: the pinned key, advanced along the chain saved there. */
  static load(dataDir: string, pinned: string): HubTrust {
    const file = join(dataDir, CHAIN_FILE)
    if (!existsSync(file)) return new HubTrust(pinned, [], file)
    try {
      return new HubTrust(pinned, keyChainFileCodec.decode(readFileSync(file)).chain, file)
    } catch (err) {
      // Refuse to start rather than fall back to an older key the hub may have retired for a reason.
      throw new EdgeFleetError('EF_ERR_CONFIG_INVALID', `${file}: ${codeOf(err)} ${(err as Error).message}`)
    }
  }

  /** The hub public key (base64url) new commands must be signed with. */
  get current(): string {
    return this.currentText
  }

  /** A command or a manifest arriving now: the current key only. */
  verifyNew(doc: unknown, sig: string): boolean {
    return verifyDocument(doc, sig, this.currentKey)
  }

  /** Content verified and stored before a rotation: the current key or one the chain retired. */
  verifyStored(doc: unknown, sig: string): boolean {
    return this.verifyNew(doc, sig) || this.retiredKeys.some((k) => verifyDocument(doc, sig, k))
  }

  /** The key an announced chain leads to from the current one (the current key if it leads nowhere). */
  reach(chain: KeyRotation[]): string {
    return followKeyChain(this.currentText, chain).current
  }

  /**
   * Walks an announced chain from the current key. When it leads further, the
   * chain is saved (atomically) before the new key takes effect, so a crash
   * leaves either the old trust or the new one. Returns whether the key changed.
   */
  advance(chain: KeyRotation[]): boolean {
    const walked = followKeyChain(this.currentText, chain)
    if (walked.current === this.currentText) return false
    const merged = [...this.chain, ...chain.filter((s) => !this.chain.some((k) => k.sigPrev === s.sigPrev))]
    if (this.file) writeFileAtomic(this.file, keyChainFileCodec.encode({ v: 1, chain: merged }), 0o600)
    this.chain = merged
    this.retiredKeys.push(...walked.retired.map(publicKeyFromText))
    this.currentText = walked.current
    this.currentKey = publicKeyFromText(walked.current)
    return true
  }
}
