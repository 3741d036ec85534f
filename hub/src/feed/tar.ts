// Dataset archives [EF-9.9] through the `tar` package: the one place the
// project writes or reads tar. Writing streams entries as they come (memory
// holds the current entry), each a regular file with the same mode and mtime
// and no owner, so an export's bytes depend only on its contents and start
// time; Python's tarfile, GNU tar and bsdtar read it. Reading checks headers
// strictly and bounds every entry, since an archive may come from anywhere.
import { createReadStream, createWriteStream, statSync } from 'node:fs'
import { once } from 'node:events'
import { finished } from 'node:stream/promises'
import { stat } from 'node:fs/promises'
import { Header, Pack, Parser, ReadEntry } from 'tar'
import { EdgeFleetError } from '@edgefleet/shared'

/** Mode of every entry: readable by all, as a dataset is data, never a program. */
const ENTRY_MODE = 0o644

export class TarWriter {
  private readonly pack: Pack
  private readonly out: ReturnType<typeof createWriteStream>
  private readonly mtime: Date
  private done: Promise<void> | undefined
  entries = 0

  constructor(path: string, mtimeMs = Date.now()) {
    this.mtime = new Date(Math.floor(mtimeMs / 1000) * 1000) // tar keeps whole seconds
    // portable: no uid/gid/user names/atime/ctime from this machine in the archive.
    this.pack = new Pack({ portable: true, mtime: this.mtime })
    this.out = createWriteStream(path)
    this.pack.pipe(this.out)
  }

  /** Bytes written so far (all of them once close() resolved). */
  get bytes(): number {
    return this.out.bytesWritten
  }

  private entry(path: string, size: number): ReadEntry {
    const header = new Header({ path, size, mode: ENTRY_MODE, mtime: this.mtime, type: 'File' })
    return new ReadEntry(header)
  }

  /** Adds one file from memory; resolves once the archive took it (one entry in memory at a time). */
  async add(path: string, data: Uint8Array): Promise<void> {
    const e = this.entry(path, data.byteLength)
    const ended = once(e, 'end')
    this.pack.add(e)
    e.end(Buffer.from(data.buffer, data.byteOffset, data.byteLength))
    await ended
    this.entries++
  }

  /** Adds a file from disk, streamed with backpressure. */
  async addFile(path: string, srcPath: string): Promise<void> {
    const size = statSync(srcPath).size
    const entry = this.entry(path, size)
    const ended = once(entry, 'end')
    this.pack.add(entry)
    let copied = 0
    // `end` is inclusive; a file that grew since stat keeps the size its header says.
    const src = size > 0 ? (createReadStream(srcPath, { end: size - 1 }) as AsyncIterable<Buffer>) : []
    for await (const chunk of src) {
      copied += chunk.length
      if (!entry.write(chunk)) await once(entry, 'drain')
    }
    if (copied !== size) throw new Error(`${srcPath} shrank while being archived`)
    entry.end()
    await ended
    this.entries++
  }

  /** Writes the end-of-archive marker and closes the file; safe to call twice. */
  close(): Promise<void> {
    this.done ??= (async () => {
      this.pack.end()
      await finished(this.out)
    })()
    return this.done
  }
}

export interface ReadTarOptions {
  /** Largest regular file accepted (bytes); a larger entry fails the read. */
  maxEntryBytes?: number
  /** Most regular files accepted. */
  maxEntries?: number
}

const defaultReadTarOptions: Required<ReadTarOptions> = {
  maxEntryBytes: 1 << 30, // 1 GiB
  maxEntries: 10_000_000,
}

/**
 * Streams the regular files of a tar archive to `onFile` in archive order
 * (each file's bytes in memory while it is handled); anything else
 * (directories, links) is skipped. A truncated or corrupt archive (bad checksum, cut
 * inside an entry or a header, not whole blocks), or an entry
 * past the limits, rejects with EF_ERR_ARCHIVE_INVALID.
 */
export async function readTar(
  path: string,
  onFile: (name: string, data: Buffer) => void,
  options: ReadTarOptions = {},
): Promise<void> {
  const opts = { ...defaultReadTarOptions, ...options }
  // The parser drops a partial header at the end silently; a tar is whole 512-byte blocks.
  const size = await stat(path).then(
    (s) => s.size,
    (err: unknown) => {
      throw invalidArchive(path, err as Error)
    },
  )
  if (size % 512 !== 0)
    throw invalidArchive(path, `${size} bytes is not a whole number of 512-byte blocks (truncated?)`)
  let entries = 0
  let failure: Error | undefined
  // The parser reports a bad archive as 'error' before it ends the damaged entry, so a
  // truncated file never reaches onFile.
  const fail = (err: Error) => {
    failure ??= err instanceof EdgeFleetError ? err : invalidArchive(path, err)
  }
  const parser: Parser = new Parser({
    strict: true,
    onReadEntry: (entry: ReadEntry): void => {
      if (failure || (entry.type !== 'File' && entry.type !== 'OldFile' && entry.type !== 'ContiguousFile'))
        return entry.resume()
      if (++entries > opts.maxEntries) return parser.abort(invalidArchive(path, `more than ${opts.maxEntries} files`))
      if (entry.size > opts.maxEntryBytes)
        return parser.abort(invalidArchive(path, `${entry.path}: ${entry.size} bytes (at most ${opts.maxEntryBytes})`))
      const chunks: Buffer[] = []
      entry.on('data', (c: Buffer) => chunks.push(c))
      entry.on('end', () => {
        if (failure) return
        try {
          onFile(entry.path, Buffer.concat(chunks))
        } catch (err) {
          parser.abort(err as Error)
        }
      })
    },
  })
  await new Promise<void>((resolve) => {
    const src = createReadStream(path)
    src.on('error', (err) => {
      fail(err)
      resolve()
    })
    parser.on('error', (err: Error) => {
      fail(err)
      src.destroy()
      resolve()
    })
    parser.on('end', () => resolve())
    src.pipe(parser)
  })
  if (failure) throw failure
}

function invalidArchive(path: string, why: string | Error): EdgeFleetError {
  const detail = typeof why === 'string' ? why : why.message
  return new EdgeFleetError('EF_ERR_ARCHIVE_INVALID', `${path}: ${detail}`, { cause: why })
}

/** Every regular file of a tar archive, by name (small archives: tests and scripts). */
export async function readTarFiles(path: string, options?: ReadTarOptions): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>()
  await readTar(path, (name, data) => files.set(name, data), options)
  return files
}
