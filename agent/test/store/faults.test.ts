// Storage faults mapped to stable codes [EF-7.3.1], and a download that meets
// them (or a dropped link) ends with that code instead of throwing elsewhere.
import { randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { EdgeFleetError, chunkArtifact, fixedBoundaries, type Manifest } from '@edgefleet/shared'
import { asStorageError, storageCode } from '../../src/store/faults.js'
import { download } from '../../src/updater/download.js'
import { DeferredCmds } from '../../src/mqtt/handlers/deferred.js'
import { FakeTransport } from '../fixtures/agent.js'

const errno = (code: string) => Object.assign(new Error(`${code}: failed`), { code })

describe('storageCode', () => {
  it.each([
    ['ENOSPC', 'EF_ERR_STORAGE_FULL'],
    ['EDQUOT', 'EF_ERR_STORAGE_FULL'],
    ['SQLITE_FULL', 'EF_ERR_STORAGE_FULL'],
    ['EIO', 'EF_ERR_STORAGE_IO'],
    ['EROFS', 'EF_ERR_STORAGE_IO'],
    ['SQLITE_IOERR_WRITE', 'EF_ERR_STORAGE_IO'],
  ])('%s → %s', (code, expected) => {
    expect(storageCode(errno(code))).toBe(expected)
    const e = asStorageError(errno(code), 'writing x') as EdgeFleetError
    expect(e).toBeInstanceOf(EdgeFleetError)
    expect(e.code).toBe(expected)
  })

  it('leaves other errors alone', () => {
    const other = errno('EACCES')
    expect(storageCode(other)).toBeUndefined()
    expect(asStorageError(other, 'x')).toBe(other)
    expect(storageCode(new Error('plain'))).toBeUndefined()
  })
})

describe('download under faults', () => {
  const bytes = randomBytes(4096)
  const chunked = chunkArtifact(bytes, fixedBoundaries(bytes.length, 1024))
  const manifest = {
    artifact: { format: 'onnx', digest: chunked.digest, size: chunked.size, chunks: chunked.chunks },
  } as unknown as Manifest

  it('ends with EF_ERR_STORAGE_FULL when a chunk write hits ENOSPC (nothing thrown from the chunk handler)', async () => {
    const tr = new FakeTransport().add({ bytes, chunked })
    let puts = 0
    const sink = {
      has: () => false,
      put: () => {
        if (++puts === 2) throw errno('ENOSPC')
      },
    }
    const err = await download(manifest, sink, tr, { window: 4, timeoutMs: 5000 }).catch((e: unknown) => e)
    expect((err as EdgeFleetError).code).toBe('EF_ERR_STORAGE_FULL')
    expect(tr.subscribed.size).toBe(0) // unsubscribed after the failure
  })

  it('ends with EF_ERR_CONNECTION_LOST when the subscription fails because the link dropped', async () => {
    const tr = new FakeTransport().add({ bytes, chunked })
    tr.subscribeArtifact = () => Promise.reject(new Error('Connection closed'))
    const err = await download(manifest, { has: () => false, put: () => undefined }, tr, {
      window: 4,
      timeoutMs: 5000,
    }).catch((e: unknown) => e)
    expect((err as EdgeFleetError).code).toBe('EF_ERR_CONNECTION_LOST')
  })
})

describe('DeferredCmds', () => {
  it('runs a deferred command again on the next reconnect, or after its back-off', async () => {
    const listeners = new Set<() => void>()
    const deferred = new DeferredCmds({
      onReconnect: (fn) => {
        listeners.add(fn)
        return () => listeners.delete(fn)
      },
      minDelayMs: 20,
    })
    let runs = 0
    deferred.schedule('c1', () => runs++)
    for (const fn of [...listeners]) fn() // a reconnect
    expect(runs).toBe(1)
    expect(listeners.size).toBe(0)
    deferred.schedule('c1', () => runs++) // second attempt: 40 ms back-off
    await new Promise((r) => setTimeout(r, 80))
    expect(runs).toBe(2)
    deferred.schedule('c1', () => runs++)
    deferred.settled('c1')
    await new Promise((r) => setTimeout(r, 120))
    expect(runs).toBe(2) // a settled command is not run again
    expect(deferred.size).toBe(0)
    deferred.close()
  })
})
