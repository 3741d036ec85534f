// Content-addressed files on disk: blobs/<sha256>. Writes go to a temp file,
// are fsynced and renamed, so a blob is either whole or absent.
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
} from 'node:fs'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { sha256Hex, isDigest } from '@edgefleet/shared'

export class BlobStore {
  constructor(private readonly dir: string) {
    mkdirSync(dir, { recursive: true, mode: 0o700 })
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
}
