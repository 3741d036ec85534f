// Free-space check before a download [EF-4.4]: the artifact plus a margin must
// fit in what the data folder's file system has free, counting the bytes the
// inactive slot already holds (they are replaced, or are the partial file a
// resumed download keeps).
import { existsSync, readdirSync, statSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { EdgeFleetError } from '@edgefleet/shared'
import { freeStorageBytes } from '../telemetry/device.js'

/** 1 MiB left free beyond the artifact: the outbox, the command log and the manifest files need room too. */
export const DEFAULT_STORAGE_MARGIN_BYTES = 1 << 20

/** Bytes allocated on disk by the files directly in `dir` (sparse regions of a partial file are free). */
function allocatedBytes(dir: string): number {
  let allocated = 0
  try {
    for (const f of readdirSync(dir)) {
      try {
        const st = statSync(join(dir, f))
        if (st.isFile()) allocated += st.blocks * 512
      } catch {
        /* vanished meanwhile */
      }
    }
  } catch {
    /* no such folder yet */
  }
  return allocated
}

/**
 * Throws EF_ERR_STORAGE_FULL when `size` bytes (plus `marginBytes`) cannot be
 * written into `slotDir`. Without a readable file system figure it lets the
 * download try (a write that fails is handled as well).
 */
export function assertSpaceFor(slotDir: string, size: number, marginBytes: number): void {
  let fsDir = slotDir
  while (!existsSync(fsDir) && dirname(fsDir) !== fsDir) fsDir = dirname(fsDir) // a new model's slot is made later
  const free = freeStorageBytes(fsDir)
  if (free === undefined) return
  const available = free + allocatedBytes(slotDir)
  const need = size + marginBytes
  if (available < need)
    throw new EdgeFleetError(
      'EF_ERR_STORAGE_FULL',
      `the artifact needs ${need} bytes (${size} + ${marginBytes} margin), ${available} available; retrying when space returns`,
    )
}
