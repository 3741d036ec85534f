// Dataset archives [EF-9.9]: the writer's entries are deterministic (same
// contents and start time → same bytes), long names survive, and the reader
// turns every damaged archive into EF_ERR_ARCHIVE_INVALID.
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { EdgeFleetError } from '@edgefleet/shared'
import { TarWriter, readTar, readTarFiles } from '../../src/feed/tar.js'
import { tempDir } from '../fixtures/hub.js'

const MTIME = Date.UTC(2026, 0, 2, 3, 4, 5)
const LONG = `samples/123456789/inputs/${'n'.repeat(120)}.npy`

async function writeArchive(path: string, dir: string): Promise<TarWriter> {
  const w = new TarWriter(path, MTIME)
  await w.add('samples/1/inputs/x.npy', Buffer.from('first'))
  await w.add(LONG, new Uint8Array(1000).fill(7))
  await w.add('empty.bin', new Uint8Array(0))
  const side = join(dir, 'index.src')
  writeFileSync(side, 'a\n'.repeat(300_000)) // 600 kB: more than one read chunk
  await w.addFile('index.jsonl', side)
  await w.close()
  return w
}

async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p
  } catch (err) {
    expect(err).toBeInstanceOf(EdgeFleetError)
    return (err as EdgeFleetError).code
  }
  return undefined
}

describe('tar archives', () => {
  it('round-trips entries in order, with the same bytes for the same contents', async () => {
    const { dir, cleanup } = tempDir('ef-tar-')
    try {
      const archive = join(dir, 'a.tar')
      const w = await writeArchive(archive, dir)
      expect(w.entries).toBe(4)
      expect(w.bytes).toBe(readFileSync(archive).length)
      expect(w.bytes % 512).toBe(0)
      const names: string[] = []
      await readTar(archive, (name) => names.push(name))
      expect(names).toEqual(['samples/1/inputs/x.npy', LONG, 'empty.bin', 'index.jsonl'])
      const files = await readTarFiles(archive)
      expect(files.get('samples/1/inputs/x.npy')!.toString()).toBe('first')
      expect(files.get(LONG)!.equals(Buffer.alloc(1000, 7))).toBe(true)
      expect(files.get('empty.bin')!.length).toBe(0)
      expect(files.get('index.jsonl')!.length).toBe(600_000)
      // Deterministic: no owner, host or clock of this run in the archive.
      const b = join(dir, 'b.tar')
      await writeArchive(b, dir)
      expect(readFileSync(b).equals(readFileSync(archive))).toBe(true)
      // ustar header of the first entry: mode 0644, uid/gid 0, the export's mtime.
      const h = readFileSync(archive).subarray(0, 512)
      const field = (off: number, len: number) => parseInt(h.subarray(off, off + len).toString('latin1'), 8) || 0
      expect(field(100, 8)).toBe(0o644)
      expect([field(108, 8), field(116, 8)]).toEqual([0, 0])
      expect(field(136, 12)).toBe(MTIME / 1000)
    } finally {
      cleanup()
    }
  })

  it('damaged archives are EF_ERR_ARCHIVE_INVALID', async () => {
    const { dir, cleanup } = tempDir('ef-tar-')
    try {
      const good = join(dir, 'good.tar')
      await writeArchive(good, dir)
      const bytes = readFileSync(good)
      const variant = (name: string, b: Uint8Array) => {
        const p = join(dir, name)
        writeFileSync(p, b)
        return p
      }
      const badSum = Buffer.from(bytes)
      badSum[0] ^= 0x20 // the first header's name changes, its checksum no longer matches
      const cases: [string, string][] = [
        ['truncated inside an entry', variant('trunc.tar', bytes.subarray(0, 3072))], // a block boundary inside the long entry's data,
        ['cut mid-block', variant('trunc-h.tar', bytes.subarray(0, 1024 + 200))],
        ['bad header checksum', variant('sum.tar', badSum)],
        ['not a tar at all', variant('junk.tar', Buffer.from('hello, this is not an archive\n'.repeat(40)))],
        ['empty file', variant('empty.tar', new Uint8Array(0))],
        ['missing file', join(dir, 'nope.tar')],
      ]
      for (const [why, p] of cases) expect(await codeOf(readTarFiles(p)), why).toBe('EF_ERR_ARCHIVE_INVALID')
      expect(await codeOf(readTarFiles(good, { maxEntryBytes: 999 }))).toBe('EF_ERR_ARCHIVE_INVALID')
      expect(await codeOf(readTarFiles(good, { maxEntries: 3 }))).toBe('EF_ERR_ARCHIVE_INVALID')
      // A throwing consumer stops the read with its own error.
      await expect(
        readTar(good, () => {
          throw new EdgeFleetError('EF_ERR_NPY_INVALID', 'consumer')
        }),
      ).rejects.toMatchObject({ code: 'EF_ERR_NPY_INVALID' })
    } finally {
      cleanup()
    }
  })
})
