// The agent's content-addressed chunk store [EF-4.2]: chunks/<sha256> holds
// downloaded chunks until their artifact is assembled; chunks of the models
// already in a slot are read from the slot file itself, so a chunk the device
// holds in any version is never fetched again.
import {
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  rmSync,
  openSync,
  readSync,
  closeSync,
  writeFileSync,
  renameSync,
} from 'node:fs'
import { join } from 'node:path'
import { chunkOffsets, sha256Hex, type Manifest } from '@edgefleet/shared'

interface Located {
  file: string
  offset: number
  size: number
}

export class ChunkStore {
  private readonly index = new Map<string, Located>()

  constructor(private readonly dir: string) {
    mkdirSync(dir, { recursive: true, mode: 0o700 })
  }

  /** Makes the chunks of a verified slot's model available by digest. */
  indexSlot(manifest: Manifest, modelPath: string): void {
    const offsets = chunkOffsets(manifest.artifact.chunks)
    manifest.artifact.chunks.forEach((c, i) =>
      this.index.set(c.digest, { file: modelPath, offset: offsets[i], size: c.size }),
    )
  }

  /**
   * Before `modelPath` is overwritten: copies the `needed` chunks that only it
   * holds into loose files, then forgets every chunk located in it.
   */
  evacuate(modelPath: string, needed: ReadonlySet<string>): void {
    for (const [d, l] of this.index) {
      if (l.file !== modelPath) continue
      if (needed.has(d) && !existsSync(join(this.dir, d))) {
        const data = this.get(d)
        if (data) this.put(d, data)
      }
      this.index.delete(d)
    }
  }

  has(digest: string): boolean {
    return this.index.has(digest) || existsSync(join(this.dir, digest))
  }

  /**
   * Stores a verified chunk. No fsync: a chunk torn by a crash fails its
   * sha256 in get() and is fetched again, so durability here would only cost
   * two fsyncs per chunk. The assembled model file is fsynced once.
   */
  put(digest: string, data: Uint8Array): void {
    const tmp = join(this.dir, `.${digest}.tmp`)
    writeFileSync(tmp, data)
    renameSync(tmp, join(this.dir, digest))
  }

  /** The chunk's bytes, verified against its digest; undefined if absent or damaged. */
  get(digest: string): Buffer | undefined {
    let data: Buffer | undefined
    const loose = join(this.dir, digest)
    if (existsSync(loose)) data = readFileSync(loose)
    else {
      const l = this.index.get(digest)
      if (!l) return undefined
      data = Buffer.allocUnsafe(l.size)
      const fd = openSync(l.file, 'r')
      try {
        if (readSync(fd, data, 0, l.size, l.offset) !== l.size) return undefined
      } catch {
        return undefined
      } finally {
        closeSync(fd)
      }
    }
    if (sha256Hex(data) === digest) return data
    if (existsSync(loose)) rmSync(loose, { force: true })
    return undefined
  }

  /** Removes loose chunks no longer needed (after an artifact was assembled). */
  prune(keep: ReadonlySet<string> = new Set()): void {
    for (const f of readdirSync(this.dir)) if (!keep.has(f)) rmSync(join(this.dir, f), { force: true })
  }
}
