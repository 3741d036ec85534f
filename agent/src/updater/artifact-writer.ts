// Writes a downloading artifact straight into its final file [EF-4.5]: each
// verified chunk goes to its offset with one positional write, so there is no
// file per chunk and no second copy at assembly. Chunks the device already
// holds (in a model slot or the loose chunk store) are copied in first. A
// marker names the artifact the partial file belongs to: after a crash the
// regions already written are re-checked against their sha256 and kept, so a
// restarted download resumes. Agent packages [EF-11.4] are written the same
// way under their own file names.
import {
  existsSync,
  openSync,
  closeSync,
  ftruncateSync,
  writeSync,
  readSync,
  fsyncSync,
  readFileSync,
  renameSync,
  rmSync,
} from 'node:fs'
import { join } from 'node:path'
import { chunkOffsets, sha256Hex } from '@edgefleet/shared'
import type { ChunkStore } from './chunks.js'
import type { ChunkedSource } from './download.js'
import { writeFileAtomic, fsyncDir } from './fsutil.js'

/** The files of one artifact being written: the partial file, the finished one, the marker naming the artifact. */
export interface ArtifactFiles {
  part: string
  final: string
  marker: string
}

/** A model build in its slot folder. */
const MODEL_FILES: ArtifactFiles = { part: 'model.onnx.part', final: 'model.onnx', marker: 'partial.json' }

export class ArtifactWriter {
  private readonly fd: number
  /** Each distinct chunk's size and every offset the artifact holds it at. */
  private readonly at = new Map<string, { size: number; offsets: number[] }>()
  private readonly present = new Set<string>()
  private closed = false

  private constructor(
    private readonly dir: string,
    private readonly m: ChunkedSource,
    fd: number,
    private readonly files: ArtifactFiles,
  ) {
    this.fd = fd
    const offsets = chunkOffsets(m.artifact.chunks)
    m.artifact.chunks.forEach((c, i) => {
      const held = this.at.get(c.digest) ?? { size: c.size, offsets: [] }
      held.offsets.push(offsets[i])
      this.at.set(c.digest, held)
    })
  }

  /** True when `dir` holds a partial download of this artifact (a resume). */
  static resumable(dir: string, m: ChunkedSource, files = MODEL_FILES): boolean {
    try {
      return (
        existsSync(join(dir, files.part)) &&
        (JSON.parse(readFileSync(join(dir, files.marker), 'utf8')) as { artifact?: string }).artifact ===
          m.artifact.digest
      )
    } catch {
      return false
    }
  }

  /** Opens (or resumes) the partial file in `dir` and fills in every chunk already held. */
  static open(
    dir: string,
    m: ChunkedSource,
    held: Pick<ChunkStore, 'get'> | undefined,
    files = MODEL_FILES,
  ): ArtifactWriter {
    const resume = ArtifactWriter.resumable(dir, m, files)
    if (!resume) writeFileAtomic(join(dir, files.marker), JSON.stringify({ artifact: m.artifact.digest }))
    const fd = openSync(join(dir, files.part), resume ? 'r+' : 'w+')
    ftruncateSync(fd, m.artifact.size)
    const writer = new ArtifactWriter(dir, m, fd, files)
    for (const [digest, { size, offsets }] of writer.at) {
      if (resume && writer.regionMatches(offsets[0], size, digest)) {
        writer.present.add(digest)
        continue
      }
      const data = held?.get(digest)
      if (data) writer.put(digest, data)
    }
    return writer
  }

  private regionMatches(offset: number, size: number, digest: string): boolean {
    const buf = Buffer.allocUnsafe(size)
    return readSync(this.fd, buf, 0, size, offset) === size && sha256Hex(buf) === digest
  }

  has(digest: string): boolean {
    return this.present.has(digest)
  }

  /** Writes a verified chunk at every offset where the artifact holds it. */
  put(digest: string, data: Uint8Array): void {
    for (const off of this.at.get(digest)?.offsets ?? []) {
      let done = 0
      while (done < data.byteLength) done += writeSync(this.fd, data, done, data.byteLength - done, off + done)
    }
    this.present.add(digest)
  }

  /** Reads a held chunk back (e.g. to evacuate it); undefined if not held. */
  get(digest: string): Buffer | undefined {
    const held = this.at.get(digest)
    if (!held || !this.present.has(digest)) return undefined
    const { size, offsets } = held
    const buf = Buffer.allocUnsafe(size)
    readSync(this.fd, buf, 0, size, offsets[0])
    return buf
  }

  /**
   * Every chunk present (each verified against its sha256 on arrival, and the
   * chunk list is signed): fsync, move to the final name, drop the marker.
   */
  finish(): string {
    for (const c of this.m.artifact.chunks)
      if (!this.present.has(c.digest)) throw new Error(`chunk ${c.digest} missing at finish`)
    fsyncSync(this.fd)
    this.close()
    const final = join(this.dir, this.files.final)
    renameSync(join(this.dir, this.files.part), final)
    rmSync(join(this.dir, this.files.marker), { force: true })
    fsyncDir(this.dir)
    return final
  }

  close(): void {
    if (!this.closed) {
      this.closed = true
      closeSync(this.fd)
    }
  }
}
