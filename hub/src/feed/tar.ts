// A minimal POSIX ustar writer for dataset exports [EF-9.9]: regular files
// only, written as they come (nothing is held in memory but the current
// entry). Python's tarfile, GNU tar and bsdtar read it.
import { openSync, writeSync, closeSync, readSync, fstatSync } from 'node:fs'

const BLOCK = 512

function octal(n: number, width: number): string {
  return n.toString(8).padStart(width - 1, '0') + '\0'
}

/** Splits a path into ustar's name (≤ 100) and prefix (≤ 155) fields. */
function splitName(path: string): { name: string; prefix: string } {
  if (Buffer.byteLength(path) <= 100) return { name: path, prefix: '' }
  for (let i = path.lastIndexOf('/'); i > 0; i = path.lastIndexOf('/', i - 1)) {
    const prefix = path.slice(0, i)
    const name = path.slice(i + 1)
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(name) <= 100) return { name, prefix }
  }
  throw new RangeError(`path too long for ustar: ${path}`)
}

export function tarHeader(path: string, size: number, mtimeMs: number): Buffer {
  const h = Buffer.alloc(BLOCK)
  const { name, prefix } = splitName(path)
  h.write(name, 0, 100, 'utf8')
  h.write(octal(0o644, 8), 100, 'latin1') // mode
  h.write(octal(0, 8), 108, 'latin1') // uid
  h.write(octal(0, 8), 116, 'latin1') // gid
  h.write(octal(size, 12), 124, 'latin1')
  h.write(octal(Math.floor(mtimeMs / 1000), 12), 136, 'latin1')
  h.write('        ', 148, 'latin1') // checksum placeholder: eight spaces
  h.write('0', 156, 'latin1') // regular file
  h.write('ustar\0', 257, 'latin1')
  h.write('00', 263, 'latin1')
  h.write(prefix, 345, 155, 'utf8')
  let sum = 0
  for (const b of h) sum += b
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1')
  return h
}

export class TarWriter {
  private fd: number
  private closed = false
  bytes = 0
  entries = 0

  constructor(
    path: string,
    private readonly mtimeMs = Date.now(),
  ) {
    this.fd = openSync(path, 'w')
  }

  private write(b: Buffer): void {
    writeSync(this.fd, b)
    this.bytes += b.length
  }

  add(path: string, data: Buffer): void {
    this.write(tarHeader(path, data.length, this.mtimeMs))
    this.write(data)
    const pad = (BLOCK - (data.length % BLOCK)) % BLOCK
    if (pad) this.write(Buffer.alloc(pad))
    this.entries++
  }

  /** Adds a file from disk, copied 1 MiB at a time. */
  addFile(path: string, srcPath: string): void {
    const src = openSync(srcPath, 'r')
    try {
      const size = fstatSync(src).size
      this.write(tarHeader(path, size, this.mtimeMs))
      const buf = Buffer.alloc(1024 * 1024)
      let left = size
      while (left > 0) {
        const n = readSync(src, buf, 0, Math.min(buf.length, left), null)
        if (n === 0) throw new Error(`${srcPath} shrank while being archived`)
        this.write(buf.subarray(0, n))
        left -= n
      }
      const pad = (BLOCK - (size % BLOCK)) % BLOCK
      if (pad) this.write(Buffer.alloc(pad))
      this.entries++
    } finally {
      closeSync(src)
    }
  }

  /** Writes the end-of-archive marker (two zero blocks) and closes the file. */
  close(): void {
    if (this.closed) return
    this.closed = true
    this.write(Buffer.alloc(2 * BLOCK))
    closeSync(this.fd)
  }
}
