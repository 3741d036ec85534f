// Content-addressed files on disk: <dir>/<sha256>. Writes go to a temp file,
// are fsynced and renamed, so a blob is either whole or absent — which is also
// what lets several hub replicas share one folder on shared storage, and an
// HTTP origin (nginx, a CDN's origin) serve it as it is [EF-4.13].
import {
  mkdirSync,
  existsSync,
  openSync,
  writeSync,
  fsyncSync,
  closeSync,
  renameSync,
  readFileSync,
  readSync,
  rmSync,
  statSync,
  readdirSync,
  linkSync,
} from 'node:fs'
import { join, resolve } from 'node:path'
import { createHash, randomBytes } from 'node:crypto'
import { sha256Hex, isDigest } from '@edgefleet/shared'

/** What adopt() did: blobs hard-linked, copied (another file system), already present, refused. */
export interface AdoptReport {
  linked: number
  copied: number
  present: number
  /** Files named by a digest their content does not have: left where they are, not adopted. */
  damaged: string[]
  bytes: number
}

export class BlobStore {
  /** `mode` applies only when the folder is created: 0o750 lets an origin server's group read a shared one. */
  constructor(
    readonly dir: string,
    mode = 0o700,
  ) {
    mkdirSync(dir, { recursive: true, mode })
  }

  path(digest: string): string {
    if (!isDigest(digest)) throw new TypeError(`not a sha256 digest: ${digest}`)
    return join(this.dir, digest)
  }

  has(digest: string): boolean {
    return existsSync(this.path(digest))
  }

  /** Stores bytes under their sha256 and returns it. */
  put(data: Uint8Array): string {
    const digest = sha256Hex(data)
    const target = this.path(digest)
    if (existsSync(target) && statSync(target).size === data.byteLength) return digest
    const tmp = join(this.dir, `.tmp-${randomBytes(6).toString('hex')}`)
    const fd = openSync(tmp, 'w')
    try {
      let off = 0
      while (off < data.byteLength) off += writeSync(fd, data, off, data.byteLength - off)
      fsyncSync(fd)
    } finally {
      closeSync(fd)
    }
    renameSync(tmp, target)
    return digest
  }

  get(digest: string): Buffer {
    return readFileSync(this.path(digest))
  }

  /** Reads `length` bytes at `offset` without loading the whole blob. */
  read(digest: string, offset: number, length: number): Buffer {
    const buf = Buffer.allocUnsafe(length)
    const fd = openSync(this.path(digest), 'r')
    try {
      let got = 0
      while (got < length) {
        const n = readSync(fd, buf, got, length - got, offset + got)
        if (n === 0) throw new RangeError(`blob ${digest} shorter than ${offset + length}`)
        got += n
      }
    } finally {
      closeSync(fd)
    }
    return buf
  }

  remove(digest: string): void {
    rmSync(this.path(digest), { force: true })
  }

  /**
   * Brings every blob of another folder (the data folder's `blobs/` when the
   * hub moves to a shared --blob-dir) into this one, so no build is lost: a
   * hard link where both are on one file system (no copy, and the old folder
   * stays whole), else a copy checked against its name's sha256 before it is
   * renamed into place. The old folder is never modified.
   */
  adopt(fromDir: string): AdoptReport {
    const report: AdoptReport = { linked: 0, copied: 0, present: 0, damaged: [], bytes: 0 }
    if (!existsSync(fromDir)) return report
    for (const name of readdirSync(fromDir)) {
      if (!isDigest(name)) continue // temp files of an interrupted write
      const source = join(fromDir, name)
      if (this.has(name)) {
        report.present++
        continue
      }
      const size = statSync(source).size
      try {
        linkSync(source, this.path(name))
        report.linked++
      } catch {
        if (!this.copyChecked(source, name)) {
          report.damaged.push(name)
          continue
        }
        report.copied++
      }
      report.bytes += size
    }
    return report
  }

  /** Copies `source` in as blob `digest` if its content hashes to it (1 MiB at a time); false if not. */
  private copyChecked(source: string, digest: string): boolean {
    const tmp = join(this.dir, `.tmp-${randomBytes(6).toString('hex')}`)
    const hash = createHash('sha256')
    const buf = Buffer.allocUnsafe(1 << 20)
    const from = openSync(source, 'r')
    const to = openSync(tmp, 'w')
    try {
      for (let n = readSync(from, buf); n > 0; n = readSync(from, buf)) {
        hash.update(buf.subarray(0, n))
        for (let off = 0; off < n;) off += writeSync(to, buf, off, n - off)
      }
      fsyncSync(to)
    } finally {
      closeSync(from)
      closeSync(to)
    }
    if (hash.digest('hex') !== digest) {
      rmSync(tmp, { force: true })
      return false
    }
    renameSync(tmp, this.path(digest))
    return true
  }
}

/**
 * The hub's blob store: `blobDir` when given (shared storage, an origin's
 * document root) [EF-4.13], else `<dataDir>/blobs`. Moving to a new folder
 * adopts what the data folder's `blobs/` holds, so builds made before stay
 * deployable.
 */
export function openBlobStore(
  dataDir: string,
  blobDir: string | undefined,
  log: { info: (o: object, m: string) => void; error: (o: object, m: string) => void },
): BlobStore {
  const own = join(dataDir, 'blobs')
  if (!blobDir || resolve(blobDir) === resolve(own)) return new BlobStore(own)
  const blobs = new BlobStore(resolve(blobDir), 0o750)
  const adopted = blobs.adopt(own)
  if (adopted.linked + adopted.copied)
    log.info({ from: own, to: blobs.dir, ...adopted }, 'blobs adopted into --blob-dir')
  if (adopted.damaged.length)
    log.error({ from: own, damaged: adopted.damaged }, 'blobs whose content does not match their name were left behind')
  return blobs
}
