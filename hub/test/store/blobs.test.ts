// The content-addressed blob store [EF-4.13]: atomic writes, and adopting the
// data folder's blobs into a new --blob-dir (hard links on one file system,
// checked copies across two) without losing or inventing anything.
import { existsSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { afterEach, describe, expect, it } from 'vitest'
import { sha256Hex } from '@edgefleet/shared'
import { BlobStore, openBlobStore } from '../../src/store/blobs.js'
import { tempDir } from '../fixtures/hub.js'

const silent = { info: () => undefined, error: () => undefined }

describe('BlobStore', () => {
  const cleanups: (() => void)[] = []
  afterEach(() => cleanups.splice(0).forEach((c) => c()))
  const temp = (base?: string) => {
    const t = tempDir('ef-blobs-')
    cleanups.push(t.cleanup)
    if (!base) return t.dir
    const dir = join(base, `ef-blobs-${randomBytes(4).toString('hex')}`)
    mkdirSync(dir)
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }))
    return dir
  }

  it('stores bytes under their sha256, leaving no temp file', () => {
    const store = new BlobStore(join(temp(), 'b'))
    const data = randomBytes(70_000)
    const digest = store.put(data)
    expect(digest).toBe(sha256Hex(data))
    expect(store.get(digest)).toEqual(data)
    expect(store.read(digest, 100, 10)).toEqual(data.subarray(100, 110))
    expect(readdirSync(store.dir)).toEqual([digest])
  })

  it('adopts a folder by hard links: same inodes, old folder untouched, temp files and present blobs skipped', () => {
    const dir = temp()
    const old = new BlobStore(join(dir, 'old'))
    const only = old.put(randomBytes(5000))
    const both = old.put(randomBytes(7000))
    writeFileSync(join(old.dir, '.tmp-abcdef'), 'half a write')
    const fresh = new BlobStore(join(dir, 'new'))
    fresh.put(old.get(both)) // already there: not adopted again
    const report = fresh.adopt(old.dir)
    expect(report).toMatchObject({ linked: 1, copied: 0, present: 1, damaged: [], bytes: 5000 })
    expect(statSync(fresh.path(only)).ino).toBe(statSync(old.path(only)).ino)
    expect(readdirSync(fresh.dir).sort()).toEqual([only, both].sort())
    expect(readdirSync(old.dir).sort()).toEqual(['.tmp-abcdef', only, both].sort())
    expect(fresh.adopt(join(dir, 'nowhere'))).toMatchObject({ linked: 0, copied: 0 })
  })

  it('adopts across file systems by copies checked against their names; a damaged file is left behind', () => {
    if (!existsSync('/dev/shm') || statSync('/dev/shm').dev === statSync(temp()).dev) return
    const shm = temp('/dev/shm')
    const old = new BlobStore(join(shm, 'old'))
    const good = old.put(randomBytes((1 << 20) + 1000)) // two 1 MiB reads
    const liar = sha256Hex(Buffer.from('what the name promises'))
    writeFileSync(old.path(liar), 'something else')
    const fresh = new BlobStore(join(temp(), 'new'))
    const report = fresh.adopt(old.dir)
    expect(report).toMatchObject({ linked: 0, copied: 1, damaged: [liar], bytes: (1 << 20) + 1000 })
    expect(fresh.get(good)).toEqual(old.get(good))
    expect(fresh.has(liar)).toBe(false)
    expect(readdirSync(fresh.dir)).toEqual([good]) // the refused copy's temp file is gone
  })

  it('openBlobStore: <data>/blobs by default; a --blob-dir adopts it', () => {
    const dir = temp()
    const data = join(dir, 'data')
    const first = openBlobStore(data, undefined, silent)
    expect(first.dir).toBe(join(data, 'blobs'))
    const digest = first.put(randomBytes(100))
    expect(openBlobStore(data, join(data, 'blobs'), silent).dir).toBe(join(data, 'blobs'))
    const shared = openBlobStore(data, join(dir, 'shared'), silent)
    expect(shared.dir).toBe(join(dir, 'shared'))
    expect(shared.has(digest)).toBe(true)
    expect(statSync(shared.dir).mode & 0o777).toBe(0o750)
  })
})
