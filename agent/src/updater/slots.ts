// A/B slots per model: models/<name>/{a,b}/ each hold model.onnx, manifest.json
// and manifest.sig; models/<name>/active.json names the serving slot. The
// switch is one atomic rename of active.json [EF-4.5].
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, openSync, readSync, closeSync } from 'node:fs'
import { join } from 'node:path'
import { createHash } from 'node:crypto'
import { EdgeFleetError, manifestCodec, type Manifest } from '@edgefleet/shared'
import type { HubTrust } from '../trust.js'
import { writeFileAtomic } from './fsutil.js'

export type Slot = 'a' | 'b'
export const other = (s: Slot): Slot => (s === 'a' ? 'b' : 'a')

export interface SlotContent {
  slot: Slot
  manifest: Manifest
  modelPath: string
}

export class Slots {
  constructor(private readonly root: string) {
    mkdirSync(root, { recursive: true, mode: 0o700 })
  }

  dir(model: string, slot?: Slot): string {
    return slot ? join(this.root, model, slot) : join(this.root, model)
  }

  modelPath(model: string, slot: Slot): string {
    return join(this.dir(model, slot), 'model.onnx')
  }

  models(): string[] {
    return existsSync(this.root)
      ? readdirSync(this.root).filter((n) => existsSync(join(this.root, n, 'active.json')))
      : []
  }

  active(model: string): Slot | undefined {
    const p = join(this.dir(model), 'active.json')
    if (!existsSync(p)) return undefined
    try {
      const s = (JSON.parse(readFileSync(p, 'utf8')) as { slot: Slot }).slot
      return s === 'a' || s === 'b' ? s : undefined
    } catch {
      return undefined
    }
  }

  /** The slot a new version is staged into: never the serving one. */
  stagingSlot(model: string): Slot {
    const a = this.active(model)
    return a ? other(a) : 'a'
  }

  /** Empties a slot before staging into it. */
  clear(model: string, slot: Slot): string {
    const d = this.dir(model, slot)
    rmSync(d, { recursive: true, force: true })
    mkdirSync(d, { recursive: true, mode: 0o700 })
    return d
  }

  writeManifest(model: string, slot: Slot, manifest: Manifest, sig: string): void {
    const d = this.dir(model, slot)
    writeFileAtomic(join(d, 'manifest.sig'), sig)
    writeFileAtomic(join(d, 'manifest.json'), JSON.stringify(manifest))
  }

  /** Atomic switch: after this returns, a restart serves `slot`. */
  setActive(model: string, slot: Slot, version: string): void {
    writeFileAtomic(join(this.dir(model), 'active.json'), JSON.stringify({ slot, version }))
  }

  /**
   * A slot's content if, and only if, its manifest verifies against a hub key
   * of the trust chain (it was stored before or after a rotation, EF-3.6) and
   * its model file matches the manifest's size and sha256.
   */
  verified(model: string, slot: Slot, trust: HubTrust): SlotContent | undefined {
    const c = this.check(model, slot, trust)
    return c instanceof EdgeFleetError ? undefined : c
  }

  /** The slot's content if it verifies, else why not (a stable code). */
  check(model: string, slot: Slot, trust: HubTrust): SlotContent | EdgeFleetError {
    const slotDir = this.dir(model, slot)
    try {
      const manifest = manifestCodec.decode(readFileSync(join(slotDir, 'manifest.json')))
      const sig = readFileSync(join(slotDir, 'manifest.sig'), 'utf8')
      if (!trust.verifyStored(manifest, sig))
        return new EdgeFleetError('EF_ERR_SIGNATURE_INVALID', `slot ${slot} of ${model}: manifest signature`)
      if (manifest.model !== model)
        return new EdgeFleetError(
          'EF_ERR_SIGNATURE_INVALID',
          `slot ${slot} of ${model} holds a manifest of ${manifest.model}`,
        )
      const modelPath = join(slotDir, 'model.onnx')
      if (hashFile(modelPath) !== manifest.artifact.digest)
        return new EdgeFleetError('EF_ERR_ARTIFACT_HASH_MISMATCH', `slot ${slot} of ${model}`)
      return { slot, manifest, modelPath }
    } catch (err) {
      // Missing or unreadable files: the slot's content is not what was verified when it was written.
      return err instanceof EdgeFleetError
        ? err
        : new EdgeFleetError('EF_ERR_ARTIFACT_HASH_MISMATCH', `slot ${slot} of ${model}: ${(err as Error).message}`)
    }
  }
}

export function hashFile(path: string): string {
  const hash = createHash('sha256')
  const fd = openSync(path, 'r')
  const buf = Buffer.allocUnsafe(1 << 20)
  try {
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null)
      if (n === 0) break
      hash.update(buf.subarray(0, n))
    }
  } finally {
    closeSync(fd)
  }
  return hash.digest('hex')
}
