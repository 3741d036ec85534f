// Storage faults as ordinary errors [EF-7.3.1]: a full or failing disk shows up
// as ENOSPC/EDQUOT/EIO from node:fs or SQLITE_FULL/SQLITE_IOERR from SQLite.
// Callers map them to EF_ERR_STORAGE_FULL / EF_ERR_STORAGE_IO and go on
// (defer, drop, retry) instead of letting them end the process.
import { EdgeFleetError } from '@edgefleet/shared'

const FULL = new Set(['ENOSPC', 'EDQUOT', 'SQLITE_FULL'])
const IO = new Set(['EIO', 'EROFS'])

/** The storage code of an error thrown by a write, or undefined when it is not a storage fault. */
export function storageCode(err: unknown): 'EF_ERR_STORAGE_FULL' | 'EF_ERR_STORAGE_IO' | undefined {
  const code = (err as { code?: unknown } | null)?.code
  if (typeof code !== 'string') return undefined
  if (FULL.has(code) || code === 'EF_ERR_STORAGE_FULL') return 'EF_ERR_STORAGE_FULL'
  if (IO.has(code) || code.startsWith('SQLITE_IOERR') || code === 'EF_ERR_STORAGE_IO') return 'EF_ERR_STORAGE_IO'
  return undefined
}

/** `err` as an EdgeFleetError with its storage code when it is a storage fault; otherwise `err` itself. */
export function asStorageError(err: unknown, what: string): unknown {
  const code = storageCode(err)
  if (!code || err instanceof EdgeFleetError) return err
  return new EdgeFleetError(code, `${what}: ${(err as Error).message}`, { cause: err })
}
