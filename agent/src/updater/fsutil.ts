// Durable file operations: write to a temp file, fsync, rename, fsync the
// folder. After a crash a file is either its old or its new content.
import { openSync, writeSync, fsyncSync, closeSync, renameSync } from 'node:fs'
import { dirname, join, basename } from 'node:path'
import { randomBytes } from 'node:crypto'

export function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r')
  try {
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
}

/** `mode`: permission bits of a new file (before the umask); 0o600 for anything private. */
export function writeFileAtomic(path: string, data: Uint8Array | string, mode = 0o666): void {
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(4).toString('hex')}.tmp`)
  const buf = typeof data === 'string' ? Buffer.from(data) : data
  const fd = openSync(tmp, 'w', mode)
  try {
    let off = 0
    while (off < buf.byteLength) off += writeSync(fd, buf, off, buf.byteLength - off)
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
  renameSync(tmp, path)
  fsyncDir(dirname(path))
}
