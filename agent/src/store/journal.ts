// An append-only journal file without a native addon [EF-7.4]: every change
// is one checksummed frame appended with a single write, replayed in order
// at open. A frame cut short by a crash or power loss (or failing its CRC)
// ends the journal: it and anything after it are truncated away, so the
// store always reopens in the state of some prefix of its writes. Frames
// no longer needed are reclaimed by compaction, which writes the live
// frames to a new file and renames it over the old one (atomic on POSIX).
//
// Frame: u32 length of what follows the CRC | u32 CRC-32 of it | u32 header
// length | JSON header | payload bytes. Payloads are not held in memory:
// readers get them from the file by offset.
import {
  closeSync,
  existsSync,
  fstatSync,
  fsyncSync,
  ftruncateSync,
  openSync,
  readSync,
  renameSync,
  rmSync,
  writeSync,
  chmodSync,
} from 'node:fs'
import { dirname } from 'node:path'
import { crc32 } from 'node:zlib'

const PREFIX = 12
/** A frame's body must fit one read; payloads here are telemetry batches, events and captured samples. */
const MAX_FRAME = 256 * 1024 * 1024

export interface Frame<H> {
  header: H
  /** File offset and length of the payload (length 0: none). */
  payloadAt: number
  payloadLength: number
  /** Bytes the whole frame takes in the file. */
  size: number
}

function encodeFrame(header: unknown, payload?: Buffer): Buffer {
  const h = Buffer.from(JSON.stringify(header))
  const bodyLen = 4 + h.length + (payload?.length ?? 0)
  const buf = Buffer.allocUnsafe(8 + bodyLen)
  buf.writeUInt32LE(bodyLen, 0)
  buf.writeUInt32LE(h.length, 8)
  h.copy(buf, PREFIX)
  payload?.copy(buf, PREFIX + h.length)
  buf.writeUInt32LE(crc32(buf.subarray(8)), 4)
  return buf
}

export class Journal<H> {
  private fd: number
  /** Bytes of valid frames in the file (where the next frame goes). */
  size = 0

  constructor(readonly path: string) {
    rmSync(`${path}.compact`, { force: true }) // a compaction the process did not finish
    this.fd = openSync(path, existsSync(path) ? 'r+' : 'w+', 0o600)
    chmodSync(path, 0o600)
  }

  /** Replays every valid frame in order; truncates a torn or corrupt tail. Returns the bytes cut off. */
  replay(apply: (f: Frame<H>) => void): number {
    const fileSize = fstatSync(this.fd).size
    const prefix = Buffer.alloc(8)
    let at = 0
    while (at + 8 <= fileSize) {
      readSync(this.fd, prefix, 0, 8, at)
      const bodyLen = prefix.readUInt32LE(0)
      if (bodyLen < 4 || bodyLen > MAX_FRAME || at + 8 + bodyLen > fileSize) break
      const body = Buffer.allocUnsafe(bodyLen)
      readSync(this.fd, body, 0, bodyLen, at + 8)
      if (crc32(body) !== prefix.readUInt32LE(4)) break
      const hLen = body.readUInt32LE(0)
      if (4 + hLen > bodyLen) break
      let header: H
      try {
        header = JSON.parse(body.subarray(4, 4 + hLen).toString()) as H
      } catch {
        break
      }
      const size = 8 + bodyLen
      apply({ header, payloadAt: at + PREFIX + hLen, payloadLength: bodyLen - 4 - hLen, size })
      at += size
    }
    if (at < fileSize) ftruncateSync(this.fd, at)
    this.size = at
    return fileSize - at
  }

  /** Frame size `append` would write, for size caps checked before writing. */
  static frameSize(header: unknown, payloadLength = 0): number {
    return PREFIX + Buffer.byteLength(JSON.stringify(header)) + payloadLength
  }

  /**
   * Appends one frame with one write. A failed write (ENOSPC, EIO) leaves no
   * partial frame behind: the file is cut back to where it was.
   */
  append(header: H, payload?: Buffer, sync = false): Frame<H> {
    const buf = encodeFrame(header, payload)
    const at = this.size
    try {
      let done = 0
      while (done < buf.length) done += writeSync(this.fd, buf, done, buf.length - done, at + done)
      if (sync) fsyncSync(this.fd)
    } catch (err) {
      try {
        ftruncateSync(this.fd, at)
      } catch {
        // The next open truncates the torn frame anyway (CRC).
      }
      throw err
    }
    this.size += buf.length
    const hLen = buf.readUInt32LE(8)
    return { header, payloadAt: at + PREFIX + hLen, payloadLength: payload?.length ?? 0, size: buf.length }
  }

  readPayload(f: { payloadAt: number; payloadLength: number }): Buffer {
    const out = Buffer.allocUnsafe(f.payloadLength)
    if (f.payloadLength) readSync(this.fd, out, 0, f.payloadLength, f.payloadAt)
    return out
  }

  /**
   * Rewrites the journal with only the frames `live` yields (header, payload)
   * into PATH.compact, fsyncs it and renames it over PATH. `placed` learns
   * each frame's new place. On failure the old journal stays as it was.
   */
  compact(live: Iterable<{ header: H; payload?: Buffer }>, placed: (f: Frame<H>, i: number) => void): void {
    const tmpPath = `${this.path}.compact`
    const tmp = openSync(tmpPath, 'w', 0o600)
    const frames: Frame<H>[] = []
    let at = 0
    try {
      for (const { header, payload } of live) {
        const buf = encodeFrame(header, payload)
        let done = 0
        while (done < buf.length) done += writeSync(tmp, buf, done, buf.length - done, at + done)
        frames.push({
          header,
          payloadAt: at + PREFIX + buf.readUInt32LE(8),
          payloadLength: payload?.length ?? 0,
          size: buf.length,
        })
        at += buf.length
      }
      fsyncSync(tmp)
    } catch (err) {
      closeSync(tmp)
      rmSync(tmpPath, { force: true })
      throw err
    }
    closeSync(tmp)
    renameSync(tmpPath, this.path)
    syncDir(dirname(this.path))
    closeSync(this.fd)
    this.fd = openSync(this.path, 'r+')
    this.size = at
    frames.forEach(placed)
  }

  close(): void {
    try {
      fsyncSync(this.fd)
    } finally {
      closeSync(this.fd)
    }
  }
}

/** Makes a rename durable (the directory entry). */
function syncDir(dir: string): void {
  let fd: number | undefined
  try {
    fd = openSync(dir, 'r')
    fsyncSync(fd)
  } catch {
    // Not every filesystem lets a directory be fsynced; the rename itself is still atomic.
  } finally {
    if (fd !== undefined) closeSync(fd)
  }
}
